"""Pieces of the booking rules that `kassebro.vouchers` is built from (see docs/booking-rules.md)."""
