"""Task processes yield the CPU to the API server and the scheduler.

On a machine (or pod) that runs tasks next to Airflow's own components, a night's catch-up keeps
every core busy with task processes; at the same priority the API server then answers late (the
UI hangs, `/api/v2/monitor/health` takes seconds) and the scheduler schedules late. Each kassebro
task lowers its own process's priority first (`nice`), so the components that keep the system
responsive get the CPU when they need it and the tasks get the rest: on an idle machine a niced
task runs as fast as before. The process is the task's own (forked per task instance), so the
scheduler or Celery worker it came from keeps its priority.

`KASSEBRO_TASK_NICE` sets the niceness (default 10; 0 leaves the priority alone).

How many task processes a host runs at once is the other half. A slot is held for longer than
its task runs: Airflow 3.3's task runner (the supervisor) sees its task's sockets close, finds the
process not yet reaped, and then waits in `select` for up to `[workers] min_heartbeat_interval`
(5 s) before it looks again (read in `supervisor.py`; seen: the scheduler heard of about one task
in four 5 s or more after the task's end). So slots must far outnumber the cores. Measured on 2
cores at f9dd9e5 (docs/benchmarks.md, "A night"), 100 shops: 8 slots took a window of 151 s and
2.57 core-s per vendor-day, 32 slots 122 s and 2.25 (the floor's windows: 129 s and 59 s). Earlier,
with the DAG files parsed every 30 s, 8 had looked better than 32. `task_slots()` is what `make
run` gives the LocalExecutor and what `make bench-night` runs it with.
"""

from __future__ import annotations

import os

DEFAULT_NICE = 10
SLOTS_PER_CORE = 16


def task_niceness() -> int:
    """The niceness tasks run at, from `KASSEBRO_TASK_NICE` (0..19; a bad value is the default)."""
    raw = os.environ.get("KASSEBRO_TASK_NICE", "").strip()
    try:
        value = int(raw) if raw else DEFAULT_NICE
    except ValueError:
        return DEFAULT_NICE
    return min(max(value, 0), 19)


def yield_cpu() -> int:
    """Lower this process's priority to the task niceness (never raise it); the niceness now."""
    target = task_niceness()
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if target > current:
        os.setpriority(os.PRIO_PROCESS, 0, target)
    return os.getpriority(os.PRIO_PROCESS, 0)


def task_slots(cores: int | None = None) -> int:
    """Task processes a host should run at once: `SLOTS_PER_CORE` per core (tasks wait on ledgers,
    the database and their own runner's end, see the module docstring), at least 16."""
    return max(16, SLOTS_PER_CORE * (cores or os.cpu_count() or 1))
