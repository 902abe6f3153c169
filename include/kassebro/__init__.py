"""kassebro: nightly POS sales to Norwegian ledgers, correct to the øre and posted exactly once."""

__version__ = "0.1.0"
