"""Posting: the journal, the claim/lease/fence, exactly-once post and verify, corrections, rebuild."""
