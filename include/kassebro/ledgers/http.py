"""The one HTTP exchange every ledger client makes: send, retry, back off, wait out short rate
limits, re-authenticate once, count calls, and keep secrets out of every message.

Retries are tenacity's (the library Airflow itself uses); what an answer *means* (rate limited,
transient, refused, wrong credentials) is decided by each system's `judge`, so the rules of one
API live in one place and the loop in this one.

Exactly once: a call that is not `idempotent` (a POST that creates something) is never sent
again after a transport error or a 5xx, whose outcome is unknown; it raises LedgerTransient saying
so, and the caller looks the voucher up first. A 429 is a refusal (nothing was done), so it may be
waited out for writes too where the system says so (`wait_on_writes`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import requests
import tenacity

from kassebro.ledgers.base import LedgerError, LedgerRateLimited, LedgerTransient, LedgerValidationError

log = logging.getLogger(__name__)

UNKNOWN_OUTCOME = "; the outcome is unknown, look it up first"

IN_TASK_RATE_WAIT = 10.0
"""The longest rate-limit wait a client made from an Airflow connection spends in its task; a
longer one gives the worker slot back (the task is rescheduled for when the ledger said)."""

Judge = Callable[[requests.Response], LedgerError | None]
"""A system's reading of an answer: None when it is a success, else the error it means."""


class Secret:
    """A credential that never shows in a repr, a log line or an exception."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __bool__(self) -> bool:
        return bool(self._value)


class _Reauthenticate(Exception):
    """Internal: the answer was 401 and the credentials were renewed; send once more."""


class LedgerHttp:
    """The HTTP side of one ledger client.

    Args:
      system: the system's name for messages ("Tripletex").
      session: a requests.Session (from the Airflow connection through HttpHook.get_conn); else
        one is made and closed by `close`.
      timeout: seconds per request (the connection's `timeout` extra, when from a hook).
      get_retries: further attempts of an idempotent call after a transport error or 5xx.
      retry_backoff: the first backoff in seconds, doubled per attempt.
      max_rate_wait: the longest rate-limit wait (seconds) spent in the client; longer ones raise
        LedgerRateLimited for the Airflow layer to reschedule the task without holding a slot.
      rate_limit_waits: how many rate limits one call may wait out in the client.
      wait_on_writes: whether a non-idempotent call's 429 may be waited out too (the system
        documents that a 429 means nothing was done).
      secrets: the credentials to redact from every message, read at the time of the message.
    """

    def __init__(
        self,
        system: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        get_retries: int = 2,
        retry_backoff: float = 0.5,
        max_rate_wait: float = 60.0,
        rate_limit_waits: int = 3,
        wait_on_writes: bool = False,
        secrets: Callable[[], Iterable[Secret | str | None]] = tuple,
    ) -> None:
        self.system = system
        self.session = session or requests.Session()
        self._owns_session = session is None
        self.timeout = timeout
        self.get_retries = get_retries
        self.retry_backoff = retry_backoff
        self.max_rate_wait = max_rate_wait
        self.rate_limit_waits = rate_limit_waits
        self.wait_on_writes = wait_on_writes
        self._secrets = secrets
        self.calls: Counter[str] = Counter()

    def close(self) -> None:
        """Close the session if it was made here."""
        if self._owns_session:
            self.session.close()

    @property
    def call_count(self) -> int:
        """All HTTP requests made so far (retries included)."""
        return sum(self.calls.values())

    def redact(self, text: str) -> str:
        """The text with every credential replaced by ***."""
        for secret in self._secrets():
            value = secret.reveal() if isinstance(secret, Secret) else secret
            if value:
                text = text.replace(value, "***")
        return text

    def send(
        self,
        method: str,
        url: str,
        key: str,
        *,
        headers: Callable[[], Mapping[str, str]] | Mapping[str, str],
        idempotent: bool,
        judge: Judge | None = None,
        reauthenticate: Callable[[requests.Response], bool] | None = None,
        params: Mapping[str, Any] | None = None,
        data: bytes | Mapping[str, str] | None = None,
        auth: Any = None,
    ) -> requests.Response:
        """One call, retried as its kind allows; the successful answer, or the error it means.

        `key` names the call in `calls` and messages ("POST /ledger/voucher"). `headers` may be a
        function, called per attempt (a renewed token shows). Without `judge` the answer is
        returned whatever its status (after 5xx retries of an idempotent call): for calls whose
        refusals the client reads itself, like token exchanges. `reauthenticate(response)` is
        asked once on a 401 and returns True when it renewed the credentials.
        """
        counts = {"transient": 0, "rate": 0, "reauth": 0}

        def attempt() -> requests.Response:
            self.calls[key] += 1
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=dict(headers() if callable(headers) else headers),
                    timeout=self.timeout,
                    auth=auth,
                )
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
                raise LedgerValidationError(self.system, f"bad URL: {self.redact(str(exc))}") from None
            except requests.RequestException as exc:
                reason = transport_reason(exc)
                log.warning("%s %s: %s", self.system, key, reason)
                raise LedgerTransient(self.system, f"{key}: {reason}") from None
            if (
                response.status_code == 401
                and reauthenticate is not None
                and not counts["reauth"]
                and reauthenticate(response)
            ):
                raise _Reauthenticate()
            if judge is None:
                if response.status_code >= 500 and idempotent and counts["transient"] < self.get_retries:
                    raise LedgerTransient(self.system, f"{key}: {response.status_code}")
                return response
            error = judge(response)
            if error is not None:
                raise error
            return response

        def should_retry(state: tenacity.RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome is not None else None
            if isinstance(error, _Reauthenticate):
                counts["reauth"] += 1
                return True
            if isinstance(error, LedgerRateLimited):
                if (idempotent or self.wait_on_writes) and (
                    error.retry_after <= self.max_rate_wait and counts["rate"] < self.rate_limit_waits
                ):
                    counts["rate"] += 1
                    log.info("%s rate limit on %s; waiting %.1f s", self.system, key, error.retry_after)
                    return True
                return False
            if isinstance(error, LedgerTransient) and idempotent and counts["transient"] < self.get_retries:
                counts["transient"] += 1
                return True
            return False

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            if isinstance(error, LedgerRateLimited):
                return error.retry_after
            if isinstance(error, _Reauthenticate):
                return 0.0
            return self.retry_backoff * 2 ** (counts["transient"] - 1)

        retrying = tenacity.Retrying(retry=should_retry, wait=wait, reraise=True)
        try:
            return retrying(attempt)
        except LedgerTransient as exc:
            if idempotent:
                raise
            raise LedgerTransient(self.system, str(exc).removeprefix(f"{self.system}: ") + UNKNOWN_OUTCOME) from None


def transport_reason(exc: requests.RequestException) -> str:
    """Why a request got no answer, in words an operator reads."""
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed or dropped without an answer"
    return f"transport error ({type(exc).__name__})"


def json_or_none(response: requests.Response, **loads: Any) -> Any:
    """The answer's JSON, or None when it has none or it is not JSON."""
    if not response.content:
        return None
    try:
        return json.loads(response.content.decode("utf-8"), **loads)
    except (UnicodeDecodeError, ValueError):
        return None


