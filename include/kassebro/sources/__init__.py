"""Sales sources: each turns one vendor's business day into a canonical `kassebro.frames.SalesDay`."""
