"""Reading the books back: reconciliation against the journal and the Z reports, the mapping check
against the live chart, and the year-end export. Reads only; nothing here changes a ledger."""
