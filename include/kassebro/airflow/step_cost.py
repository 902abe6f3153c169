"""What one step of a task costs, in its task log: so a slow night can be split into our work
(the step) and Airflow's (starting the process, parsing the DAG file, reporting the state).

One line per step, `kassebro step cost: <step> <vendor> <day>: <cpu> s CPU in the step, <wall> s
wall, <before> s CPU in this process before it; <sys> s of the step's in the kernel, <faults> page
faults, <imports> modules imported`: a forked task process copies each page of its parent that it
writes to, which shows as kernel CPU and page faults, not as our code's; a module the process it was
forked from had not imported (`kassebro.airflow.preload`) is imported inside the step. The
process's CPU is counted from its start: a task process forked from a preloaded scheduler or
worker (plugins/airflow_local_settings.py) starts at zero, so "before it" is what the task runner
spent before our code ran. `make bench-night` reads these lines from the task logs
(benchmarks/night.py, `step_costs`).
"""

from __future__ import annotations

import re
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

MARK = "kassebro step cost: "
LINE = re.compile(
    re.escape(MARK) + r"(?P<step>\S+) (?P<vendor>\S+) (?P<day>\S+): (?P<cpu>[\d.]+) s CPU in the step, "
    r"(?P<wall>[\d.]+) s wall, (?P<before>[\d.]+) s CPU in this process before it"
    r"(?:; (?P<sys>[\d.]+) s of the step's in the kernel, (?P<faults>\d+) page faults"
    r"(?:, (?P<imports>\d+) modules imported)?)?"
)


@dataclass(frozen=True)
class StepCost:
    """One step's cost as its log line gives it.

    Attributes:
      step: "plan_days", "prepare" or "post".
      vendor, day: whose ("-" for a step of a whole run).
      cpu_s: CPU seconds of the task process inside the step.
      wall_s: wall seconds inside the step.
      before_s: CPU seconds the task process spent before the step (start-up, DAG parse).
      sys_s: of cpu_s, the seconds in the kernel (None in lines written before it was logged).
      faults: minor page faults inside the step (None likewise).
      imports: modules imported inside the step (None in lines written before it was logged).
    """

    step: str
    vendor: str
    day: str
    cpu_s: float
    wall_s: float
    before_s: float
    sys_s: float | None = None
    faults: int | None = None
    imports: int | None = None


@contextmanager
def measured(step: str, vendor_id: str, day: str | None = None) -> Iterator[None]:
    """Log the step's cost when it ends, however it ends (a failed step cost as much)."""
    before, started, usage = time.process_time(), time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    modules = len(sys.modules)
    try:
        yield
    finally:
        cpu, wall = time.process_time() - before, time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        print(
            f"{MARK}{step} {vendor_id} {day or '-'}: {cpu:.3f} s CPU in the step, {wall:.3f} s wall, "
            f"{before:.3f} s CPU in this process before it; {after.ru_stime - usage.ru_stime:.3f} s of the "
            f"step's in the kernel, {after.ru_minflt - usage.ru_minflt} page faults, "
            f"{len(sys.modules) - modules} modules imported",
            flush=True,
        )


def parse(text: str) -> list[StepCost]:
    """Every step cost line in a task log (plain or Airflow's JSON lines)."""
    return [
        StepCost(
            m["step"],
            m["vendor"],
            m["day"],
            float(m["cpu"]),
            float(m["wall"]),
            float(m["before"]),
            float(m["sys"]) if m["sys"] is not None else None,
            int(m["faults"]) if m["faults"] is not None else None,
            int(m["imports"]) if m["imports"] is not None else None,
        )
        for m in LINE.finditer(text)
    ]
