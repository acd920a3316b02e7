"""The garbage collector's dependency graph: every watched object as a node, linked to its owners
and dependents by uid (upstream's graph.go and graph_builder.go).

Contracts:

* The graph is pure bookkeeping: no I/O, no clock.  Its owner feeds it every informer transition
  (`observe`, `observe_deletion`) and the verdicts of its own API reads (`virtual_delete`); each
  call updates the graph and answers with `GraphActions`: which uids to look at (attemptToDelete),
  which owners to orphan (attemptToOrphan), and which invalid cross-namespace references deserve an
  `OwnerRefInvalidNamespace` event.  Calls are synchronous, so on one event loop they never
  interleave.
* A node is *observed* once an informer has shown the object, *virtual* while it is known only
  because a dependent names it as an owner.  A virtual node's identity (apiVersion, kind, name,
  namespace) is a guess from that reference — the dependent's namespace, since an ownerReference
  has none — until the object is observed or the API says it does not exist.
* Dependents are kept as uids, so a node can change identity (virtual → observed) without
  rewriting its dependents' links.  Objects without owners and without dependents cost one node.
* "Being deleted" is one-way: once a node has a deletionTimestamp it keeps `being_deleted`.
* The absent-owner cache remembers identities the API proved absent (uids never come back), so
  many dependents of one deleted owner cost one GET of it, not one each.

Also here, as pure functions: the patches that drop or unblock ownerReferences and remove a
finalizer.  Strategic merge patches carry the target's uid (so they cannot land on a re-created
namesake); their JSON merge patch fallbacks carry its resourceVersion (compare-and-swap).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

FOREGROUND_FINALIZER = "foregroundDeletion"  # metav1.FinalizerDeleteDependents
ORPHAN_FINALIZER = "orphan"  # metav1.FinalizerOrphanDependents
ABSENT_OWNER_CACHE_SIZE = 500  # as upstream's absentOwnerCache


@dataclass(frozen=True, order=True)
class Identity:
    """Where an object lives and which incarnation it is (upstream's objectReference)."""

    api_version: str
    kind: str
    namespace: str  # "" for cluster-scoped objects (and for guesses about them)
    name: str
    uid: str

    def __str__(self) -> str:
        return f"[{self.api_version}/{self.kind}, namespace: {self.namespace}, name: {self.name}, uid: {self.uid}]"

    def as_object(self) -> dict[str, Any]:
        """A minimal object for an EventRecorder's involvedObject."""
        meta: dict[str, Any] = {"name": self.name, "uid": self.uid}
        if self.namespace:
            meta["namespace"] = self.namespace
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": meta}


@dataclass(frozen=True)
class OwnerRef:
    """One entry of metadata.ownerReferences."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None

    @classmethod
    def parse(cls, ref: dict[str, Any]) -> OwnerRef:
        return cls(
            str(ref.get("apiVersion") or ""),
            str(ref.get("kind") or ""),
            str(ref.get("name") or ""),
            str(ref.get("uid") or ""),
            ref.get("controller"),
            ref.get("blockOwnerDeletion"),
        )

    @property
    def blocking(self) -> bool:
        return bool(self.block_owner_deletion)

    def identity(self, namespace: str) -> Identity:
        """The owner this reference names, guessed to live in `namespace`."""
        return Identity(self.api_version, self.kind, namespace, self.name, self.uid)

    def matches(self, identity: Identity) -> bool:
        """Same coordinates (uid, name, kind, apiVersion); namespaces are not part of a reference."""
        return (self.uid, self.name, self.kind, self.api_version) == (
            identity.uid,
            identity.name,
            identity.kind,
            identity.api_version,
        )


def owner_refs_of(obj: dict[str, Any]) -> tuple[OwnerRef, ...]:
    """The object's owner references that name a uid (others can never be resolved)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return tuple(OwnerRef.parse(ref) for ref in refs if isinstance(ref, dict) and ref.get("uid"))


def finalizers_of(obj: dict[str, Any] | None) -> list[str]:
    return list(((obj or {}).get("metadata") or {}).get("finalizers") or ())


def being_deleted(obj: dict[str, Any] | None) -> bool:
    return bool(((obj or {}).get("metadata") or {}).get("deletionTimestamp"))


def deletion_starts_with_finalizer(old: dict[str, Any] | None, new: dict[str, Any], finalizer: str) -> bool:
    """`new` is being deleted with `finalizer` and `old` (None: never seen) was not."""
    if not being_deleted(new) or finalizer not in finalizers_of(new):
        return False
    return old is None or not being_deleted(old) or finalizer not in finalizers_of(old)


def references_diff(
    old: Iterable[OwnerRef], new: Iterable[OwnerRef]
) -> tuple[list[OwnerRef], list[OwnerRef], list[tuple[OwnerRef, OwnerRef]]]:
    """(added, removed, changed as (old, new) pairs) between two ownerReference lists, keyed by uid."""
    old_by_uid = {ref.uid: ref for ref in old}
    added: list[OwnerRef] = []
    changed: list[tuple[OwnerRef, OwnerRef]] = []
    for ref in new:
        before = old_by_uid.pop(ref.uid, None)
        if before is None:
            added.append(ref)
        elif before != ref:
            changed.append((before, ref))
    return added, list(old_by_uid.values()), changed


# -- patches that edit references and finalizers ---------------------------------------------------


def remove_references_patch(dependent_uid: str, owner_uids: Sequence[str]) -> dict[str, Any]:
    """Strategic merge patch dropping the references to `owner_uids`; the uid makes it miss a
    re-created namesake."""
    refs = [{"$patch": "delete", "uid": uid} for uid in owner_uids]
    return {"metadata": {"ownerReferences": refs, "uid": dependent_uid}}


def remove_references_merge_patch(latest: dict[str, Any], owner_uids: Sequence[str]) -> dict[str, Any]:
    """JSON merge patch doing the same for resources without strategic merge (compare-and-swap)."""
    meta = latest.get("metadata") or {}
    kept = [ref for ref in meta.get("ownerReferences") or () if ref.get("uid") not in set(owner_uids)]
    return {"metadata": {"ownerReferences": kept or None, "resourceVersion": meta.get("resourceVersion")}}


def unblock_references_patch(latest: dict[str, Any]) -> dict[str, Any] | None:
    """Strategic merge patch setting blockOwnerDeletion=false on every blocking reference; None if none."""
    meta = latest.get("metadata") or {}
    refs = [
        dict(ref, blockOwnerDeletion=False)
        for ref in meta.get("ownerReferences") or ()
        if ref.get("blockOwnerDeletion")
    ]
    if not refs:
        return None
    return {"metadata": {"ownerReferences": refs, "uid": meta.get("uid")}}


def unblock_references_merge_patch(latest: dict[str, Any]) -> dict[str, Any]:
    meta = latest.get("metadata") or {}
    refs = [
        dict(ref, blockOwnerDeletion=False) if ref.get("blockOwnerDeletion") else ref
        for ref in meta.get("ownerReferences") or ()
    ]
    return {"metadata": {"ownerReferences": refs, "resourceVersion": meta.get("resourceVersion")}}


def remove_finalizer_patch(latest: dict[str, Any], finalizer: str) -> dict[str, Any] | None:
    """JSON merge patch removing `finalizer` (compare-and-swap on resourceVersion); None if absent."""
    finalizers = finalizers_of(latest)
    if finalizer not in finalizers:
        return None
    rest = [f for f in finalizers if f != finalizer]
    version = (latest.get("metadata") or {}).get("resourceVersion")
    return {"metadata": {"finalizers": rest or None, "resourceVersion": version}}


# -- the graph ------------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    identity: Identity
    owners: tuple[OwnerRef, ...] = ()
    dependents: set[str] = field(default_factory=set)  # uids
    observed: bool = True
    being_deleted: bool = False
    deleting_dependents: bool = False  # being deleted with the foregroundDeletion finalizer

    @property
    def uid(self) -> str:
        return self.identity.uid


@dataclass
class GraphActions:
    """What a graph change asks of the collector; uids may repeat (the work queue de-duplicates)."""

    attempt_to_delete: list[str] = field(default_factory=list)
    attempt_to_delete_later: list[str] = field(default_factory=list)  # after a back-off
    attempt_to_orphan: list[str] = field(default_factory=list)
    invalid_namespace_refs: list[tuple[Identity, OwnerRef]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.attempt_to_delete
            or self.attempt_to_delete_later
            or self.attempt_to_orphan
            or self.invalid_namespace_refs
        )


class AbsentOwnerCache:
    """A bounded LRU set of identities the API proved absent."""

    def __init__(self, size: int = ABSENT_OWNER_CACHE_SIZE) -> None:
        self._size = size
        self._items: collections.OrderedDict[Identity, None] = collections.OrderedDict()

    def add(self, identity: Identity) -> None:
        self._items[identity] = None
        self._items.move_to_end(identity)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __contains__(self, identity: object) -> bool:
        if identity in self._items:
            self._items.move_to_end(identity)  # type: ignore[arg-type]
            return True
        return False

    def __len__(self) -> int:
        return len(self._items)


class DependencyGraph:
    """uid → Node, fed by informer transitions; see the module docstring."""

    def __init__(self, *, absent_cache_size: int = ABSENT_OWNER_CACHE_SIZE) -> None:
        self._nodes: dict[str, Node] = {}
        self.absent = AbsentOwnerCache(absent_cache_size)

    # -- reading ----------------------------------------------------------------------------------

    def get(self, uid: str) -> Node | None:
        return self._nodes.get(uid)

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, uid: object) -> bool:
        return uid in self._nodes

    def dependents(self, node: Node) -> list[Node]:
        return [dep for uid in sorted(node.dependents) if (dep := self._nodes.get(uid)) is not None]

    def blocking_dependents(self, node: Node) -> list[Node]:
        """Dependents whose reference to `node` has blockOwnerDeletion: they hold a foreground deletion."""
        return [dep for dep in self.dependents(node) if any(r.uid == node.uid and r.blocking for r in dep.owners)]

    # -- informer transitions ---------------------------------------------------------------------

    def observe(
        self, obj: dict[str, Any], *, api_version: str, kind: str, old: dict[str, Any] | None = None
    ) -> GraphActions:
        """An informer added or updated `obj` (`old`: its previous state, None when first seen)."""
        actions = GraphActions()
        identity = _identity_of(obj, api_version, kind)
        if identity is None:
            return actions
        owners = owner_refs_of(obj)
        existing = self._nodes.get(identity.uid)
        if existing is not None and not existing.observed:
            self._first_observation(existing, identity, actions)
        if existing is None:
            node = Node(
                identity,
                owners,
                being_deleted=being_deleted(obj),
                deleting_dependents=being_deleted(obj) and FOREGROUND_FINALIZER in finalizers_of(obj),
            )
            self._nodes[identity.uid] = node
            self._add_dependent_to_owners(node, owners, actions)
            self._process_transitions(old, obj, node, actions)
            return actions
        if (existing.identity.api_version, existing.identity.kind) != (api_version, kind):
            existing.identity = replace(existing.identity, api_version=api_version, kind=kind)
        added, removed, changed = references_diff(existing.owners, owners)
        if added or removed or changed:
            self._add_unblocked_owners(removed, changed, actions)
            existing.owners = owners
            self._add_dependent_to_owners(existing, added, actions)
            self._remove_dependent_from_owners(existing, removed)
        if being_deleted(obj):
            existing.being_deleted = True
        self._process_transitions(old, obj, existing, actions)
        return actions

    def observe_deletion(self, obj: dict[str, Any], *, api_version: str, kind: str) -> GraphActions:
        """An informer saw `obj` go away."""
        actions = GraphActions()
        identity = _identity_of(obj, api_version, kind)
        existing = self._nodes.get(identity.uid) if identity is not None else None
        if identity is None or existing is None:
            return actions
        self._remove(existing, identity, actions)
        return actions

    def virtual_delete(self, identity: Identity) -> GraphActions:
        """The API says nothing with `identity` exists (404, or another uid under that name)."""
        actions = GraphActions()
        existing = self._nodes.get(identity.uid)
        if existing is None:
            return actions
        if not existing.observed:
            matching, nonmatching = self._partition_dependents(existing, identity)
            if nonmatching:
                # dependents disagree about where this owner lives: only this guess is disproved
                if matching:
                    self.absent.add(identity)
                    actions.attempt_to_delete.extend(dep.uid for dep in matching)
                if existing.identity == identity:
                    alternate = _alternate_owner_identity(nonmatching, identity)
                    if alternate is not None:
                        existing.identity = alternate
                        actions.attempt_to_delete_later.append(existing.uid)
                return actions
        elif existing.identity != identity:
            # an observed object outranks a guess: only dependents that used the guess lose their owner
            matching, _ = self._partition_dependents(existing, identity)
            if matching:
                self.absent.add(identity)
                actions.attempt_to_delete.extend(dep.uid for dep in matching)
            return actions
        self._remove(existing, identity, actions)
        return actions

    # -- internals --------------------------------------------------------------------------------

    def _first_observation(self, node: Node, observed: Identity, actions: GraphActions) -> None:
        """A virtual node turns real; dependents that guessed its coordinates wrong get re-checked."""
        if observed != node.identity:
            _, suspicious = self._partition_dependents(node, observed)
            for dep in suspicious:
                if observed.namespace and dep.identity.namespace != observed.namespace:
                    ref = next((r for r in dep.owners if r.uid == observed.uid), None)
                    if ref is not None:
                        actions.invalid_namespace_refs.append((dep.identity, ref))
                actions.attempt_to_delete.append(dep.uid)
            node.identity = observed
        node.observed = True

    def _add_dependent_to_owners(self, node: Node, owners: Iterable[OwnerRef], actions: GraphActions) -> None:
        suspicious = False
        for ref in owners:
            owner = self._nodes.get(ref.uid)
            if owner is None:
                # an owner nobody has observed yet: verify it exists through the API
                owner = Node(ref.identity(node.identity.namespace), observed=False)
                self._nodes[ref.uid] = owner
                owner.dependents.add(node.uid)
                actions.attempt_to_delete.append(ref.uid)
                continue
            owner.dependents.add(node.uid)
            if suspicious:
                continue
            owner_namespace = owner.identity.namespace
            if owner_namespace and owner_namespace != node.identity.namespace:
                # a namespaced owner must share the dependent's namespace
                if owner.observed:
                    actions.invalid_namespace_refs.append((node.identity, ref))
                suspicious = True
            elif not ref.matches(owner.identity):
                suspicious = True
            elif not owner_namespace and node.identity.namespace and not owner.observed:
                # a cluster-scoped guess made from a cluster-scoped dependent may be a namespaced kind
                suspicious = True
        if suspicious:
            actions.attempt_to_delete.append(node.uid)

    def _remove_dependent_from_owners(self, node: Node, owners: Iterable[OwnerRef]) -> None:
        for ref in owners:
            owner = self._nodes.get(ref.uid)
            if owner is not None:
                owner.dependents.discard(node.uid)

    def _remove(self, node: Node, identity: Identity, actions: GraphActions) -> None:
        del self._nodes[node.uid]
        self._remove_dependent_from_owners(node, node.owners)
        if node.dependents:
            self.absent.add(identity)
        actions.attempt_to_delete.extend(sorted(node.dependents))
        for ref in node.owners:
            owner = self._nodes.get(ref.uid)
            if owner is not None and owner.deleting_dependents:
                # one fewer dependent: the owner may be free to go
                actions.attempt_to_delete.append(owner.uid)

    def _add_unblocked_owners(
        self, removed: Iterable[OwnerRef], changed: Iterable[tuple[OwnerRef, OwnerRef]], actions: GraphActions
    ) -> None:
        """Owners a dependent stopped blocking may be waiting for exactly that."""
        unblocked = [ref.uid for ref in removed if ref.blocking]
        unblocked += [new.uid for old, new in changed if old.blocking and not new.blocking]
        actions.attempt_to_delete.extend(uid for uid in unblocked if uid in self._nodes)

    def _process_transitions(
        self, old: dict[str, Any] | None, new: dict[str, Any], node: Node, actions: GraphActions
    ) -> None:
        if deletion_starts_with_finalizer(old, new, ORPHAN_FINALIZER):
            actions.attempt_to_orphan.append(node.uid)
            return
        if deletion_starts_with_finalizer(old, new, FOREGROUND_FINALIZER):
            node.deleting_dependents = True
            actions.attempt_to_delete.extend(sorted(node.dependents))
            actions.attempt_to_delete.append(node.uid)

    def _partition_dependents(self, node: Node, owner: Identity) -> tuple[list[Node], list[Node]]:
        """(dependents whose reference matches `owner`, dependents whose reference contradicts it);
        a dependent with several references to the uid can be in both."""
        matching: list[Node] = []
        nonmatching: list[Node] = []
        for dep in self.dependents(node):
            match = False
            mismatch = bool(owner.namespace) and dep.identity.namespace != owner.namespace
            for ref in dep.owners:
                if ref.uid != owner.uid:
                    continue
                if ref.matches(owner):
                    match = True
                else:
                    mismatch = True
            if match:
                matching.append(dep)
            if mismatch:
                nonmatching.append(dep)
        return matching, nonmatching


