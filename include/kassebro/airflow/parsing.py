"""How often the DAG processor parses our DAG files, the same in every deployment.

`dags/vendor_postings.py` builds one DAG per vendor file, so each parse costs in proportion to
the chain: for 1,000 shops about 9 s of CPU in the parsing process (reading the YAML, building
and serialising the DAGs) and 11 s in the DAG processor writing them to the metadata DB, though
nothing changed (measured alone, `docs/operations.md`). Airflow's default parses every file every
30 s; over a night of 1,000 shops that was 0.79 core-s per vendor-day, the largest cost after the
tasks, and it grew with the length of the night.

So we parse each file at most every `PARSE_INTERVAL_SECONDS`, and a DAG file whose modification
time is newer than its last parse is parsed at once (`file_parsing_sort_mode = modified_time`):
a deployed change to the code shows in seconds. A vendor file that is added or edited shows at
the next parse; to see it now, press "Reparse Dag" on any vendor DAG in the UI (or `PUT
/api/v2/parseDagFile/{file_token}`), which parses the whole file again.
"""

from __future__ import annotations

PARSE_INTERVAL_SECONDS = 300

PARSE_SETTINGS: dict[str, str] = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(PARSE_INTERVAL_SECONDS),
    "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE": "modified_time",
}
"""The environment that says it, for every Airflow component (docker-compose.yaml and the Helm
values carry the same: `tests/unit/test_parse_settings.py`)."""
