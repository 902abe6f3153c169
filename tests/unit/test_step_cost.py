"""The step cost line: written by every step, read back by bench-night."""

from __future__ import annotations

import json

import pytest

from kassebro.airflow.step_cost import measured, parse


def _spin(seconds: float) -> None:
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_step_logs_its_cpu_and_the_cpu_before_it(capsys: pytest.CaptureFixture[str]) -> None:
    _spin(0.05)
    with measured("prepare", "cafe_solsiden", "2026-11-03"):
        _spin(0.1)
    (cost,) = parse(capsys.readouterr().out)
    assert (cost.step, cost.vendor, cost.day) == ("prepare", "cafe_solsiden", "2026-11-03")
    assert 0.1 <= cost.cpu_s < 1 and cost.wall_s >= cost.cpu_s * 0.5
    assert cost.before_s >= 0.05  # this process spent that before the step
    assert cost.sys_s is not None and 0 <= cost.sys_s <= cost.cpu_s + 0.01 and cost.faults is not None


def test_a_step_that_writes_new_memory_counts_its_page_faults(capsys: pytest.CaptureFixture[str]) -> None:
    with measured("prepare", "cafe_solsiden", "2026-11-03"):
        block = bytearray(64 * 1024 * 1024)  # 64 MiB zeroed: 16,384 pages of 4 KiB touched
        del block
    (cost,) = parse(capsys.readouterr().out)
    assert cost.faults is not None and cost.faults >= 1_000


def test_a_step_that_imports_a_module_counts_it(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    sys.modules.pop("this", None)  # the Zen of Python: imported by nothing else, prints on import
    with measured("prepare", "cafe_solsiden", "2026-11-03"):
        import this  # noqa: F401
    (cost,) = parse(capsys.readouterr().out)
    assert cost.imports == 1
    with measured("prepare", "cafe_solsiden", "2026-11-03"):
        import this  # noqa: F401, F811 - already imported: nothing new
    (cost,) = parse(capsys.readouterr().out)
    assert cost.imports == 0


def test_a_line_written_before_the_imports_were_logged_still_reads() -> None:
    old = (
        "kassebro step cost: prepare kiosk_torget 2026-11-03: 0.600 s CPU in the step, 20.000 s wall, "
        "0.050 s CPU in this process before it; 0.040 s of the step's in the kernel, 8405 page faults"
    )
    (cost,) = parse(old)
    assert (cost.sys_s, cost.faults, cost.imports) == (0.04, 8405, None)


def test_a_line_written_before_kernel_time_was_logged_still_reads() -> None:
    old = (
        "kassebro step cost: post kiosk_torget -: 0.110 s CPU in the step, 0.390 s wall, "
        "0.300 s CPU in this process before it"
    )
    (cost,) = parse(old)
    assert (cost.cpu_s, cost.before_s, cost.sys_s, cost.faults) == (0.11, 0.3, None, None)


def test_a_failed_step_is_costed_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), measured("post", "kiosk_torget"):
        raise RuntimeError("refused")
    (cost,) = parse(capsys.readouterr().out)
    assert (cost.step, cost.day) == ("post", "-")


def test_the_line_is_read_from_airflows_json_task_log(capsys: pytest.CaptureFixture[str]) -> None:
    with measured("plan_days", "vinbar_kaia"):
        pass
    line = capsys.readouterr().out.strip()
    log = "\n".join(
        json.dumps({"timestamp": "2026-12-04T17:00:00Z", "event": text, "level": "info", "logger": "task.stdout"})
        for text in ("vinbar_kaia: business days ['2026-12-03']", line)
    )
    assert [c.step for c in parse(log)] == ["plan_days"]
    assert parse("no cost here") == []
