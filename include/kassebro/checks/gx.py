"""Great Expectations, run on the small derived frames the rules build.

GX takes seconds to import, so it is imported on first use only, and its context and one suite
and batch definition per rule are built once per process.

Each rule's suite is run by GX's v1 `Validator` on the rule's batch definition, not through a
`ValidationDefinition`: a definition's `run` also checks that it is saved and stores every result
in the context's results store, which nobody reads here (the day's report is ours) and which cost a
third of the time of a run (docs/benchmarks.md, "A night of N shops"). Nor through
`Batch.validate`, which builds that same `Validator` but gets the batch anew (GX 1.24.1's
`Batch._create_validator`, read in its source): on top of the caller's own `get_batch`, each one
hashes the whole frame, about a fifth of GX's time per rule. One validator, one batch, for both
result formats: the validator reads `result_format` at each validation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class _GX:
    """One ephemeral GX context per process with one suite and batch definition per rule."""

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        # GX logs thousands of INFO lines at import ("Skipping registering function ..."): keep task logs readable
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.validator.v1_validator import Validator

        self.gx = gx
        self.gxe = gxe
        self.validator = Validator
        self.context = gx.get_context(mode="ephemeral")
        # tqdm bars ("Calculating Metrics") would flood task logs.
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.source = self.context.data_sources.add_pandas("kassebro")
        self.definitions: dict[Any, Any] = {}

    def definition(self, key: Any, name: str, expectations: Callable[[Any], list[Any]]) -> tuple[Any, Any]:
        """The (batch definition, suite) of rule `key`."""
        if key not in self.definitions:
            unique = f"{name}-{len(self.definitions)}"  # GX names are unique; rule names need not be
            batch = self.source.add_dataframe_asset(unique).add_batch_definition_whole_dataframe("whole")
            suite = self.context.suites.add(self.gx.ExpectationSuite(name=unique))
            for expectation in expectations(self.gxe):
                suite.add_expectation(expectation)
            self.definitions[key] = (batch, suite)
        return self.definitions[key]


_gx: _GX | None = None
_gx_lock = threading.Lock()


def warm(definitions: Iterable[tuple[Any, str, Callable[[Any], list[Any]]]] = ()) -> None:
    """Build the process's GX context now, and the (key, name, expectations) definitions given
    (`airflow.preload`: before task processes are forked). Each definition saves GX's whole project
    config as YAML twice, about 35 ms a rule: a forked task that finds them built skips that."""
    global _gx
    with _gx_lock:
        if _gx is None:
            _gx = _GX()
        for key, name, expectations in definitions:
            _gx.definition(key, name, expectations)


def flagged_rows(
    key: Any, name: str, expectations: Callable[[Any], list[Any]], frame: pd.DataFrame
) -> tuple[set[int], list[str]]:
    """Run the suite of `key` (a rule) on `frame`; return the flagged row positions and any GX errors.

    A result that raised, failed without naming rows, or is missing counts as an error, so a
    broken expectation can never read as a pass.
    """
    global _gx
    with _gx_lock:
        if _gx is None:
            _gx = _GX()
        batch_definition, suite = _gx.definition(key, name, expectations)
        expected = len(suite.expectations)
        # A day that passes needs no row lists: the cheap format first, the complete one on failure,
        # both on the one batch the validator gets (see the module docstring).
        validator = _gx.validator(batch_definition, batch_parameters={"dataframe": frame}, result_format="BOOLEAN_ONLY")
        with configurations_built_once(), fingerprint_skipped():
            result = validator.validate_expectation_suite(suite)
        raised = any(_exception_messages(item.exception_info) for item in result.results)
        if result.success and len(result.results) == expected and not raised:
            return set(), []
        validator.result_format = "COMPLETE"
        with configurations_built_once(), fingerprint_skipped():
            result = validator.validate_expectation_suite(suite)
    errors: list[str] = []
    if len(result.results) != expected:
        errors.append(f"GX returned {len(result.results)} results for {expected} expectations")
    rows: set[int] = set()
    for item in result.results:
        name = item.expectation_config.type
        raised = _exception_messages(item.exception_info)
        if raised:
            errors.append(f"{name} raised: {'; '.join(raised)}")
        elif not item.success:
            indexes = (item.result or {}).get("unexpected_index_list")
            if not indexes:
                errors.append(f"{name} failed without naming rows: {item.result}")
            else:
                rows.update(int(i) for i in indexes)
    if not result.success and not rows and not errors:
        errors.append("GX reported failure without a failed expectation")
    return rows, errors


@contextlib.contextmanager
def configurations_built_once() -> Iterator[None]:
    """Within one validation, build each expectation's `configuration` once (call under `_gx_lock`).

    In GX 1.24 `Expectation.configuration` is a property that builds a new ExpectationConfiguration
    from the pydantic model (`dict()` and a regex on the class name) at every read, and one suite's
    validation reads it about 40 times per expectation: a third of GX's time in `prepare` (cProfile
    of a forked task, docs/benchmarks.md). Nothing changes an expectation while it is validated,
    and GX deep-copies a configuration before it changes one (`Validator` and `Expectation.validate_`,
    read in 1.24.1's source), so the first build can serve the other reads of that validation.
    Outside the block the property is GX's own again; the test suite checks that it is restored
    and that results are the same with and without (tests/unit/test_gx_configurations.py).
    """
    from great_expectations.expectations.expectation import Expectation

    original = Expectation.__dict__["configuration"]
    built: dict[int, tuple[Any, Any]] = {}  # id -> (the expectation, kept alive so ids stay unique; its configuration)

    def configuration(self: Any) -> Any:
        kept = built.get(id(self))
        if kept is None:
            kept = built[id(self)] = (self, original.fget(self))
        return kept[1]

    Expectation.configuration = property(configuration, doc=original.__doc__)  # type: ignore[method-assign]
    try:
        yield
    finally:
        Expectation.configuration = original  # type: ignore[method-assign]


@contextlib.contextmanager
def fingerprint_skipped() -> Iterator[None]:
    """Within one validation, no md5 of the frame for the batch's markers (call under `_gx_lock`).

    GX 1.24's pandas engine hashes every batch under `HASH_THRESHOLD` bytes (all of ours) into the
    `pandas_data_fingerprint` batch marker, which only travels into the result's metadata: nothing
    reads it, in GX or here (read in 1.24.1's source). It was about a tenth of GX's time per rule.
    Outside the block the threshold is GX's own again (tests/unit/test_gx_configurations.py).
    """
    from great_expectations.execution_engine import pandas_execution_engine as engine

    original = engine.HASH_THRESHOLD
    engine.HASH_THRESHOLD = 0  # `memory_usage().sum() < 0` never holds
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = original


def _exception_messages(info: Any) -> list[str]:
    """Messages of raised exceptions in `exception_info`, flat or keyed by metric id (both occur)."""
    if not info:
        return []
    if isinstance(info, Mapping) and "raised_exception" in info:
        return [str(info.get("exception_message") or "unknown error")] if info["raised_exception"] else []
    if isinstance(info, Mapping):
        messages: list[str] = []
        for value in info.values():
            for message in _exception_messages(value):
                if message not in messages:
                    messages.append(message)
        return messages
    return [str(info)]