def _identity_of(obj: dict[str, Any], api_version: str, kind: str) -> Identity | None:
    meta = obj.get("metadata") or {}
    uid = meta.get("uid")
    if not uid:
        return None
    return Identity(api_version, kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(uid))


def _alternate_owner_identity(dependents: list[Node], absent: Identity) -> Identity | None:
    """Another place the dependents say the owner lives: the first after `absent` in sort order,
    else the first — so repeated disproofs cycle through every candidate."""
    candidates: set[Identity] = set()
    for dep in dependents:
        for ref in dep.owners:
            if ref.uid != absent.uid:
                continue
            if ref.matches(absent) and (not absent.namespace or absent.namespace == dep.identity.namespace):
                continue
            candidate = ref.identity(dep.identity.namespace)
            if not absent.namespace and (candidate.api_version, candidate.kind) == (absent.api_version, absent.kind):
                candidate = replace(candidate, namespace="")  # that kind is known to be cluster-scoped
            if candidate != absent:
                candidates.add(candidate)
    if not candidates:
        return None
    ordered = sorted(candidates)
    return next((c for c in ordered if c > absent), ordered[0])


__all__ = [
    "ABSENT_OWNER_CACHE_SIZE",
    "FOREGROUND_FINALIZER",
    "ORPHAN_FINALIZER",
    "AbsentOwnerCache",
    "DependencyGraph",
    "GraphActions",
    "Identity",
    "Node",
    "OwnerRef",
    "being_deleted",
    "deletion_starts_with_finalizer",
    "finalizers_of",
    "owner_refs_of",
    "references_diff",
    "remove_finalizer_patch",
    "remove_references_merge_patch",
    "remove_references_patch",
    "unblock_references_merge_patch",
    "unblock_references_patch",
]
