"""`kassebro ...`: check config, look at the journal, test a connection, run the demo."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path


def _config_check(args: argparse.Namespace) -> int:
    from kassebro.config import config_dir, load_vendors, vendor_warnings

    root = Path(args.config) if args.config else config_dir()
    configs = load_vendors(root)
    warned = 0
    for vendor in configs.vendors:
        print(f"ok     {vendor.id:<24} {vendor.ledger.system:<10} since {vendor.enabled_since}  {vendor.config_file}")
        for warning in vendor_warnings(vendor):
            warned += 1
            print(f"WARN   {vendor.id}: {warning}")
    for issue in configs.issues:
        print(f"ERROR  {issue}")
    print(
        f"{len(configs.vendors)} vendor(s) ok, {warned} warning(s), "
        f"{len(configs.broken_files)} file(s) with errors in {root}"
    )
    return 1 if configs.issues else 0


def _config_reload(args: argparse.Namespace) -> int:
    """Check first: a reload of files that do not load would only swap DAGs for error stand-ins."""
    if _config_check(args) | _webshop_check(args):
        print("nothing reloaded: fix the errors above, then reload")
        return 1
    from kassebro.airflow.parsing import ReparseError, request_reparse

    try:
        requests = request_reparse()
    except ReparseError as exc:
        print(f"ERROR  {exc}")
        return 2
    for request in requests:
        said = "was already asked for" if request.already_pending else "asked for"
        print(f"reparse {said}: {request.file} in bundle {request.bundle}")
    print("the DAG processor parses them within seconds; the UI shows the change at its next refresh")
    return 0


def _journal(args: argparse.Namespace) -> int:
    from kassebro.posting.journal import Journal
    from kassebro.posting.journal_table import journal_table

    print(journal_table(Journal(args.url).entries(args.vendor)))
    return 0


def _journal_rebuild(args: argparse.Namespace) -> int:
    from kassebro.airflow.hooks import ledger_for
    from kassebro.config import load_vendor
    from kassebro.posting.journal import Journal
    from kassebro.posting.rebuild import rebuild

    vendor = load_vendor(args.vendor)
    target = vendor.ledger
    ledger = ledger_for(target.system, target.connection, target.company, target.client_org_number, True)
    days = rebuild(vendor, args.date_from, args.date_to, ledger, Journal(args.url))
    for day in days:
        if not day.versions:
            print(f"{vendor.id} {day.day}: nothing in the ledger; journal left as it was")
        else:
            fits = "the day as it reads now" if day.matches_day else "NOT the day as read now: the next run corrects"
            print(f"{vendor.id} {day.day}: {day.state}, {day.versions} voucher(s), {fits}")
    return 0


def _connection_test(args: argparse.Namespace) -> int:
    from airflow.models.connection import Connection

    from kassebro.airflow.hooks import hook_class
    from kassebro.ledgers import registry

    conn_type = Connection.get_connection_from_secrets(args.conn_id).conn_type
    if conn_type not in registry.names():
        print(f"{args.conn_id} is a {conn_type!r} connection, not one of {', '.join(registry.names())}")
        return 1
    hook = hook_class(conn_type)(args.conn_id, company=args.company or None)
    ok, message = hook.test_connection()
    print(message)
    return 0 if ok else 1


def _demo_init(args: argparse.Namespace) -> int:
    from kassebro.demo import home as demo

    home = demo.init(Path(args.home) if args.home else None, days=args.days)
    print(f"demo home ready: {home}")
    return 0


def _demo_run(args: argparse.Namespace) -> int:
    from kassebro.demo.launcher import run_demo

    return run_demo(days=args.days)


def _run(args: argparse.Namespace) -> int:
    from kassebro.demo.launcher import run_airflow

    return run_airflow(days=args.days, port=args.port)


def _run_distributed(args: argparse.Namespace) -> int:
    from kassebro.demo.distributed import Topology, run_distributed

    return run_distributed(
        Topology(
            days=args.days,
            port=args.port,
            workers=args.workers,
            concurrency=args.concurrency,
            metadata_db=args.metadata_db,
            journal_db=args.journal_db,
            paused=args.paused,
            restart=not args.no_restart,
        )
    )


def _sandbox(args: argparse.Namespace) -> int:
    import importlib

    if args.system == "all":
        from kassebro.demo.sandboxes import main as all_main

        return all_main(["--state-dir", args.state] if args.state else [])
    main = importlib.import_module(f"kassebro.sandbox.{args.system}").main
    return main((["--port", str(args.port)] if args.port else []) + (["--state", args.state] if args.state else []))


def _pools(args: argparse.Namespace) -> int:
    from kassebro.airflow.pools import sync_pools, wanted_pools
    from kassebro.config import config_dir, load_vendors

    vendors = load_vendors(Path(args.config) if args.config else config_dir()).vendors
    pools = wanted_pools(vendors) if args.action == "show" else sync_pools(vendors)
    for name, (slots, description) in pools.items():
        print(f"{name:<40} {slots:>3}  {description}")
    return 0


def _iso_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _voucher_preview(args: argparse.Namespace) -> int:
    from kassebro.booking.preview import run

    try:
        code, out, err = run(args.vendor, args.source, args.date, as_json=args.json)
    except Exception as exc:  # a bug, never bad input (that is a verdict): one line, no traceback
        if os.environ.get("KASSEBRO_DEBUG"):
            raise
        print(
            f"kassebro could not preview the day: {type(exc).__name__}: {exc} (a bug; KASSEBRO_DEBUG=1 shows where)",
            file=sys.stderr,
        )
        return 2
    if out:
        print(out)
    if err:
        print(err, file=sys.stderr)
    return code


def _mapping_check(args: argparse.Namespace) -> int:
    """0: the mapping fits the ledger's chart; 1: it does not (the list); 2: it could not be checked."""
    from kassebro.airflow.hooks import ledger_for
    from kassebro.booking.preview import load_vendor_file
    from kassebro.config import load_vendor
    from kassebro.core.errors import KassebroError
    from kassebro.readback.mapping import can_read_chart, check_mapping

    try:
        is_file = args.vendor.endswith((".yaml", ".yml")) or os.sep in args.vendor
        vendor = load_vendor_file(args.vendor) if is_file else load_vendor(args.vendor)
    except KassebroError as exc:
        print(exc, file=sys.stderr)
        return 2
    target = vendor.ledger
    if not can_read_chart(target.system):
        print(f"{vendor.id}: the {target.system} client cannot read its chart of accounts yet", file=sys.stderr)
        return 2
    try:
        ledger = ledger_for(target.system, target.connection, target.company, target.client_org_number, True)
        report = check_mapping(vendor, ledger)
    except Exception as exc:  # no such connection, refused, unreachable: nothing was checked
        if os.environ.get("KASSEBRO_DEBUG"):
            raise
        print(f"{vendor.id}: the mapping could not be checked: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(report.text())
    return 0 if report.ok else 1


def _reconcile(args: argparse.Namespace) -> int:
    """0: nothing found; 1: findings (listed); 2: a ledger could not be read (unknown, not agreed)."""
    from kassebro.airflow.hooks import ledger_for
    from kassebro.config import config_dir, load_vendors
    from kassebro.config.readback import load_readback
    from kassebro.posting.journal import Journal
    from kassebro.readback.findings import Findings
    from kassebro.readback.reconcile import reconcile

    root = config_dir()
    vendors = [v for v in load_vendors(root).vendors if not args.vendor or v.id in args.vendor]
    last = args.to or dt.date.today() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=(args.days or load_readback(root).reconcile_days) - 1)
    journal = Journal(args.url)
    if args.show:
        found = Findings(journal.url).read([v.id for v in vendors], first, last)
    else:

        def ledger(vendor):  # noqa: ANN001, ANN202
            t = vendor.ledger
            return ledger_for(t.system, t.connection, t.company, t.client_org_number)

        result = reconcile(vendors, first, last, ledger, journal=journal)
        found = list(result.findings)
        print(
            f"{len(result.checked)} vendor-day(s) of {len(vendors)} vendor(s) from {first} to {last}: "
            f"{result.vouchers_read} voucher(s), {result.postings_read} posting(s) read"
        )
        for note in result.not_checked:
            print(f"NOT CHECKED  {note}")
    for f in found:
        print(f"{f.kind.upper():<12} {f.vendor_id:<20} {f.business_day}  {f.message}")
    print(f"{len(found)} finding(s)")
    if any(f.kind == "unreadable" for f in found):
        return 2
    return 1 if found else 0


