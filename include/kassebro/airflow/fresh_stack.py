"""Run a task's step at the same call depth under every executor.

CPython 3.11 keeps each thread's frames on a stack of 16 KiB chunks, mapped (`mmap`) when a call
does not fit in the current chunk and unmapped when that call returns. A loop that calls a
function whose frame starts right at a chunk's end therefore maps and unmaps a chunk on every
call, and every new chunk costs page faults too. Where that happens depends on how deep the
task's code runs, and that depends on what forked the task process: in a Celery worker's task
process a vendor-day's `prepare` made 43,560 `mmap`/`munmap` pairs (strace) and 52,900 page
faults, and cost 0.75 s of CPU against 0.48 s in a LocalExecutor's, the same code on the same
day (docs/benchmarks.md).

A new thread starts with a stack of its own, so our step runs at one depth whatever started the
process: the executor no longer decides its cost. The calling thread waits for it; nothing runs
beside it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def call_on_fresh_stack(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """`fn(*args, **kwargs)` in a new thread (with this thread's context variables); its result,
    or its exception raised here."""
    context = contextvars.copy_context()
    outcome: list = []

    def target() -> None:
        try:
            outcome.append((True, context.run(fn, *args, **kwargs)))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller, whatever it is
            outcome.append((False, exc))

    # a daemon: if the task process is told to stop while waiting here, it is not held open
    thread = threading.Thread(target=target, name=f"step-{getattr(fn, '__name__', 'fn')}", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value
