"""The morning view: every vendor's days from the posting journal, as a page inside Airflow's UI.

Served by the API server through the plugin in `plugins/kassebro_plugin.py`; only signed-in
Airflow users see it (the same session cookie or bearer token as the rest of the UI).
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

STATE_COLOURS = {
    "posted": "#1a7f37",
    "parked": "#0969da",
    "empty": "#6e7781",
    "closed": "#6e7781",
    "closed_calendar": "#6e7781",
    "waiting": "#bf8700",
    "missing": "#cf222e",
    "failed": "#cf222e",
    "unknown": "#bf8700",
    "posting": "#bf8700",
}


def _entries(vendor: str | None) -> list[Any]:
    from kassebro.posting.journal import Journal

    return Journal().entries(vendor)


def journal_json(vendor: str | None = None) -> list[dict[str, Any]]:
    from kassebro.core.money import format_ore

    return [
        {
            "vendor": e.vendor_id,
            "day": e.business_day.isoformat(),
            "state": e.state,
            "lines": e.lines,
            "total": format_ore(e.total_debit_ore),
            "ledger_system": e.ledger_system,
            "ledger_id": e.ledger_id,
            "ledger_number": e.ledger_number,
            "attempts": e.attempts,
            "message": e.message,
            "updated_at": e.updated_at.isoformat(),
        }
        for e in _entries(vendor)
    ]


def journal_html(vendor: str | None = None) -> str:
    rows = journal_json(vendor)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    summary = " · ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no days yet"
    body = "\n".join(
        "<tr>"
        f"<td>{html.escape(r['vendor'])}</td><td>{r['day']}</td>"
        f"<td style='color:{STATE_COLOURS.get(r['state'], '#24292f')};font-weight:600'>{r['state']}</td>"
        f"<td class=n>{r['lines']}</td><td class=n>{r['total']}</td>"
        f"<td>{html.escape(r['ledger_system'])} {html.escape(r['ledger_number'] or r['ledger_id'] or '')}</td>"
        f"<td class=n>{r['attempts']}</td><td>{html.escape(r['message'][:300])}</td>"
        "</tr>"
        for r in rows
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>kassebro journal</title>
<style>body{{font:14px system-ui,sans-serif;margin:1.5em;color:#24292f}}table{{border-collapse:collapse}}
td,th{{padding:4px 10px;border-bottom:1px solid #d0d7de;text-align:left}}td.n{{text-align:right}}</style>
</head><body><h1>kassebro: posting journal</h1><p>{summary}</p>
<table><thead><tr><th>vendor</th><th>business day</th><th>state</th><th>lines</th><th>total</th>
<th>ledger voucher</th><th>attempts</th><th>message</th></tr></thead><tbody>
{body}
</tbody></table></body></html>"""


def create_app() -> FastAPI:
    from airflow.api_fastapi.core_api.security import requires_authenticated

    app = FastAPI(title="kassebro journal", dependencies=[Depends(requires_authenticated())])

    @app.get("/journal", response_class=HTMLResponse)
    def journal_page(vendor: str | None = None) -> str:
        return journal_html(vendor)

    @app.get("/journal.json")
    def journal_api(vendor: str | None = None) -> list[dict[str, Any]]:
        return journal_json(vendor)

    return app
