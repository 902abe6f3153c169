"""The night bench's own PostgreSQL server for the journal: made, used, counted apart, removed.

A night counts the journal's queries as ours only if this server really starts here (CI's
machine is the bench's) and its CPU is read from its own processes, not the metadata DB's.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from benchmarks import night, pg_cluster
from kassebro.demo.launcher import _free_port

pytestmark = pytest.mark.integration


def test_the_journal_gets_a_server_of_its_own_whose_cpu_is_counted_apart() -> None:
    with pg_cluster.started(_free_port()) as cluster:
        assert cluster.data.is_dir()
        engine = sa.create_engine(f"{cluster.url}/postgres")
        before = night.component_cpu({}, cluster.pid)
        with engine.connect() as conn:  # some work for its backends (each reaped by its first process)
            assert conn.execute(sa.text("SELECT sum(g) FROM generate_series(1, 3000000) g")).scalar() > 0
            port = conn.execute(sa.text("SHOW port")).scalar()
        engine.dispose()
        after = night.component_cpu({}, cluster.pid)
        assert int(port) == int(cluster.url.rsplit(":", 1)[1])
        assert after[pg_cluster.JOURNAL_PG] - before[pg_cluster.JOURNAL_PG] > 0.05
        # the machine's own server is found as before, not the journal's
        assert night.postgres_pid(exclude=cluster.pid) not in (None, cluster.pid)
        data = cluster.data
    assert not data.exists()  # stopped and deleted
    with pytest.raises(sa.exc.OperationalError):
        sa.create_engine(f"{cluster.url}/postgres").connect()
