"""A throwaway PostgreSQL server for the bench's journal, so its CPU is counted apart.

In a deployment the journal and Airflow's metadata DB may share one server; in the night bench
they did, and the server's CPU was counted as Airflow's: our steps' claims, records, Z reports
and file index were read as Airflow's cost of a longer night. On a server of its own the
journal's queries are ours, measured as its own component (`night.component_cpu`).

Made with the machine's own PostgreSQL binaries (`initdb`, `pg_ctl`; Debian puts them under
/usr/lib/postgresql/<version>/bin), as the `postgres` user when run as root (initdb refuses
root), listening on 127.0.0.1 and a socket in its own directory, trust auth, PostgreSQL's
defaults otherwise (those of the machine's server too: 100 connections, 128 MB shared buffers,
fsync on).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

JOURNAL_PG = "journal's PostgreSQL"
"""The component, in a night's results, of the journal's own server: our steps' queries."""


@dataclass(frozen=True)
class Cluster:
    """A started server: its URL without a database (as `Topology.pg_server`) and the pid of its
    first process (its backends are below it)."""

    url: str
    pid: int
    data: Path


def binaries() -> Path | None:
    """The directory with initdb and pg_ctl: on PATH, else Debian's newest version."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def _as_owner(argv: list[str]) -> list[str]:
    """As the postgres user when run as root (initdb and the server refuse root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def start(port: int) -> Cluster:
    """A new server on `port` (`stop` it after). RuntimeError, with what initdb or pg_ctl said,
    when it cannot be made: the caller decides whether the journal then shares the metadata DB's
    server (and says so in its result)."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("no initdb found (PATH, /usr/lib/postgresql/*/bin)")
    data = Path(tempfile.mkdtemp(prefix="kassebro-bench-journal-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        pgdata = data / "pgdata"
        _run([str(bin_dir / "initdb"), "-D", str(pgdata), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
        _run([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-o", options, "-l", str(data / "server.log"), "-w", "start"])
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (RuntimeError, OSError, LookupError, ValueError) as exc:
        shutil.rmtree(data, ignore_errors=True)
        raise RuntimeError(f"the journal's server could not be started: {exc}") from exc
    return Cluster(f"postgresql+psycopg2://postgres@127.0.0.1:{port}", pid, data)


def stop(cluster: Cluster) -> None:
    """Stop the server and delete its files."""
    bin_dir = binaries()
    try:
        if bin_dir is not None:
            _run([str(bin_dir / "pg_ctl"), "-D", str(cluster.data / "pgdata"), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(cluster.data, ignore_errors=True)


@contextlib.contextmanager
def started(port: int) -> Iterator[Cluster]:
    """`start`, for as long as the block runs; stopped and deleted after."""
    cluster = start(port)
    try:
        yield cluster
    finally:
        stop(cluster)


def _run(argv: list[str]) -> None:
    """Run a PostgreSQL tool; RuntimeError with what it said when it fails or cannot be run."""
    try:
        done = subprocess.run(_as_owner(argv), capture_output=True, text=True, check=False)
    except OSError as exc:  # no runuser, no such binary
        raise RuntimeError(f"{Path(argv[0]).name} could not be run: {exc}") from exc
    if done.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