def _export(args: argparse.Namespace) -> int:
    """0: written; 1: refused (the figures do not add up, or an option is missing); 2: not read."""
    from airflow.models.connection import Connection

    from kassebro.airflow.hooks import ledger_for
    from kassebro.config import config_dir, load_vendors
    from kassebro.core.money import format_ore
    from kassebro.readback.yearend import YearEndError, export_target, export_year, parse_grouping

    configs = load_vendors(Path(args.config) if args.config else config_dir())
    try:
        grouping = parse_grouping(args.grouping)
        target = export_target(
            configs.vendors,
            args.company,
            contact=args.contact,
            org_number=args.org_number,
            name=args.name,
            telephone=args.telephone,
        )
    except (YearEndError, ValueError) as exc:
        print(f"kassebro export: {exc}", file=sys.stderr)
        for issue in configs.issues:  # a vendor file that did not load may be the one that names it
            print(f"  not read: {issue}", file=sys.stderr)
        return 1
    try:
        system = Connection.get_connection_from_secrets(args.company).conn_type
        ledger = ledger_for(system, args.company, target.ledger_company, target.client_org_number, True)
        result = export_year(ledger, args.year, Path(args.out), target.company, grouping=grouping)
    except YearEndError as exc:
        print(f"kassebro export: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # no such connection, refused, unreachable, no read-back: nothing written
        if os.environ.get("KASSEBRO_DEBUG"):
            raise
        print(f"kassebro export: {args.company} could not be read: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(
        f"{target.company.label(args.year)}: {result.accounts} account(s), {result.entries} voucher(s), "
        f"{result.lines} line(s), debit = credit = {format_ore(result.total_debit)}"
    )
    for path in (
        result.saft_file,
        result.trial_balance_csv,
        result.trial_balance_parquet,
        result.transactions_csv,
        result.transactions_parquet,
    ):
        print(f"wrote {path}")
    return 0


def _webshop_transfer(args: argparse.Namespace) -> int:
    """0: every due order transferred; 1: some held back or refused (the others went); 2: not read."""
    from kassebro.airflow.webshop_dags import WebshopRunProblems, run
    from kassebro.config.webshop import load_webshop
    from kassebro.core.errors import ConfigError

    try:
        shop = load_webshop(args.webshop, Path(args.config) if args.config else None)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"ERROR  {issue}", file=sys.stderr)
        return 1
    try:
        summary = run(shop, args.order or None, email=not args.no_email)
    except WebshopRunProblems as exc:
        print(f"kassebro webshop transfer: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the shop or Tripletex could not be reached: nothing is known to be done
        if os.environ.get("KASSEBRO_DEBUG"):
            raise
        print(f"kassebro webshop transfer: {shop.id}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(summary["summary"])
    return 0


def _webshop_status(args: argparse.Namespace) -> int:
    from kassebro.core.money import format_ore
    from kassebro.posting.transfers import Transfers

    rows = Transfers(args.url).all(args.webshop)
    for r in rows:
        invoice = (
            f"invoice {r.invoice_number}" if r.invoice_number else (f"order {r.tx_order_id}" if r.tx_order_id else "")
        )
        total = format_ore(r.total_ore) if r.total_ore is not None else "?"
        head = f"{r.webshop_id:<20} {r.order_number:<10} {r.state:<10} {r.transfer:<13}"
        print(f"{head} {total:>12} {invoice:<16} {r.message}")
    print(f"{len(rows)} order(s)")
    return 0


def _webshop_check(args: argparse.Namespace) -> int:
    from kassebro.config.webshop import load_webshops

    loaded = load_webshops(Path(args.config) if args.config else None)
    for shop in loaded.webshops:
        methods = ", ".join(f"{m}: {r.transfer}" for m, r in sorted(shop.payment_methods.items()))
        print(f"ok     {shop.id:<24} {shop.source.kind:<12} -> {shop.ledger.connection}  ({methods})")
    for issue in loaded.issues:
        print(f"ERROR  {issue}")
    return 1 if loaded.issues else 0


def build_parser() -> argparse.ArgumentParser:
    from kassebro.ledgers import registry

    parser = argparse.ArgumentParser(prog="kassebro", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    config = sub.add_parser("config", help="vendor configuration").add_subparsers(dest="action", required=True)
    check = config.add_parser("check", help="validate every vendor file; exit 1 on errors")
    check.add_argument("--config", help="config directory (default: $KASSEBRO_CONFIG or ./config)")
    check.set_defaults(func=_config_check)
    reload = config.add_parser(
        "reload", help="check every vendor and webshop file, then have Airflow parse the DAG files now"
    )
    reload.add_argument("--config", help="config directory (default: $KASSEBRO_CONFIG or ./config)")
    reload.set_defaults(func=_config_reload)

    journal = sub.add_parser("journal", help="the state of every vendor's days")
    journal.add_argument("--vendor")
    journal.add_argument("--url", help="journal database URL (default: $KASSEBRO_JOURNAL_URL or SQLite)")
    journal.set_defaults(func=_journal)
    journal_sub = journal.add_subparsers(dest="action")
    again = journal_sub.add_parser("rebuild", help="rebuild the journal from what the ledger holds")
    again.add_argument("--vendor", required=True)
    again.add_argument("--from", dest="date_from", type=_iso_day, required=True)
    again.add_argument("--to", dest="date_to", type=_iso_day, required=True)
    again.add_argument("--url", help="journal database URL (default: $KASSEBRO_JOURNAL_URL or SQLite)")
    again.set_defaults(func=_journal_rebuild)

    conn = sub.add_parser("connection", help="ledger connections").add_subparsers(dest="action", required=True)
    test = conn.add_parser("test", help="test a ledger connection, in the system's own words")
    test.add_argument("conn_id")
    test.add_argument("--company", help="Fiken: the company slug")
    test.set_defaults(func=_connection_test)

    demo = sub.add_parser("demo", help="the demo vendors").add_subparsers(dest="action", required=True)
    init = demo.add_parser("init", help="write the demo home: config and SAF-T files")
    init.add_argument("--home")
    init.add_argument("--days", type=int, default=14)
    init.set_defaults(func=_demo_init)
    run_demo = demo.add_parser("run", help="post every demo vendor's days without the UI; print a table")
    run_demo.add_argument("--days", type=int, default=14)
    run_demo.set_defaults(func=_demo_run)

    run = sub.add_parser("run", help="the demo with Airflow's UI, scheduler and the ledger sandbox")
    run.add_argument("--days", type=int, default=14)
    run.add_argument("--port", type=int, default=8080)
    run.set_defaults(func=_run)

    dist = sub.add_parser(
        "run-distributed",
        help="the demo on docker-compose's topology with this machine's PostgreSQL and Redis: CeleryExecutor, "
        "api-server, scheduler, dag-processor, triggerer and Celery workers as processes of their own",
    )
    dist.add_argument("--days", type=int, default=14)
    dist.add_argument("--port", type=int, default=8080)
    dist.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    dist.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="task slots per worker (default: this machine's task slots, 16 a core, shared among the workers)",
    )
    dist.add_argument("--metadata-db", default="kassebro_airflow_dist", help="Airflow's DB (created if missing)")
    dist.add_argument("--journal-db", default="kassebro_journal_dist", help="the journal's DB (created if missing)")
    dist.add_argument("--paused", action="store_true", help="keep the DAGs paused at creation")
    dist.add_argument("--no-restart", action="store_true", help="do not start a process that died again")
    dist.set_defaults(func=_run_distributed)

    voucher = sub.add_parser("voucher", help="vouchers").add_subparsers(dest="action", required=True)
    preview = voucher.add_parser("preview", help="build a day's voucher from a source and show it; posts nothing")
    preview.add_argument("--vendor", required=True, help="vendor file (config/vendors/<id>.yaml)")
    preview.add_argument("--source", required=True, help="SAF-T file or directory, or a POS database URL")
    preview.add_argument("--date", required=True, type=_iso_day, help="business day, YYYY-MM-DD")
    preview.add_argument("--json", action="store_true", help="print the stable JSON (docs/booking-rules.md)")
    preview.set_defaults(func=_voucher_preview)

    pools = sub.add_parser("pools", help="the ledger pools (one per system, per company where needed)")
    pools_action = pools.add_subparsers(dest="action", required=True)
    for action, text in (("sync", "create or update them in Airflow"), ("show", "print them, change nothing")):
        command = pools_action.add_parser(action, help=text)
        command.add_argument("--config", help="config directory (default: KASSEBRO_CONFIG or ./config)")
        command.set_defaults(func=_pools)

    mapping = sub.add_parser("mapping", help="vendor mappings").add_subparsers(dest="action", required=True)
    mapping_check = mapping.add_parser(
        "check", help="check a vendor's mapping against its ledger's chart; exit 1 listing what does not fit"
    )
    mapping_check.add_argument("--vendor", required=True, help="vendor file (config/vendors/<id>.yaml) or vendor id")
    mapping_check.set_defaults(func=_mapping_check)

    rec = sub.add_parser("reconcile", help="compare the ledger with the journal and the Z reports; store findings")
    rec.add_argument("--vendor", action="append", help="only this vendor (repeatable); default: every vendor")
    rec.add_argument("--days", type=int, help="days back (default: readback.yaml's reconcile_days, 30)")
    rec.add_argument("--to", type=_iso_day, help="last day, YYYY-MM-DD (default: yesterday)")
    rec.add_argument("--show", action="store_true", help="print the stored findings; read no ledger")
    rec.add_argument("--url", help="journal database URL (default: $KASSEBRO_JOURNAL_URL or SQLite)")
    rec.set_defaults(func=_reconcile)

    export = sub.add_parser("export", help="the year-end export: trial balance, transactions, SAF-T Financial file")
    export.add_argument("--company", required=True, help="the ledger's Airflow connection id")
    export.add_argument("--year", type=int, required=True, help="the fiscal year (1 January to 31 December)")
    export.add_argument("--out", required=True, help="directory to write the files to")
    export.add_argument("--contact", required=True, help='the SAF-T header\'s contact person, "First Last"')
    export.add_argument("--telephone", help="the contact person's telephone number")
    export.add_argument("--org-number", help="the company (default: the vendor files that use the connection)")
    export.add_argument("--name", help="the company's name (default: the vendor files' name)")
    export.add_argument(
        "--grouping",
        action="append",
        default=[],
        metavar="ACCOUNT=CODE",
        help="an account's næringsspesifikasjon code, over the NS 4102 rule (repeatable)",
    )
    export.add_argument("--config", help="config directory (default: $KASSEBRO_CONFIG or ./config)")
    export.set_defaults(func=_export)

    shop = sub.add_parser("webshop", help="webshop orders to Tripletex").add_subparsers(dest="action", required=True)
    transfer = shop.add_parser("transfer", help="transfer completed orders now (the DAG's task), or re-transfer some")
    transfer.add_argument("--webshop", required=True, help="the webshop's id (config/webshops/<id>.yaml)")
    transfer.add_argument("--order", action="append", help="re-transfer this order number (repeatable)")
    transfer.add_argument("--no-email", action="store_true", help="do not e-mail the customer again")
    transfer.add_argument("--config", help="config directory (default: $KASSEBRO_CONFIG or ./config)")
    transfer.set_defaults(func=_webshop_transfer)
    status = shop.add_parser("status", help="where each web order stands in Tripletex")
    status.add_argument("--webshop", help="only this webshop")
    status.add_argument("--url", help="journal database URL (default: $KASSEBRO_JOURNAL_URL or SQLite)")
    status.set_defaults(func=_webshop_status)
    wcheck = shop.add_parser("check", help="validate every webshop file; exit 1 on errors")
    wcheck.add_argument("--config", help="config directory (default: $KASSEBRO_CONFIG or ./config)")
    wcheck.set_defaults(func=_webshop_check)

    sandbox = sub.add_parser("sandbox", help="run a ledger sandbox, or all of them (ports from the registry)")
    sandbox.add_argument("system", nargs="?", default="all", choices=["all", *registry.names()])
    sandbox.add_argument("--port", type=int, help="the system's own default when left out")
    sandbox.add_argument("--state", help="file (directory for all) that keeps the books between restarts")
    sandbox.set_defaults(func=_sandbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
