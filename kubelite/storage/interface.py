"""The storage contract: a bytes-and-revision key-value store with etcd semantics.

Every backend (SQLite, etcd, memory) implements `Backend`; one object layer and one watch cache sit on
top (`kubelite.storage.cache`).  The contract, which `kubelite.testing.backend_contract` checks for every
backend:

* One global integer revision.  Every successful write (create, update, delete) increments it by
  exactly one and that number is the written key's `mod_revision`, which the API shows as
  `metadata.resourceVersion`.  Revisions never go backwards, also across restarts.
* `update` and `delete` are compare-and-swap on `mod_revision` (`expected_revision`); `None` means
  unconditional.
* The backend keeps an event log (what each write did, with the previous value) from which `events`
  replays.  The log is compacted by age and count; asking for revisions before `compacted_revision()`
  raises `Compacted`.
* `subscribe` delivers every committed event, in revision order, without gaps, to an in-process
  consumer.  Only the watch cache subscribes; API watchers are served by the cache.

Error tree::

    StorageError
      KeyExists        create of a key that exists
      KeyNotFound      update/delete of a missing key
      RevisionMismatch compare-and-swap failed (the current revision is attached)
      Compacted        events asked for from before the compacted revision
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class StorageError(Exception):
    """Base of all storage errors."""


class KeyExists(StorageError):
    pass


class KeyNotFound(StorageError):
    pass


class RevisionMismatch(StorageError):
    def __init__(self, key: str, current_revision: int) -> None:
        super().__init__(f"{key}: current revision is {current_revision}")
        self.key = key
        self.current_revision = current_revision


class Compacted(StorageError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} is compacted (oldest available {compacted})")
        self.requested = requested
        self.compacted = compacted


class EventType(StrEnum):
    PUT = "PUT"  # create or update; prev_value is None for a create
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    key: str
    revision: int  # the revision of this write
    value: bytes | None  # new value for PUT; None for DELETE
    prev_value: bytes | None  # value before the write; None for a create


class Backend(Protocol):
    """Bytes-level storage (see the module docstring for the contract)."""

    async def start(self) -> None:
        """Open files/connections; after this, reads and writes work."""

    async def close(self) -> None:
        """Flush pending writes, stop background work, release resources.  Idempotent."""

    async def get(self, key: str) -> KeyValue | None: ...

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        """All keys starting with `prefix`, sorted by key, and the revision they are consistent at."""

    async def create(self, key: str, value: bytes) -> int:
        """Returns the new revision; raises KeyExists."""

    async def update(self, key: str, value: bytes, *, expected_revision: int | None) -> int:
        """Returns the new revision; raises KeyNotFound or RevisionMismatch."""

    async def delete(self, key: str, *, expected_revision: int | None) -> tuple[int, bytes]:
        """Returns (new revision, deleted value); raises KeyNotFound or RevisionMismatch."""

    async def current_revision(self) -> int: ...

    async def compacted_revision(self) -> int:
        """Events with revision > this are available from `events`."""

    async def events(self, since_revision: int) -> builtins.list[Event]:
        """Logged events with revision > since_revision, oldest first; raises Compacted."""

    def subscribe(self) -> AsyncIterator[Event]:
        """Every event committed from now on, in order.  Ends when the backend closes."""

    async def compact(self, revision: int) -> None:
        """Drop logged events with revision <= `revision` (current objects are never dropped)."""
