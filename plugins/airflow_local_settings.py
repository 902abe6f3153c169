"""Airflow imports `airflow_local_settings` from the plugins folder in every process it starts.

kassebro uses it for one thing: in the processes task processes are forked from (the scheduler
with the LocalExecutor, a Celery worker), import pandas, Great Expectations and kassebro's modules
once, so each task does not (`kassebro.airflow.preload`).
"""

from kassebro.airflow.preload import preload_if_forking

preload_if_forking()
