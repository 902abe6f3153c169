"""The small shared core: money in øre, errors as values, the canonical sales frames, SAF-T code lists."""
