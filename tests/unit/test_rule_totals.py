"""`checks.rules.totals` against pandas' own groupby, the oracle it replaced.

The rules' sums are a dict, not a groupby, because pandas' fixed cost per groupby was most of a
rule's build. These tests hold it to what the stacked parts' `groupby(keys, dropna=False,
sort=True).sum()` gives: the same rows, order, values and dtypes, missing keys last.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from kassebro.checks.rules import totals


def groupby_totals(keys: list[str], parts: dict[str, tuple[pd.DataFrame, str]]) -> pd.DataFrame:
    """The groupby `totals` was until it was a dict (kept here as the oracle)."""
    names = list(parts)
    pieces = []
    for name, (frame, column) in parts.items():
        values = frame[column].astype("int64").to_numpy()
        zeros = np.zeros(len(frame), dtype="int64")
        data = {key: frame[key].array for key in keys} | {other: values if other == name else zeros for other in names}
        pieces.append(pd.DataFrame(data))
    stacked = pd.concat(pieces, ignore_index=True)
    result = stacked.groupby(keys, dropna=False, sort=True)[names].sum().reset_index()
    return result.astype(dict.fromkeys(names, "int64"))


CODES = st.one_of(st.none(), st.sampled_from(["1", "3", "31", "33", "A", "Kafé", "b", ""]))
RATES = st.one_of(st.none(), st.sampled_from([0, 1_200, 1_500, 2_500]))
AMOUNTS = st.integers(min_value=-(10**9), max_value=10**9)


@st.composite
def part(draw: st.DrawFn, amount_dtype: str) -> pd.DataFrame:
    rows = draw(st.lists(st.tuples(CODES, RATES, AMOUNTS), max_size=12))
    return pd.DataFrame(
        {
            "code": pd.array([r[0] for r in rows], dtype="string"),
            "rate": pd.array([r[1] for r in rows], dtype="Int64"),
            "amount": pd.array([r[2] for r in rows], dtype=amount_dtype),
        }
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=part("int64"),
    reported=part("Int64"),
    keys=st.sampled_from([["code"], ["rate"], ["code", "rate"], ["rate", "code"]]),
)
def test_the_groupbys_rows_order_values_and_dtypes(
    lines: pd.DataFrame, reported: pd.DataFrame, keys: list[str]
) -> None:
    parts = {"lines": (lines, "amount"), "z_report": (reported, "amount")}
    assert_frame_equal(totals(keys, parts), groupby_totals(keys, parts), check_exact=True)


def test_missing_keys_sort_last_and_absent_parts_count_zero() -> None:
    lines = pd.DataFrame(
        {"code": pd.array(["3", None, "1", "3"], dtype="string"), "amount": pd.array([5, 7, 11, 13], dtype="int64")}
    )
    reported = pd.DataFrame({"code": pd.array(["9"], dtype="string"), "amount": pd.array([2], dtype="Int64")})
    frame = totals(["code"], {"lines": (lines, "amount"), "z_report": (reported, "amount")})
    assert frame["code"].tolist()[:3] == ["1", "3", "9"] and pd.isna(frame["code"].iloc[3])
    assert frame["lines"].tolist() == [11, 18, 0, 7]
    assert frame["z_report"].tolist() == [0, 0, 2, 0]
    assert str(frame["code"].dtype) == "string" and str(frame["lines"].dtype) == "int64"


def test_a_missing_amount_raises_as_the_groupby_did() -> None:
    reported = pd.DataFrame({"code": pd.array(["3"], dtype="string"), "amount": pd.array([None], dtype="Int64")})
    parts = {"z_report": (reported, "amount")}
    with pytest.raises(ValueError):
        groupby_totals(["code"], parts)
    with pytest.raises(ValueError):
        totals(["code"], parts)
