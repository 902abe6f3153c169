"""How often Airflow's components do their periodic work, the same in every deployment.

Two of Airflow's intervals cost a chain in proportion to its size or its night's length:

- Parsing the DAG files (`kassebro.airflow.parsing`): every 300 s, at once when a file changes.
- A running task's heartbeat: the task runner (supervisor) reports to the execution API that its
  task is alive, which writes the task instance's row in the metadata DB. Airflow's default is
  every 5 s ([workers] min_heartbeat_interval) against a timeout of 300 s ([scheduler]
  task_instance_heartbeat_timeout). A night's `prepare` runs for seconds while dozens of tasks
  share the cores, so at 5 s a vendor-day sent several heartbeats, each an HTTP request, a token
  check and an UPDATE. Every `HEARTBEAT_SECONDS` still gives ten before the timeout. What it
  delays: a task whose instance was cleared or marked in the UI learns it at its next heartbeat,
  and is stopped then, up to `HEARTBEAT_SECONDS` later than at Airflow's default (read in the
  Task SDK's supervisor, `_send_heartbeat_if_needed`: a 404/409 answer ends the task).
"""

from __future__ import annotations

from kassebro.airflow.parsing import PARSE_SETTINGS

HEARTBEAT_SECONDS = 30

HEARTBEAT_SETTINGS: dict[str, str] = {"AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": str(HEARTBEAT_SECONDS)}

INTERVAL_SETTINGS: dict[str, str] = {**PARSE_SETTINGS, **HEARTBEAT_SETTINGS}
"""The environment that says both, for every Airflow component (docker-compose.yaml and the Helm
values carry the same: `tests/unit/test_parse_settings.py`)."""
