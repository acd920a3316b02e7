"""`StatusWriter`: one pod's writes to the API, as the kubelet's status manager makes them.

* `write` PATCHes ``pods/status`` with a merge patch carrying the whole computed status and the pod's
  uid, only when the status differs from the API's and from the last one written.  A failure
  (conflict, transport, 5xx) is not raised: `write` answers how long to wait before trying again,
  and refuses to write before then.  404 means the pod is gone; the informer will say so.
* `delete` removes the object once nothing of the pod runs: grace period 0 and a uid precondition, so
  a pod re-created under the same name is left alone; retried with back-off until it is done, the
  pod is gone (404) or replaced (409), or `stop()` is true.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kubelite.client.clock import Clock
from kubelite.client.errors import TransportError
from kubelite.client.informer import Backoff
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError

log = logging.getLogger(__name__)

PODS = builtin("", "pods")

__all__ = ["StatusWriter"]


class StatusWriter:
    def __init__(self, client: Client, clock: Clock, *, uid: str, name: str, namespace: str) -> None:
        self._client = client
        self._clock = clock
        self.uid, self.name, self.namespace = uid, name, namespace
        self._written: dict[str, Any] | None = None
        self._backoff = Backoff(initial=0.5, cap=30.0)
        self._retry_at: float | None = None

    def _fields(self, exc: BaseException) -> dict[str, str]:
        return {"pod": f"{self.namespace}/{self.name}", "error": str(exc)}

    async def write(self, pod: dict[str, Any], status: dict[str, Any]) -> tuple[dict[str, Any] | None, float | None]:
        """Write `status` for `pod` if needed.  Returns (the status as stored, or None when nothing was
        written; seconds until a retry is due, or None)."""
        now = self._clock.now()
        if self._retry_at is not None and now < self._retry_at:
            return None, self._retry_at - now
        if status == (pod.get("status") or {}) or status == self._written:
            return None, None
        body = {"metadata": {"uid": self.uid}, "status": status}
        try:
            updated = await self._client.patch(PODS, self.name, body, self.namespace, subresource="status")
        except (ApiError, TransportError) as exc:
            if isinstance(exc, ApiError) and exc.code == 404:
                return None, None
            delay = self._backoff.next_delay()
            log.warning("pod status update failed; retrying", extra=self._fields(exc))
            self._retry_at = now + delay
            return None, delay
        self._backoff.reset()
        self._retry_at = None
        self._written = status
        if (updated.get("metadata") or {}).get("uid") != self.uid:
            return None, None
        return updated.get("status") or status, None

    async def delete(self, stop: Callable[[], bool]) -> None:
        backoff = Backoff(initial=0.5, cap=30.0)
        while not stop():
            try:
                await self._client.delete(
                    PODS, self.name, self.namespace, grace_period_seconds=0, preconditions={"uid": self.uid}
                )
                return
            except ApiError as exc:
                if exc.code in (404, 409):
                    return
                log.warning("deleting a finished pod failed; retrying", extra=self._fields(exc))
            except TransportError as exc:
                log.warning("deleting a finished pod failed; retrying", extra=self._fields(exc))
            await self._clock.sleep(backoff.next_delay())
