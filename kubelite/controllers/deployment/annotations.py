"""The annotations a Deployment keeps on its ReplicaSets, and the one it keeps on itself.

* `deployment.kubernetes.io/revision` — a ReplicaSet's rollout number.  A new ReplicaSet gets the
  highest old revision + 1; an old one that becomes new again (a rollback by template) gets a new
  revision too, and its former revisions are kept, comma-separated, in
  `deployment.kubernetes.io/revision-history` (bounded to 2000 characters by dropping the oldest).
  The Deployment carries its new ReplicaSet's revision.
* `deployment.kubernetes.io/desired-replicas` and `…/max-replicas` — the Deployment's size and size
  plus surge when the ReplicaSet was last scaled; they tell a scaling event from a rollout step and
  drive proportional scaling.
* The Deployment's own annotations are copied to its new ReplicaSet (so `kubernetes.io/change-cause`
  shows in `kubectl rollout history`), except the ones upstream keeps apart: kubectl's
  last-applied-configuration, the revision pair, the replica pair and the deprecated rollback marker.
  Copying never removes an annotation from the ReplicaSet.

The functions change the ReplicaSet dict they are given (the caller's own copy, never a cached
object) and say whether anything changed, as upstream's setters do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from kubelite.controllers.deployment.util import (
    DESIRED_REPLICAS_ANNOTATION,
    LAST_APPLIED_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    ROLLBACK_TO_ANNOTATION,
    annotations_of,
    max_surge,
    parse_revision,
    replicas,
)

log = logging.getLogger(__name__)

MAX_REVISION_HISTORY_CHARS = 2000

SKIPPED_ANNOTATIONS = frozenset(
    {
        LAST_APPLIED_ANNOTATION,
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        MAX_REPLICAS_ANNOTATION,
        ROLLBACK_TO_ANNOTATION,
    }
)


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.setdefault("metadata", {})
    found = meta.get("annotations")
    if not isinstance(found, dict):
        found = meta["annotations"] = {}
    return cast(dict[str, str], found)


def copy_deployment_annotations(deployment: Mapping[str, Any], rs: dict[str, Any]) -> bool:
    """Copy the Deployment's annotations onto `rs` except `SKIPPED_ANNOTATIONS`."""
    target = _annotations(rs)
    changed = False
    for key, value in annotations_of(deployment).items():
        if key in SKIPPED_ANNOTATIONS or target.get(key) == value:
            continue
        target[key] = value
        changed = True
    return changed


def replicas_annotations_need_update(rs: Mapping[str, Any], desired: int, most: int) -> bool:
    found = annotations_of(rs)
    return found.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or found.get(MAX_REPLICAS_ANNOTATION) != str(most)


def set_replicas_annotations(rs: dict[str, Any], desired: int, most: int) -> bool:
    """Record the Deployment's `desired` size and `most` (= desired + maxSurge) on `rs`."""
    if not replicas_annotations_need_update(rs, desired, most):
        return False
    target = _annotations(rs)
    target[DESIRED_REPLICAS_ANNOTATION] = str(desired)
    target[MAX_REPLICAS_ANNOTATION] = str(most)
    return True


def set_new_replica_set_annotations(
    deployment: Mapping[str, Any],
    rs: dict[str, Any],
    new_revision: str,
    *,
    exists: bool,
    history_limit_chars: int = MAX_REVISION_HISTORY_CHARS,
) -> bool:
    """Bring the new ReplicaSet's annotations up to date (SetNewReplicaSetAnnotations).

    The revision only ever goes up: old ReplicaSets deleted after the new one got its number can
    make `new_revision` smaller, and then the ReplicaSet keeps its own.  A ReplicaSet not created
    yet (`exists` False) also gets the replica annotations.
    """
    changed = copy_deployment_annotations(deployment, rs)
    target = _annotations(rs)
    old_text = target.get(REVISION_ANNOTATION)
    old = parse_revision(old_text)
    if old is None:
        if old_text:
            log.info("replica set revision is not a number", extra={"revision": old_text})
            return False
        old = 0
    new = parse_revision(new_revision)
    if new is None:
        log.info("new revision is not a number", extra={"revision": new_revision})
        return False
    if old < new:
        target[REVISION_ANNOTATION] = new_revision
        changed = True
        if old_text is not None:
            _remember_revision(target, old_text, history_limit_chars)
    if not exists:
        desired = replicas(deployment)
        if set_replicas_annotations(rs, desired, desired + max_surge(deployment)):
            changed = True
    return changed


def _remember_revision(target: dict[str, str], old_revision: str, limit: int) -> None:
    """Append `old_revision` to the revision history, dropping the oldest entries to stay within
    `limit` characters (and skipping the append when even that cannot make room)."""
    history = target.get(REVISION_HISTORY_ANNOTATION, "")
    if not history:
        target[REVISION_HISTORY_ANNOTATION] = old_revision
        return
    entries = history.split(",")
    total = len(history) + len(old_revision) + 1
    start = 0
    while total > limit and start < len(entries):
        total -= len(entries[start]) + 1
        start += 1
    if total <= limit:
        target[REVISION_HISTORY_ANNOTATION] = ",".join([*entries[start:], old_revision])
    else:
        log.info("revision history is full; not appending", extra={"limit": limit})


__all__ = [
    "MAX_REVISION_HISTORY_CHARS",
    "SKIPPED_ANNOTATIONS",
    "copy_deployment_annotations",
    "replicas_annotations_need_update",
    "set_new_replica_set_annotations",
    "set_replicas_annotations",
]
