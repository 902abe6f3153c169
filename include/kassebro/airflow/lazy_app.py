"""An ASGI app built on its first request.

Airflow imports every plugin file in every task process (for the plugins' macros), and those never
serve a page: building the morning view's FastAPI app there cost each task about 0.8 s of CPU
(docs/benchmarks.md, "A night of N shops"). The API server, which serves it, builds it once, on
the first request under its prefix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LazyApp:
    """Stands in for the ASGI app `factory()` makes, and makes it when first called."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        """The real app, built now if it was not yet."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self.factory()
        return self._app

    @property
    def built(self) -> bool:
        return self._app is not None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
