"""Paying for our imports once per worker, not once per task.

Airflow 3 runs each task instance in a process forked from a long-lived one: the LocalExecutor's
worker processes (forked from the scheduler), or a Celery worker's pool processes (forked from the
worker). What that parent has imported, the task has for free. A vendor-day's tasks otherwise pay,
each in its own fresh process, for pandas and pyarrow, kassebro's booking and ledger modules and,
in `prepare`, Great Expectations' import and context (seconds: docs/benchmarks.md, "A night").

`plugins/airflow_local_settings.py` calls `preload_if_forking()` when Airflow starts a process;
it preloads only in the processes tasks are forked from (`airflow scheduler`, `airflow celery
worker`), never in the API server, the DAG processor or a CLI command, whose start stays quick.
`KASSEBRO_PRELOAD=0` turns it off, `=1` forces it (benchmarks compare both).

Only imports and GX's ephemeral context are made in the parent: no thread, pool or connection
that a forked child could inherit half-held (pyarrow's thread pools start on first use, in the task).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)

FORKING_COMMANDS = (("scheduler",), ("celery", "worker"))
"""The `airflow` subcommands whose process task processes are forked from."""


def forks_tasks(argv: Sequence[str]) -> bool:
    """Whether this process is one that task processes are forked from, by its command line."""
    if not argv or os.path.basename(argv[0]) not in ("airflow", "__main__.py", "-m"):
        return False
    words = [a for a in argv[1:] if not a.startswith("-")]
    return any(tuple(words[: len(command)]) == command for command in FORKING_COMMANDS)


FIRST_USED_IN_TASKS = (
    "kassebro.booking.rules",
    "kassebro.sources.file_index",
    "pandas.core.methods.to_dict",
    "pandas.core.arrays.arrow.extension_types",
    "pyarrow.pandas_compat",
    "multiprocessing.synchronize",  # tqdm's lock (GX's disabled progress bars): only the import, the lock is the task's
)
"""Modules a forked `prepare` still imported itself (sys.modules before and after, in a fork)."""


def preload() -> float:
    """Import what our tasks use and build GX's context; the seconds it took."""
    start = time.perf_counter()
    import importlib

    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401 - the day's frames
    from airflow.sdk import ObjectStoragePath  # noqa: F401 - the work files' (fsspec)

    import kassebro.airflow.dagfactory  # noqa: F401 - what the DAG file a task parses imports
    import kassebro.airflow.hooks  # noqa: F401
    import kassebro.airflow.journal_view  # noqa: F401 - the plugin file each task imports (FastAPI)
    import kassebro.booking.verdict  # noqa: F401
    import kassebro.core.workfiles  # noqa: F401
    import kassebro.posting.pipeline  # noqa: F401
    import kassebro.posting.zreports  # noqa: F401
    import kassebro.readback.mapping  # noqa: F401
    import kassebro.sources.sql  # noqa: F401
    from kassebro.checks import gx
    from kassebro.checks.validate import RULES
    from kassebro.core import saft_codes
    from kassebro.ledgers import registry
    from kassebro.sources import saft

    for module in ("upath.implementations.local", *FIRST_USED_IN_TASKS):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    for system in registry.systems():  # each ledger's client (Fiken's alone took 0.26 s in a task)
        _ = system.client_class
    gx.warm((rule, rule.name, rule.expectations) for rule in RULES)
    saft.schema()  # the XSD, parsed by lxml: a plain in-memory structure a fork can share
    saft_codes.warm()
    return time.perf_counter() - start


def preload_if_forking(argv: Sequence[str] | None = None) -> bool:
    """Preload in the processes tasks are forked from (see the module docstring)."""
    setting = os.environ.get("KASSEBRO_PRELOAD", "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting not in ("1", "true", "yes", "on") and not forks_tasks(sys.argv if argv is None else argv):
        return False
    try:
        seconds = preload()
    except Exception:  # noqa: BLE001 - a failed preload only costs time: each task imports what it needs
        log.exception("kassebro preload failed; tasks import what they need themselves")
        return False
    log.info("kassebro preloaded pandas, Great Expectations and its modules in %.1f s", seconds)
    return True
