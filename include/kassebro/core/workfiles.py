"""Reading and writing work files through Airflow's `ObjectStoragePath`, so a task on one worker
reads what a task on another host wrote (`posting.pipeline.work_dir` gives a vendor-day's folder).

The base is `config.work_url()`: `KASSEBRO_WORK_URL` (`file:///shared/volume/work`, `s3://bucket/work`,
`gs://bucket/work`; `s3://<conn_id>@bucket/...` takes the credentials from an Airflow connection,
never from this URL's text), else `file://<KASSEBRO_DATA>/work`, what one machine has always used.
s3 and gs need their Airflow providers installed (`pip install apache-airflow-providers-amazon` /
`-google`); without them the first access fails.

Under it, per vendor and business day: `frames/*.parquet` (the sales as read), `validation.json`
and `.html` (the report), `voucher.json` (what the post step sends). A write is whole or absent to
a reader: on a local disk through a temporary file and a rename; an object store's PUT already is.

`airflow.sdk` is imported on first use, never at DAG parse time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


WorkPath = Any
"""An `airflow.sdk.ObjectStoragePath` (a `pathlib.Path` works too: the helpers take either)."""


def storage_path(url: str) -> ObjectStoragePath:
    """The ObjectStoragePath of a URL (`config.work_url()` gives the work files' base)."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url)


def is_local(path: Any) -> bool:
    """A plain local path, or an ObjectStoragePath on the local file system."""
    return getattr(path, "protocol", "file") in ("file", "local", "")


def local_path(path: Any) -> str:
    """The file system path of a local `path` (a Path or a file:// ObjectStoragePath)."""
    return str(path.path) if hasattr(path, "protocol") else str(path)


def make_dir(path: Any) -> None:
    """Create a folder (object stores have none: a no-op there)."""
    if is_local(path):
        os.makedirs(local_path(path), exist_ok=True)


def write_bytes(path: Any, data: bytes) -> None:
    """Write a whole file so that a reader sees the old one or the new one, never half of it."""
    if not is_local(path):
        path.write_bytes(data)  # an object store's PUT is atomic
        return
    target = local_path(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{os.getpid()}.partial")
    with open(partial, "wb") as handle:
        handle.write(data)
    os.replace(partial, target)


def write_text(path: Any, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def read_text(path: Any) -> str:
    return path.read_bytes().decode("utf-8")


def remove(path: Any) -> None:
    """Delete a file if it is there."""
    if path.exists():
        path.unlink()
