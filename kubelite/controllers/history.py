"""ControllerRevisions: the snapshots of a pod template that DaemonSets (and, later, StatefulSets)
keep as their rollout history (upstream pkg/controller/history and the DaemonSet controller's
constructHistory / dedupCurHistories / cleanupHistory).

Pure functions over plain JSON objects; the controllers do the API calls.

Contracts:

* A revision's `data` is the strategic merge patch that restores its template:
  `{"spec": {"template": <template with "$patch": "replace">}}` (upstream getPatch).  `kubectl
  rollout undo` sends exactly that `data` back as a strategic merge patch, and `kubectl rollout
  history --revision=N` applies it to the owner to show the template, so its shape is fixed.
* Which revision is current is decided by `data` equality with the owner's template patch (JSON
  equality, where upstream compares the marshalled bytes), never by the hash: the hash only names
  revisions, and a hash collision is resolved by the owner's `status.collisionCount`.
* Revision numbers only grow: the current revision is always the highest.  An old revision that
  becomes current again (a rollback, or the template changed back) is renumbered to one above the
  highest old revision rather than copied.
* Trimming keeps `revisionHistoryLimit` old revisions, deletes the lowest numbers first, and never
  deletes a revision whose hash a live pod still carries (its pods can only be told apart by it).

The pod-template hash: upstream's ComputeHash form — FNV-32a, its decimal text spelled with the
"bcdfghjklmnpqrstvwxz2456789" alphabet one byte per character (SafeEncodeString), the collision
count folded in as 8 little-endian bytes when set — over our canonical JSON of the template
(sorted keys, no whitespace) instead of Go's object dump.  Stable across restarts and kubelite
versions; not equal to a real cluster's hash for the same template (nothing compares the two).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubelite.client.interface import builtin
from kubelite.controllers.ownership import controller_ref, owner_reference
from kubelite.machinery.meta import deep_copy, name_of, namespace_of

CONTROLLER_REVISIONS = builtin("apps", "controllerrevisions")
CONTROLLER_REVISION_HASH_LABEL = "controller-revision-hash"  # apps/v1 ControllerRevisionHashLabelKey
DEFAULT_REVISION_HISTORY_LIMIT = 10
REVISION_OWNER_INDEX = "controllerrevisions/controller-uid"
MAX_REVISION_NAME_PREFIX = 223  # upstream ControllerRevisionName: 253 minus room for "-" and a hash

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193
_ORPHAN = "orphan:"


# -- hashing ------------------------------------------------------------------------------------------


def fnv32a(data: bytes, value: int = _FNV32_OFFSET) -> int:
    """FNV-1a, 32 bits (Go's hash/fnv New32a); `value` continues an earlier sum."""
    for byte in data:
        value = ((value ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def fnv32(data: bytes, value: int = _FNV32_OFFSET) -> int:
    """FNV-1, 32 bits (Go's hash/fnv New32), used by upstream's HashControllerRevision."""
    for byte in data:
        value = ((value * _FNV32_PRIME) & 0xFFFFFFFF) ^ byte
    return value


def safe_encode(text: str) -> str:
    """Upstream's SafeEncodeString: no vowels (no words), no look-alike characters."""
    return "".join(_HASH_ALPHABET[byte % len(_HASH_ALPHABET)] for byte in text.encode())


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The `controller-revision-hash` of a DaemonSet pod template (upstream ComputeHash; see the
    module docstring for how the input differs)."""
    value = fnv32a(canonical_json(template))
    if collision_count is not None:
        value = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4), value)
    return safe_encode(str(value))


def hash_revision_data(data: Any, probe: int | None = None) -> str:
    """Upstream HashControllerRevision (what StatefulSets name their revisions by): FNV-32 over the
    revision's data, then the decimal `probe` (the collision count) when given."""
    value = fnv32(canonical_json(data))
    if probe is not None:
        value = fnv32(str(probe).encode(), value)
    return safe_encode(str(value))


# -- building revisions -------------------------------------------------------------------------------


def revision_name(prefix: str, hash_value: str) -> str:
    """`<prefix>-<hash>`, the prefix cut so the name stays within 253 characters."""
    return f"{prefix[:MAX_REVISION_NAME_PREFIX]}-{hash_value}"


def template_patch(template: Mapping[str, Any]) -> dict[str, Any]:
    """The `data` of a revision of `template` (upstream getPatch; see the module docstring)."""
    replaced = deep_copy(dict(template))
    replaced["$patch"] = "replace"
    return {"spec": {"template": replaced}}


def template_of(revision: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pod template a revision restores, without the `$patch` directive (None if its data
    has another shape)."""
    data = revision.get("data")
    template = ((data or {}).get("spec") or {}).get("template") if isinstance(data, Mapping) else None
    if not isinstance(template, Mapping):
        return None
    copied = deep_copy(dict(template))
    copied.pop("$patch", None)
    return copied


def new_revision(
    owner: Mapping[str, Any],
    *,
    api_version: str,
    kind: str,
    data: Mapping[str, Any],
    revision: int,
    hash_value: str,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A ControllerRevision of `owner` named `<owner name>-<hash>`: its labels are `labels` (the
    pod template's, so the owner's selector finds it) plus the hash label; the owner's annotations
    are copied (kubectl shows `kubernetes.io/change-cause` from them); controlled by `owner`."""
    meta = owner.get("metadata") or {}
    revision_labels = dict(labels or {})
    revision_labels[CONTROLLER_REVISION_HASH_LABEL] = hash_value
    revision_meta: dict[str, Any] = {
        "name": revision_name(str(meta.get("name") or ""), hash_value),
        "namespace": meta.get("namespace"),
        "labels": revision_labels,
        "ownerReferences": [owner_reference(dict(owner), api_version=api_version, kind=kind)],
    }
    if meta.get("annotations"):
        revision_meta["annotations"] = dict(meta["annotations"])
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": revision_meta,
        "data": deep_copy(dict(data)),
        "revision": revision,
    }


# -- reading revisions --------------------------------------------------------------------------------


def revision_number(revision: Mapping[str, Any]) -> int:
    return int(revision.get("revision") or 0)


def revision_hash(revision: Mapping[str, Any]) -> str:
    """The hash label's value (upstream labels revisions without one by their name)."""
    labels = (revision.get("metadata") or {}).get("labels") or {}
    return str(labels.get(CONTROLLER_REVISION_HASH_LABEL) or name_of(dict(revision)))


def by_revision(revisions: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Oldest (lowest number) first; equal numbers by name, so the order is stable."""
    return sorted(revisions, key=lambda r: (revision_number(r), name_of(dict(r))))


def max_revision(revisions: Iterable[Mapping[str, Any]]) -> int:
    return max((revision_number(r) for r in revisions), default=0)


def split_current(
    revisions: Iterable[dict[str, Any]], data: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(revisions whose data equals `data`, the others): the current and the old ones."""
    current: list[dict[str, Any]] = []
    old: list[dict[str, Any]] = []
    for revision in revisions:
        (current if revision.get("data") == data else old).append(revision)
    return current, old


def choose_current(current: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Of several revisions equal to the template, the one to keep (the highest number; the last
    of equal ones, as upstream's `>=` scan) and the duplicates to delete."""
    if not current:
        raise ValueError("no current revision to choose from")
    keep = current[0]
    for revision in current:
        if revision_number(revision) >= revision_number(keep):
            keep = revision
    return keep, [r for r in current if r is not keep]


def revisions_to_trim(
    old: Iterable[Mapping[str, Any]], limit: int, live_hashes: Iterable[str]
) -> list[Mapping[str, Any]]:
    """The old revisions to delete so that at most `limit` remain, lowest numbers first, skipping
    those a live pod's hash label still names (so more than `limit` may stay)."""
    ordered = by_revision(old)
    excess = len(ordered) - max(limit, 0)
    if excess <= 0:
        return []
    live = set(live_hashes)
    doomed: list[Mapping[str, Any]] = []
    for revision in ordered:
        if len(doomed) >= excess:
            break
        if revision_hash(revision) in live:
            continue
        doomed.append(revision)
    return doomed


def history_limit(owner: Mapping[str, Any]) -> int:
    """`spec.revisionHistoryLimit`, 10 when unset (the apps/v1 default)."""
    value = (owner.get("spec") or {}).get("revisionHistoryLimit")
    return DEFAULT_REVISION_HISTORY_LIMIT if value is None else int(value)


# -- the informer index -------------------------------------------------------------------------------


def owner_uid_index(obj: dict[str, Any]) -> list[str]:
    """Index values of a revision: its controller's uid, or `orphan:<namespace>` without one."""
    ref = controller_ref(obj)
    if ref is None:
        return [_ORPHAN + namespace_of(obj)]
    uid = ref.get("uid")
    return [str(uid)] if uid else []


def orphan_key(namespace: str) -> str:
    return _ORPHAN + namespace


__all__ = [
    "CONTROLLER_REVISIONS",
    "CONTROLLER_REVISION_HASH_LABEL",
    "DEFAULT_REVISION_HISTORY_LIMIT",
    "REVISION_OWNER_INDEX",
    "by_revision",
    "canonical_json",
    "choose_current",
    "compute_hash",
    "fnv32",
    "fnv32a",
    "hash_revision_data",
    "history_limit",
    "max_revision",
    "new_revision",
    "orphan_key",
    "owner_uid_index",
    "revision_hash",
    "revision_name",
    "revision_number",
    "revisions_to_trim",
    "safe_encode",
    "split_current",
    "template_of",
    "template_patch",
]
