"""Writes a StatefulSet sync makes to pods and claims, with upstream's events (stateful_pod_control.go).

Contracts:

* `create` creates the pod's missing claims first (a claim being deleted is an error: the pod
  must not start without its storage), then the pod, then sets the claims' ownerReferences for
  the retention policy (now that the pod has a uid).  An AlreadyExists pod is raised without an
  event (a stale cache; the next sync sees it).
* `delete` deletes with the pod's uid as precondition; NotFound counts as done.
* `update` makes a pod conform: identity labels (`statefulset.kubernetes.io/pod-name`,
  `apps.kubernetes.io/pod-index`), missing claims, claim references.  A pod's volumes cannot be
  changed after creation, so a pod whose volumes do not name its claims keeps them (upstream's
  update of `spec.volumes` would be refused by the API server).
* Events on the StatefulSet: `SuccessfulCreate` "create Pod web-0 in StatefulSet web successful",
  `FailedCreate` "create Pod web-0 in StatefulSet web failed error: …", the same for Delete and
  Update, `SuccessfulCreate` "create Claim www-web-0 Pod web-0 in StatefulSet web success" (and
  `FailedCreate` "create Claim … for Pod … in StatefulSet … failed error: …"), and
  `ConflictingController` for a claim another controller owns.
* `claims` is a dict the shell fills from the claim cache; what this module creates or updates is
  written back into it, so later steps of the same sync see it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubelite.client.events import NORMAL, WARNING, EventRecorder
from kubelite.client.interface import Client
from kubelite.controllers.ownership import PODS
from kubelite.controllers.statefulset_claims import claim_owner_refs, claim_owner_up_to_date, has_unexpected_controller
from kubelite.controllers.statefulset_utils import (
    PERSISTENT_VOLUME_CLAIMS,
    claims_for,
    identity_labels,
    identity_matches,
    ordinal_of,
)
from kubelite.machinery import errors
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, name_of, namespace_of

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]


def _error_text(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ApiError) else str(exc)


class StatefulPodControl:
    """Pod and claim writes for one StatefulSet controller; see the module docstring."""

    def __init__(self, client: Client, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder

    # -- events --------------------------------------------------------------------------------------

    def _pod_event(self, verb: str, sts: Obj, pod: Obj, exc: BaseException | None) -> None:
        pod_name, set_name = name_of(dict(pod)), name_of(dict(sts))
        if exc is None:
            message = f"{verb} Pod {pod_name} in StatefulSet {set_name} successful"
            self.recorder.event(dict(sts), NORMAL, f"Successful{verb.title()}", message)
        else:
            message = f"{verb} Pod {pod_name} in StatefulSet {set_name} failed error: {_error_text(exc)}"
            self.recorder.event(dict(sts), WARNING, f"Failed{verb.title()}", message)

    def _claim_event(self, verb: str, sts: Obj, pod: Obj, claim: Obj, exc: BaseException | None) -> None:
        claim_name, pod_name, set_name = name_of(dict(claim)), name_of(dict(pod)), name_of(dict(sts))
        if exc is None:
            message = f"{verb} Claim {claim_name} Pod {pod_name} in StatefulSet {set_name} success"
            self.recorder.event(dict(sts), NORMAL, f"Successful{verb.title()}", message)
        else:
            message = (
                f"{verb} Claim {claim_name} for Pod {pod_name} in StatefulSet {set_name} "
                f"failed error: {_error_text(exc)}"
            )
            self.recorder.event(dict(sts), WARNING, f"Failed{verb.title()}", message)

    # -- claims --------------------------------------------------------------------------------------

    async def create_claims(self, sts: Obj, pod: Obj, claims: dict[str, Obj]) -> None:
        """Create the pod's missing claims; raise the first failure after trying all (upstream
        createPersistentVolumeClaims)."""
        failure: BaseException | None = None
        namespace = namespace_of(dict(sts))
        for _, wanted in claims_for(sts, ordinal_of(pod)):
            name = name_of(wanted)
            found = claims.get(name)
            if found is not None:
                if (found.get("metadata") or {}).get("deletionTimestamp"):
                    failure = failure or errors.conflict(
                        PERSISTENT_VOLUME_CLAIMS.plural, "", name, f"pvc {name} is being deleted"
                    )
                continue
            try:
                claims[name] = await self.client.create(PERSISTENT_VOLUME_CLAIMS, wanted, namespace)
            except ApiError as exc:
                failure = failure or exc
                if exc.code != 409 or exc.reason != "AlreadyExists":
                    self._claim_event("create", sts, pod, wanted, exc)
                continue
            self._claim_event("create", sts, pod, wanted, None)
        if failure is not None:
            raise failure

    async def fix_claim_refs(self, sts: Obj, pod: Obj, claims: dict[str, Obj]) -> bool:
        """Set the references of the pod's existing claims for the retention policy (upstream
        UpdatePodClaimForRetentionPolicy); True when a claim was written."""
        wrote = False
        for _, wanted in claims_for(sts, ordinal_of(pod)):
            name = name_of(wanted)
            found = claims.get(name)
            if found is None:
                continue  # picked up once it exists
            if has_unexpected_controller(found, sts, pod):
                message = (
                    f"PersistentVolumeClaim {name} has a conflicting OwnerReference that acts as a manging "
                    "controller, the retention policy is ignored for this claim"
                )
                self.recorder.event(dict(sts), WARNING, "ConflictingController", message)
            if claim_owner_up_to_date(found, sts, pod):
                continue
            body = deep_copy(dict(found))
            body["metadata"]["ownerReferences"] = claim_owner_refs(found, sts, pod)
            claims[name] = await self.client.update(PERSISTENT_VOLUME_CLAIMS, body, namespace_of(dict(sts)))
            wrote = True
        return wrote

    # -- pods ----------------------------------------------------------------------------------------

    async def create(self, sts: Obj, pod: Obj, claims: dict[str, Obj]) -> dict[str, Any]:
        try:
            await self.create_claims(sts, pod, claims)
        except ApiError as exc:
            self._pod_event("create", sts, pod, exc)
            raise
        try:
            created = await self.client.create(PODS, dict(pod), namespace_of(dict(sts)))
        except ApiError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                raise
            self._pod_event("create", sts, pod, exc)
            raise
        try:
            await self.fix_claim_refs(sts, created, claims)
        except ApiError as exc:
            self._pod_event("update", sts, created, exc)
            raise
        self._pod_event("create", sts, created, None)
        return created

    async def delete(self, sts: Obj, pod: Obj) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        try:
            await self.client.delete(
                PODS, name_of(dict(pod)), namespace_of(dict(pod)), preconditions={"uid": uid} if uid else None
            )
        except ApiError as exc:
            if exc.code == 404:
                return
            self._pod_event("delete", sts, pod, exc)
            raise
        self._pod_event("delete", sts, pod, None)

    async def update(self, sts: Obj, pod: Obj, claims: dict[str, Obj]) -> None:
        """Upstream UpdateStatefulPod, within what the API allows (see the module docstring)."""
        await self.create_claims(sts, pod, claims)
        try:
            await self.fix_claim_refs(sts, pod, claims)
        except ApiError as exc:
            self._pod_event("update", sts, pod, exc)
            raise
        if identity_matches(sts, pod):
            return
        body = {"metadata": {"labels": identity_labels(pod), "uid": (pod.get("metadata") or {}).get("uid")}}
        try:
            await self.client.patch(PODS, name_of(dict(pod)), body, namespace_of(dict(pod)))
        except ApiError as exc:
            if exc.code == 404:
                return
            self._pod_event("update", sts, pod, exc)
            raise
        self._pod_event("update", sts, pod, None)


__all__ = ["StatefulPodControl"]
