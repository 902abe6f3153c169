"""Pieces of the booking rules that `kassebro.booking.rules` is built from (see docs/booking-rules.md)."""
