"""The Airflow adapters: connection types and hooks, the DAG factory, and the task wrappers."""
