"""How often the DAG processor parses our DAG files, the same in every deployment.

`dags/vendor_postings.py` builds one DAG per vendor file, so each parse costs in proportion to
the chain: for 1,000 shops about 9 s of CPU in the parsing process (reading the YAML, building
and serialising the DAGs) and 11 s in the DAG processor writing them to the metadata DB, though
nothing changed (measured alone, `docs/operations.md`). Airflow's default parses every file every
30 s; over a night of 1,000 shops that was 0.79 core-s per vendor-day. At every 300 s it was still
0.11-0.15 of a core all night at 1,000 shops, per vendor-day growing with the chain (the parse
grows with N and so does the night).

The DAG files change only when the code or the config does, so a parse is asked for when they
do, and the periodic one is a safety net, once an hour:
- a DAG file whose modification time is newer than its last parse is parsed at once
  (`file_parsing_sort_mode = modified_time`): a deployed change to the code shows in seconds;
- `kassebro config reload` checks every vendor file and then asks for a parse of the DAG files
  that read the config (`request_reparse`, what the UI's "Reparse Dag" does for one file);
- a restarted DAG processor parses every file.
A vendor file edited without any of these shows within the hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PARSE_INTERVAL_SECONDS = 3600

PARSE_SETTINGS: dict[str, str] = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(PARSE_INTERVAL_SECONDS),
    "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE": "modified_time",
}
"""The environment that says it, for every Airflow component (docker-compose.yaml and the Helm
values carry the same: `tests/unit/test_parse_settings.py`)."""

CONFIG_DAG_FILES: tuple[str, ...] = ("ledger_readback.py", "vendor_postings.py", "webshop_transfers.py")
"""The DAG files (in `dags/`) that build their DAGs from the config directory."""


class ReparseError(Exception):
    """The parse could not be asked for: the message says where and why (no credentials in it)."""


@dataclass(frozen=True)
class ParseRequest:
    """One DAG file the DAG processor was asked to parse."""

    bundle: str
    """The DAG bundle's name (`dags-folder` for `[core] dags_folder`)."""
    file: str
    """The file's path in the bundle."""
    already_pending: bool
    """A request for it was waiting already (nothing added)."""


def request_reparse() -> list[ParseRequest]:
    """Ask the DAG processor to parse the config's DAG files now, through the metadata DB.

    The same request as Airflow's own "Reparse Dag" (`PUT /api/v2/parseDagFile/{file_token}`
    adds a `DagPriorityParsingRequest`; the DAG processor claims them at each loop), for every
    bundle that holds one of `CONFIG_DAG_FILES`: a local bundle's folder, or the DAGs the metadata
    DB knows (a file that has no DAG yet, in a bundle that is not a local folder, waits for the
    next periodic parse). A request already pending is left as it is: the DAG processor parses a
    file once for it.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dag import DagModel
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with create_session() as session:
            bundles = list(DagBundlesManager().get_all_dag_bundles())
            wanted: set[tuple[str, str]] = set()
            for bundle in bundles:
                folder = _local_folder(bundle)
                if folder is not None:
                    wanted |= {(bundle.name, name) for name in CONFIG_DAG_FILES if (folder / name).is_file()}
            known = session.execute(
                select(DagModel.bundle_name, DagModel.relative_fileloc)
                .where(DagModel.relative_fileloc.in_(CONFIG_DAG_FILES))
                .distinct()
            ).all()
            wanted |= {(b, f) for b, f in known if b in {x.name for x in bundles}}
            pending = set(
                session.execute(
                    select(DagPriorityParsingRequest.bundle_name, DagPriorityParsingRequest.relative_fileloc)
                ).all()
            )
            requests = []
            for bundle_name, file in sorted(wanted):
                already = (bundle_name, file) in pending
                if not already:
                    session.add(DagPriorityParsingRequest(bundle_name=bundle_name, relative_fileloc=file))
                requests.append(ParseRequest(bundle_name, file, already))
    except SQLAlchemyError as exc:
        raise ReparseError(
            f"Airflow's metadata DB ({_database()}) did not take the request: {type(exc).__name__}: "
            f"{str(exc.orig if getattr(exc, 'orig', None) else exc).splitlines()[0]}. Run this with the "
            "deployment's Airflow settings (AIRFLOW_HOME or AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)."
        ) from None
    if not requests:
        raise ReparseError(
            f"no DAG bundle of this Airflow ({_database()}) holds {', '.join(CONFIG_DAG_FILES)}: "
            "is this the deployment's AIRFLOW_HOME?"
        )
    return requests


def _local_folder(bundle: object) -> Path | None:
    from airflow.dag_processing.bundles.local import LocalDagBundle

    return bundle.path if isinstance(bundle, LocalDagBundle) else None


def _database() -> str:
    """The metadata DB's URL without its password, to name it in an error."""
    from airflow.configuration import conf
    from sqlalchemy.engine import make_url

    try:
        return make_url(conf.get("database", "sql_alchemy_conn")).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only to name it; a URL that does not parse is not shown
        return "its configured URL"
