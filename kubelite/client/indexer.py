"""`Indexer`: the informer's local cache — objects by key, plus secondary indexes.

Keys are `"namespace/name"` (`"name"` for cluster-scoped objects), as client-go's
MetaNamespaceKeyFunc.  Every indexer has the `"namespace"` index; `add_index(name, func)` adds
more, where `func(obj)` returns the index values of an object (e.g. a pod's node name).

Objects in the cache are shared and read-only: whoever reads one must copy it
(`kubelite.machinery.meta.deep_copy`) before changing it.  Index functions must be pure, fast and
must not raise.  Not thread-safe: use from the event loop that owns the informer.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from typing import Any

from kubelite.client.interface import ObjectKey, key_of

IndexFunc = Callable[[dict[str, Any]], Iterable[str]]
NAMESPACE_INDEX = "namespace"


def namespace_index(obj: dict[str, Any]) -> list[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


class Indexer:
    """A key → object store that keeps its indexes up to date on every `put` and `remove`."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.add_index(NAMESPACE_INDEX, namespace_index)

    # -- reads ------------------------------------------------------------------------------------

    def get(self, key: str | ObjectKey) -> dict[str, Any] | None:
        return self._items.get(str(key))

    def list(self) -> builtins.list[dict[str, Any]]:
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def by_index(self, name: str, value: str) -> builtins.list[dict[str, Any]]:
        """Objects whose index function returned `value`, in key order."""
        return [self._items[key] for key in self.index_keys(name, value)]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        if name not in self._indices:
            raise KeyError(f"no index named {name!r}")
        return sorted(self._indices[name].get(value, ()))

    def index_values(self, name: str) -> builtins.list[str]:
        """Every value index `name` holds at least one object for."""
        if name not in self._indices:
            raise KeyError(f"no index named {name!r}")
        return sorted(self._indices[name])

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return str(key) in self._items

    # -- writes -----------------------------------------------------------------------------------

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Add an index (also over the objects already stored).  Adding the same function under the
        same name again is a no-op (controllers sharing an informer may each ask for it); another
        function under a taken name is a ValueError."""
        if name in self._indexers:
            if self._indexers[name] is func:
                return
            raise ValueError(f"index {name!r} already exists")
        self._indexers[name] = func
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indices[name] = index

    def put(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Store `obj` under its key; returns the object it replaced."""
        key = key_of(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name, func in self._indexers.items():
            index = self._indices[name]
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        return old

    def remove(self, key: str | ObjectKey) -> dict[str, Any] | None:
        """Drop the object under `key`; returns it (None if there was none)."""
        old = self._items.pop(str(key), None)
        if old is not None:
            self._unindex(str(key), old)
        return old

    def _unindex(self, key: str, obj: dict[str, Any]) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


__all__ = ["NAMESPACE_INDEX", "IndexFunc", "Indexer", "namespace_index"]