def retry_after(response: requests.Response, default: float, headers: tuple[str, ...] = ("Retry-After",)) -> float:
    """Seconds to wait from the first of `headers` that holds a number (delta-seconds), else `default`."""
    for header in headers:
        raw = response.headers.get(header)
        if raw:
            try:
                return max(0.0, float(raw))
            except ValueError:
                continue
    return default


def encode_json(obj: Any) -> str:
    """JSON with Decimal written as a plain number (stdlib json would need a float)."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, int | str):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode_json(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(encode_json(v) for v in obj) + "]"
    raise TypeError(f"cannot encode {type(obj).__name__} (floats are not allowed for money)")


def _delegated(name: str, doc: str) -> property:
    return property(
        lambda self: getattr(self._http, name), lambda self, value: setattr(self._http, name, value), doc=doc
    )


class HttpClient:
    """What every ledger client shows of its LedgerHttp: call counts, settings, closing."""

    _http: LedgerHttp

    timeout = _delegated("timeout", "Seconds per request.")
    get_retries = _delegated("get_retries", "Further attempts of an idempotent call.")
    retry_backoff = _delegated("retry_backoff", "The first backoff in seconds, doubled per attempt.")
    max_rate_wait = _delegated("max_rate_wait", "The longest rate-limit wait spent in the client.")

    @property
    def calls(self) -> Counter[str]:
        """HTTP requests by "METHOD /path" (ids as {id}), retries included."""
        return self._http.calls

    @property
    def call_count(self) -> int:
        """All HTTP requests made so far (retries included)."""
        return self._http.call_count

    def close(self) -> None:
        """Close the HTTP session if this client made it."""
        self._http.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
