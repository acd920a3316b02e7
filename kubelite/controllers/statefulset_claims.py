"""Claims and `persistentVolumeClaimRetentionPolicy` (upstream StatefulSetAutoDeletePVC, beta and on
in 1.32): which ownerReferences a StatefulSet's claims should carry, as pure functions.

Contracts:

* `whenDeleted: Delete` puts a controller reference to the set on the claims of pods in range;
  `whenScaled: Delete` puts one to the pod on the claims of scaled-down pods (instead of the set's);
  the garbage collector deletes the claims with their owner.  Retain/Retain: no references.
* References to the set or pod with the right name and kind but another uid are stale (an earlier
  incarnation): such claims are left alone, and with `whenScaled: Delete` a stale pod reference
  blocks creating the pod until the claim is gone (its garbage collection pending).
* A claim controlled by something else is left alone (the shell records ConflictingController).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubelite.controllers.ownership import owner_reference
from kubelite.controllers.statefulset_utils import (
    API_VERSION,
    DELETE,
    KIND,
    RETAIN,
    claims_for,
    in_ordinal_range,
    ordinal_of,
    retention_policy,
)
from kubelite.machinery.meta import name_of

Obj = Mapping[str, Any]


_POD_API = ("v1", "Pod")
_SET_API = (API_VERSION, KIND)


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _refs(claim: Obj) -> list[dict[str, Any]]:
    return list((claim.get("metadata") or {}).get("ownerReferences") or ())


def _matches_ref(ref: Obj, obj: Obj, api: tuple[str, str]) -> bool:
    return (ref.get("apiVersion"), ref.get("kind")) == api and ref.get("name") == name_of(dict(obj))


def has_owner_ref(claim: Obj, owner: Obj) -> bool:
    uid = _uid(owner)
    return any(ref.get("uid") == uid for ref in _refs(claim))


def has_stale_owner_ref(claim: Obj, owner: Obj, api: tuple[str, str]) -> bool:
    """A reference of `owner`'s name and kind but another uid (a previous incarnation)."""
    for ref in _refs(claim):
        if _matches_ref(ref, owner, api):
            return ref.get("uid") != _uid(owner)
    return False


def has_unexpected_controller(claim: Obj, sts: Obj, pod: Obj) -> bool:
    if retention_policy(sts) == (RETAIN, RETAIN):
        return False
    for ref in _refs(claim):
        if _matches_ref(ref, sts, _SET_API):
            if ref.get("uid") != _uid(sts):
                return True
            continue
        if _matches_ref(ref, pod, _POD_API):
            if ref.get("uid") != _uid(pod):
                return True
            continue
        if ref.get("controller"):
            return True
    return False


def _has_non_controller_owner(claim: Obj, sts: Obj, pod: Obj) -> bool:
    uids = {_uid(sts), _uid(pod)} - {""}
    return any(ref.get("uid") in uids and not ref.get("controller") for ref in _refs(claim))


def claim_owner_up_to_date(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """Whether the claim's references say what the retention policy wants (upstream
    isClaimOwnerUpToDate; claims in an unknown state count as up to date: left alone)."""
    if has_stale_owner_ref(claim, sts, _SET_API) or has_stale_owner_ref(claim, pod, _POD_API):
        return True
    if has_unexpected_controller(claim, sts, pod):
        return not (has_owner_ref(claim, sts) or has_owner_ref(claim, pod))
    if _has_non_controller_owner(claim, sts, pod):
        return False
    set_ref, pod_ref = has_owner_ref(claim, sts), has_owner_ref(claim, pod)
    scaled_down = not in_ordinal_range(sts, pod)
    when_deleted, when_scaled = retention_policy(sts)
    if when_scaled == DELETE and when_deleted == DELETE:
        return scaled_down != set_ref and scaled_down == pod_ref
    if when_scaled == DELETE and when_deleted == RETAIN:
        return not set_ref and scaled_down == pod_ref
    if when_scaled == RETAIN and when_deleted == DELETE:
        return set_ref and not pod_ref
    return not set_ref and not pod_ref


def claim_owner_refs(claim: Obj, sts: Obj, pod: Obj) -> list[dict[str, Any]]:
    """The claim's ownerReferences as the retention policy wants them (upstream
    updateClaimOwnerRefForSetAndPod): references to the set and pod scrubbed, then added back."""
    unexpected = has_unexpected_controller(claim, sts, pod)
    refs = [r for r in _refs(claim) if not (_matches_ref(r, sts, _SET_API) or _matches_ref(r, pod, _POD_API))]
    if unexpected:
        return refs
    when_deleted, when_scaled = retention_policy(sts)
    scaled_down = not in_ordinal_range(sts, pod)
    wanted: list[tuple[Obj, str, str]] = []
    if when_scaled == DELETE and scaled_down:
        wanted.append((pod, "v1", "Pod"))
    if when_deleted == DELETE and not (when_scaled == DELETE and scaled_down):
        wanted.append((sts, API_VERSION, KIND))
    for owner, api_version, kind in wanted:
        if not any(r.get("uid") == _uid(owner) for r in refs):
            refs.append(owner_reference(dict(owner), api_version=api_version, kind=kind))
    return refs


def claims_match_policy(sts: Obj, pod: Obj, claims: Mapping[str, Obj]) -> bool:
    """Every existing claim of the pod is up to date (missing ones are picked up later)."""
    for _, wanted in claims_for(sts, ordinal_of(pod)):
        found = claims.get(wanted["metadata"]["name"])
        if found is not None and not claim_owner_up_to_date(found, sts, pod):
            return False
    return True


def claim_is_stale(sts: Obj, pod: Obj, claims: Mapping[str, Obj]) -> bool:
    """With `whenScaled: Delete`, a claim still referring to an earlier pod of this name (its
    garbage collection pending) blocks the pod's creation (upstream PodClaimIsStale)."""
    if retention_policy(sts)[1] == RETAIN:
        return False
    for _, wanted in claims_for(sts, ordinal_of(pod)):
        found = claims.get(wanted["metadata"]["name"])
        if found is not None and has_stale_owner_ref(found, pod, _POD_API):
            return True
    return False


def missing_claims(sts: Obj, pod: Obj, claims: Mapping[str, Obj]) -> bool:
    return any(wanted["metadata"]["name"] not in claims for _, wanted in claims_for(sts, ordinal_of(pod)))


__all__ = [
    "claim_is_stale",
    "claim_owner_refs",
    "claim_owner_up_to_date",
    "claims_match_policy",
    "has_owner_ref",
    "has_stale_owner_ref",
    "has_unexpected_controller",
    "missing_claims",
]
