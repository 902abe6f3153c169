"""`make bench`: performance figures measured against a reference in the same run."""
