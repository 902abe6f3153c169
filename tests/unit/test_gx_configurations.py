"""`gx.configurations_built_once`: GX's expectation configurations built once per validation.

The block replaces a GX property for the length of one validation; these tests hold it to giving
the same verdicts as GX's own property, to leaving the property as it found it, and to building
nothing that outlives the block.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pandas as pd
import pytest

from kassebro.checks import gx


def _expectations(gxe: Any) -> list[Any]:
    return [
        gxe.ExpectColumnValuesToBeBetween(column="ore", min_value=0, max_value=1_000),
        gxe.ExpectColumnValuesToNotBeNull(column="receipt"),
        gxe.ExpectColumnValuesToBeInSet(column="vat_code", value_set=["3", "31", "33"]),
    ]


FRAME = pd.DataFrame(
    {
        "ore": [10, -5, 200, 5_000, 7],
        "receipt": ["1", "2", None, "4", "5"],
        "vat_code": ["3", "31", "3", "33", "99"],
    }
)


def test_the_property_is_gxs_own_outside_the_block() -> None:
    from great_expectations.expectations.expectation import Expectation

    original = Expectation.__dict__["configuration"]
    with gx.configurations_built_once():
        assert Expectation.__dict__["configuration"] is not original
    assert Expectation.__dict__["configuration"] is original
    with pytest.raises(RuntimeError), gx.configurations_built_once():
        raise RuntimeError("a validation that raised")
    assert Expectation.__dict__["configuration"] is original


def test_a_configuration_is_built_once_inside_and_anew_outside() -> None:
    import great_expectations.expectations as gxe

    expectation = gxe.ExpectColumnValuesToNotBeNull(column="receipt")
    assert expectation.configuration is not expectation.configuration  # GX's own: a new one each read
    with gx.configurations_built_once():
        inside = expectation.configuration
        assert expectation.configuration is inside
    with gx.configurations_built_once():  # a later validation sees the expectation as it is then
        assert expectation.configuration is not inside
        assert expectation.configuration.kwargs == inside.kwargs


@pytest.mark.parametrize("frame", [FRAME, FRAME.iloc[[0]].reset_index(drop=True)], ids=["failing", "passing"])
def test_the_same_verdict_as_gxs_own_property(frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = gx.flagged_rows("configurations-test", "configurations", _expectations, frame)
    monkeypatch.setattr(gx, "configurations_built_once", contextlib.nullcontext)
    own = gx.flagged_rows("configurations-test", "configurations", _expectations, frame)
    assert kept == own
    if len(frame) == len(FRAME):
        assert kept == ({1, 2, 3, 4}, [])
    else:
        assert kept == (set(), [])


@pytest.mark.parametrize("frame", [FRAME, FRAME.iloc[[0]].reset_index(drop=True)], ids=["failing", "passing"])
def test_one_batch_per_rule_and_the_verdict_of_batch_validate(
    frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The validator gets the frame's batch once for both result formats (each get hashes the
    whole frame), and says what GX's `Batch.validate` says of the same suite."""
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine

    gets: list[int] = []
    original = PandasExecutionEngine.get_batch_data_and_markers

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        gets.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PandasExecutionEngine, "get_batch_data_and_markers", counted)
    rows, errors = gx.flagged_rows("one-batch-test", "one batch", _expectations, frame)
    assert len(gets) == 1
    batch_definition, suite = gx._gx.definition("one-batch-test", "one batch", _expectations)  # type: ignore[union-attr]
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    complete = batch.validate(suite, result_format="COMPLETE")
    flagged = {int(i) for item in complete.results for i in (item.result or {}).get("unexpected_index_list") or []}
    assert (rows, errors) == (flagged, [])
    assert complete.success == (not rows)


def test_the_fingerprint_threshold_is_gxs_own_outside_the_block() -> None:
    from great_expectations.execution_engine import pandas_execution_engine as engine

    original = engine.HASH_THRESHOLD
    with gx.fingerprint_skipped():
        assert engine.HASH_THRESHOLD == 0
    assert original == engine.HASH_THRESHOLD
    with pytest.raises(RuntimeError), gx.fingerprint_skipped():
        raise RuntimeError("a validation that raised")
    assert original == engine.HASH_THRESHOLD


@pytest.mark.parametrize("frame", [FRAME, FRAME.iloc[[0]].reset_index(drop=True)], ids=["failing", "passing"])
def test_no_frame_hashed_and_the_verdict_of_gxs_own_fingerprint(
    frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's md5 only fills a marker nobody reads: skipped, the verdict is the same."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    hashed: list[int] = []
    original = engine.hash_pandas_dataframe

    def counted(df: pd.DataFrame) -> str:
        hashed.append(len(df))
        return original(df)

    monkeypatch.setattr(engine, "hash_pandas_dataframe", counted)
    skipped = gx.flagged_rows("fingerprint-test", "fingerprint", _expectations, frame)
    assert hashed == []
    monkeypatch.setattr(gx, "fingerprint_skipped", contextlib.nullcontext)
    own = gx.flagged_rows("fingerprint-test", "fingerprint", _expectations, frame)
    assert hashed  # GX's own block hashes the frame
    assert skipped == own
