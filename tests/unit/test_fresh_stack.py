"""A step runs at one call depth, whoever calls it (`kassebro.airflow.fresh_stack`)."""

from __future__ import annotations

import contextvars
import resource
import threading
import traceback

import pytest

from kassebro.airflow.fresh_stack import call_on_fresh_stack

WHO = contextvars.ContextVar("who", default="nobody")

# a function with a frame of about 8 KiB (1,000 locals): half of CPython 3.11's 16 KiB chunks
_source = "def big():\n" + "".join(f"    v{i} = {i}\n" for i in range(1000)) + "    return v0\n"
_namespace: dict = {}
exec(compile(_source, "<big>", "exec"), _namespace)  # noqa: S102 - a fixed function made here
big = _namespace["big"]


def _at_depth(depth: int, fn, *args):  # noqa: ANN001, ANN202
    return fn(*args) if depth == 0 else _at_depth(depth - 1, fn, *args)


def _faults_calling_big(times: int = 2000) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        big()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_result_thread_and_context() -> None:
    WHO.set("the task")
    name, who = call_on_fresh_stack(lambda: (threading.current_thread().name, WHO.get()))
    assert name != threading.current_thread().name and who == "the task"


def test_an_error_is_raised_to_the_caller_as_it_was() -> None:
    class Refused(Exception):
        pass

    def step(day: str) -> None:
        raise Refused(f"{day}: refused")

    with pytest.raises(Refused, match="2026-11-03: refused") as caught:
        call_on_fresh_stack(step, "2026-11-03")
    assert any(frame.name == "step" for frame in traceback.extract_tb(caught.value.__traceback__))


def test_the_depth_inside_does_not_depend_on_the_callers() -> None:
    depth = lambda: len(traceback.extract_stack())  # noqa: E731
    inside = {_at_depth(d, call_on_fresh_stack, depth) for d in (0, 7, 40)}
    assert len(inside) == 1
    assert len({_at_depth(d, depth) for d in (0, 7, 40)}) == 3  # called inline, it does


def test_frame_chunk_thrash_depends_on_the_callers_depth_only_inline() -> None:
    """Called in a loop, `big` maps and unmaps a stack chunk on every call at some depths (a page
    fault each time) and not at others; on a fresh stack every caller depth costs the same."""
    times = 2000
    inline = {_at_depth(d, _faults_calling_big, times) >= times for d in range(0, 60, 3)}
    assert inline == {True, False}, "no depth thrashed, or every one did: the premise changed"
    fresh = {_at_depth(d, call_on_fresh_stack, _faults_calling_big, times) >= times for d in range(0, 60, 3)}
    assert len(fresh) == 1
