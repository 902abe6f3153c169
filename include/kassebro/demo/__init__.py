"""The demo: shops and their data, the sandboxes in one process, the launcher behind `make run`."""
