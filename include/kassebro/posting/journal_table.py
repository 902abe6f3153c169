"""Plain-text views of the journal for people: the `make demo` table and `kassebro journal`."""

from __future__ import annotations

from collections.abc import Iterable

from kassebro.core.money import format_ore
from kassebro.posting.journal import Entry

COLUMNS = ("vendor", "day", "lines", "total", "ledger voucher", "state", "message")


def journal_rows(entries: Iterable[Entry]) -> list[tuple[str, ...]]:
    return [
        (
            e.vendor_id,
            e.business_day.isoformat(),
            str(e.lines),
            format_ore(e.total_debit_ore),
            e.ledger_id or "-",
            e.state,
            (e.message.splitlines() or [""])[0][:70],
        )
        for e in entries
    ]


def journal_table(entries: Iterable[Entry]) -> str:
    rows = journal_rows(entries)
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]
    right = {2, 3}

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(
            v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )

    lines = [fmt(COLUMNS), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
