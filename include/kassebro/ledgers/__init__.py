"""Ledger clients: one module per accounting system, all behind the protocol in `base`."""
