"""Expectations: what a controller just asked the API to create or delete and has not yet seen come
back through its informer.

Why: the informer cache lags behind the controller's own writes.  Without this, a reconcile that
runs right after creating 3 pods still sees 0 and creates 3 more.  A controller records what it
expects, its informer handlers mark each creation / deletion observed, and a key is reconciled
(for counts) only when its expectations are met — or have gone stale (5 minutes, as upstream's
ExpectationsTimeout), so a lost watch event cannot wedge a controller for ever.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubelite.client.clock import Clock

EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expected:
    adds: int
    deletes: set[str] = field(default_factory=set)  # keys (namespace/name) of pods we deleted
    since: float = 0.0


class Expectations:
    """Per controller key: how many creations are outstanding and which deletions."""

    def __init__(self, clock: Clock, *, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self._clock = clock
        self._timeout = timeout
        self._by_key: dict[str, _Expected] = {}

    def expect(self, key: str, *, adds: int = 0, deletes: set[str] | None = None) -> None:
        """Replace `key`'s expectations (call before issuing the writes)."""
        self._by_key[key] = _Expected(adds=adds, deletes=set(deletes or ()), since=self._clock.now())

    def creation_observed(self, key: str) -> None:
        found = self._by_key.get(key)
        if found is not None and found.adds > 0:
            found.adds -= 1

    def creation_failed(self, key: str, count: int = 1) -> None:
        """Creations that will never be observed (the API refused them, or they were skipped)."""
        found = self._by_key.get(key)
        if found is not None:
            found.adds = max(0, found.adds - count)

    def deletion_observed(self, key: str, object_key: str) -> None:
        found = self._by_key.get(key)
        if found is not None:
            found.deletes.discard(object_key)

    def satisfied(self, key: str) -> bool:
        found = self._by_key.get(key)
        if found is None:
            return True
        if found.adds <= 0 and not found.deletes:
            return True
        return self._clock.now() - found.since > self._timeout

    def forget(self, key: str) -> None:
        """The controller object is gone."""
        self._by_key.pop(key, None)


__all__ = ["EXPECTATIONS_TIMEOUT", "Expectations"]
