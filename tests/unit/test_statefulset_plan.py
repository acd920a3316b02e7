"""The StatefulSet controller's decisions, table-driven: identities and claims, the retention
policy's owner references, the status, and what one sync does (`plan_sync`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubelite.controllers.statefulset_claims import claim_owner_refs, claim_owner_up_to_date
from kubelite.controllers.statefulset_plan import Action, Revisions, Why, plan_sync, split_pods
from kubelite.controllers.statefulset_utils import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    REVISION_LABEL,
    ReplicaCounts,
    claims_for,
    count_replicas,
    identity_matches,
    max_unavailable,
    new_pod,
    new_versioned_pod,
    next_status,
    parent_and_ordinal,
    revisions_to_delete,
    status_changed,
    storage_matches,
)
from kubelite.machinery.meta import rfc3339

NS = "ns"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
OLD, NEW = "web-old", "web-new"


def make_sts(
    *,
    replicas: int = 3,
    policy: str = "OrderedReady",
    strategy: dict[str, Any] | None = None,
    start: int = 0,
    claims: bool = False,
    retention: tuple[str, str] = ("Retain", "Retain"),
    min_ready: int = 0,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "serviceName": "nginx",
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}},
        "podManagementPolicy": policy,
        "updateStrategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": retention[0], "whenScaled": retention[1]},
    }
    if start:
        spec["ordinals"] = {"start": start}
    if min_ready:
        spec["minReadySeconds"] = min_ready
    if claims:
        spec["volumeClaimTemplates"] = [
            {"metadata": {"name": "www", "labels": {"tier": "db"}}, "spec": {"accessModes": ["ReadWriteOnce"]}}
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": NS, "uid": "set-uid", "generation": 1},
        "spec": spec,
    }


def make_pod(
    ordinal: int,
    *,
    revision: str = NEW,
    phase: str = "Running",
    ready: bool = True,
    ready_at: datetime = NOW - timedelta(hours=1),
    deleting: bool = False,
    sts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    pod = new_pod(sts or make_sts(), ordinal)
    pod["metadata"]["uid"] = f"pod-uid-{ordinal}"
    pod["metadata"]["labels"][REVISION_LABEL] = revision
    if deleting:
        pod["metadata"]["deletionTimestamp"] = rfc3339(NOW)
    conditions = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": rfc3339(ready_at)}]
    pod["status"] = {"phase": phase, "conditions": conditions}
    return pod


def revisions_for(sts: dict[str, Any], *, current: str = NEW, update: str = NEW) -> Revisions:
    return Revisions(current_set=sts, update_set=sts, current=current, update=update)


def plan(sts: dict[str, Any], pods: list[dict[str, Any]], **kw: Any) -> list[tuple[str, str, str]]:
    """The steps of one sync as (action, pod name, why)."""
    claims = kw.pop("claims", {})
    result = plan_sync(sts, pods, revisions_for(sts, **kw), claims=claims, now=NOW)
    return [(s.action.value, s.name, s.why.value if s.why else "") for s in result.steps()]


# -- identities --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("web-0", ("web", 0)), ("my-web-12", ("my-web", 12)), ("web", ("", -1)), ("web-x", ("", -1)), ("-3", ("", 3))],
)
def test_parent_and_ordinal_come_from_the_name(name: str, expected: tuple[str, int]) -> None:
    assert parent_and_ordinal({"metadata": {"name": name}}) == expected


def test_new_pod_has_the_stable_identity_and_its_claim_volume() -> None:
    sts = make_sts(claims=True)
    pod = new_pod(sts, 2)
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == "web-2"
    assert meta["labels"] == {"app": "web", POD_NAME_LABEL: "web-2", POD_INDEX_LABEL: "2"}
    assert meta["ownerReferences"][0]["kind"] == "StatefulSet"
    assert (spec["hostname"], spec["subdomain"]) == ("web-2", "nginx")
    assert spec["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}}]
    assert identity_matches(sts, pod) and storage_matches(sts, pod)


def test_claims_take_the_template_labels_and_the_selector_labels() -> None:
    [(template, claim)] = claims_for(make_sts(claims=True), 1)
    assert template == "www"
    assert claim["metadata"] == {"name": "www-web-1", "namespace": NS, "labels": {"tier": "db", "app": "web"}}


def test_identity_mismatch_when_the_pod_name_label_is_missing() -> None:
    sts = make_sts()
    pod = new_pod(sts, 0)
    del pod["metadata"]["labels"][POD_NAME_LABEL]
    assert not identity_matches(sts, pod)


@pytest.mark.parametrize(
    ("ordinal", "partition", "revision"),
    [(0, 2, OLD), (1, 2, OLD), (2, 2, NEW), (5, 0, NEW)],
)
def test_new_pods_below_the_partition_are_at_the_current_revision(ordinal: int, partition: int, revision: str) -> None:
    sts = make_sts(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": partition}})
    pod = new_versioned_pod(sts, sts, OLD, NEW, ordinal)
    assert pod["metadata"]["labels"][REVISION_LABEL] == revision


@pytest.mark.parametrize(
    ("value", "replicas", "expected"), [(None, 5, None), (2, 5, 2), ("50%", 5, 2), ("10%", 5, 1), (0, 5, 1)]
)
def test_max_unavailable_rounds_down_and_is_at_least_one(value: Any, replicas: int, expected: int | None) -> None:
    rolling: dict[str, Any] = {"partition": 0}
    if value is not None:
        rolling["maxUnavailable"] = value
    sts = make_sts(replicas=replicas, strategy={"type": "RollingUpdate", "rollingUpdate": rolling})
    assert max_unavailable(sts) == expected


# -- retention policy ----------------------------------------------------------------------------------

SET_REF = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid", "controller": True}


def pod_ref(ordinal: int, uid: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": f"web-{ordinal}",
        "uid": uid or f"pod-uid-{ordinal}",
        "controller": True,
    }


@pytest.mark.parametrize(
    ("retention", "ordinal", "refs", "up_to_date", "wanted"),
    [
        # (whenDeleted, whenScaled); replicas = 3, so ordinal 5 is scaled down
        (("Retain", "Retain"), 0, [], True, []),
        (("Retain", "Retain"), 0, [SET_REF], False, []),
        (("Delete", "Retain"), 0, [], False, ["set"]),
        (("Delete", "Retain"), 5, [SET_REF], True, ["set"]),
        (("Retain", "Delete"), 0, [], True, []),
        (("Retain", "Delete"), 5, [], False, ["pod"]),
        (("Delete", "Delete"), 0, [], False, ["set"]),
        (("Delete", "Delete"), 5, [SET_REF], False, ["pod"]),
        (("Delete", "Delete"), 5, ["pod"], True, ["pod"]),
    ],
)
def test_claim_owner_references_follow_the_retention_policy(
    retention: tuple[str, str], ordinal: int, refs: list[Any], up_to_date: bool, wanted: list[str]
) -> None:
    sts = make_sts(retention=retention)
    pod = make_pod(ordinal)
    claim = {
        "metadata": {
            "name": f"www-web-{ordinal}",
            "ownerReferences": [pod_ref(ordinal) if r == "pod" else r for r in refs],
        }
    }
    assert claim_owner_up_to_date(claim, sts, pod) is up_to_date
    kinds = {"StatefulSet": "set", "Pod": "pod"}
    assert [kinds[r["kind"]] for r in claim_owner_refs(claim, sts, pod)] == wanted
    for ref in claim_owner_refs(claim, sts, pod):
        assert ref["controller"] is True


def test_claims_with_a_stale_or_foreign_owner_are_left_alone() -> None:
    sts = make_sts(retention=("Delete", "Delete"))
    pod = make_pod(0)
    stale = {"metadata": {"ownerReferences": [pod_ref(0, uid="earlier-pod")]}}
    assert claim_owner_up_to_date(stale, sts, pod)
    foreign = {"metadata": {"ownerReferences": [{"kind": "Other", "name": "x", "uid": "u", "controller": True}]}}
    assert claim_owner_up_to_date(foreign, sts, pod)
    assert claim_owner_refs(foreign, sts, pod) == foreign["metadata"]["ownerReferences"]


# -- status ------------------------------------------------------------------------------------------


def test_counts_and_a_finished_rollout_makes_the_update_revision_current() -> None:
    sts = make_sts()
    pods = [make_pod(0), make_pod(1), make_pod(2, ready=False)]
    counts = count_replicas(pods, min_ready=0, now=NOW, current_revision=OLD, update_revision=NEW)
    assert counts == ReplicaCounts(replicas=3, ready=2, available=2, current=0, updated=3)
    status = next_status(sts, counts, current_revision=OLD, update_revision=NEW, collision_count=0)
    assert status["currentRevision"] == OLD  # not all ready yet
    done = ReplicaCounts(replicas=3, ready=3, available=3, current=0, updated=3)
    status = next_status(sts, done, current_revision=OLD, update_revision=NEW, collision_count=0)
    assert status == {
        "observedGeneration": 1,
        "replicas": 3,
        "readyReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": NEW,
        "updateRevision": NEW,
        "collisionCount": 0,
        "availableReplicas": 3,
    }
    assert status_changed(sts, status)
    assert not status_changed({**sts, "status": status}, status)


def test_available_needs_min_ready_seconds() -> None:
    pods = [make_pod(0, ready_at=NOW - timedelta(seconds=5))]
    counts = count_replicas(pods, min_ready=10, now=NOW, current_revision=NEW, update_revision=NEW)
    assert (counts.ready, counts.available) == (1, 0)


def test_history_keeps_live_revisions_and_the_newest_old_ones() -> None:
    revisions = [{"metadata": {"name": f"r{i}"}, "revision": i} for i in range(1, 6)]
    doomed = revisions_to_delete(revisions, {"r1", "r5"}, 2)
    assert [r["metadata"]["name"] for r in doomed] == ["r2"]


# -- plan_sync: scaling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "pods", "expected"),
    [
        ("OrderedReady", [], [("create", "web-0", "")]),
        ("OrderedReady", [make_pod(0, phase="Pending", ready=False)], []),
        ("OrderedReady", [make_pod(0, ready=False)], []),
        ("OrderedReady", [make_pod(0)], [("create", "web-1", "")]),
        ("OrderedReady", [make_pod(0), make_pod(2)], [("create", "web-1", "")]),
        ("OrderedReady", [make_pod(0), make_pod(1), make_pod(2)], []),
        ("Parallel", [], [("create", "web-0", ""), ("create", "web-1", ""), ("create", "web-2", "")]),
        ("Parallel", [make_pod(1, ready=False)], [("create", "web-0", ""), ("create", "web-2", "")]),
    ],
)
def test_scale_up(policy: str, pods: list[dict[str, Any]], expected: list[tuple[str, str, str]]) -> None:
    assert plan(make_sts(policy=policy), pods) == expected


def test_ordered_ready_waits_for_min_ready_seconds() -> None:
    sts = make_sts(min_ready=30)
    assert plan(sts, [make_pod(0, ready_at=NOW - timedelta(seconds=10))]) == []
    assert plan(sts, [make_pod(0, ready_at=NOW - timedelta(seconds=31))]) == [("create", "web-1", "")]


def test_ordinals_start_where_spec_ordinals_says() -> None:
    sts = make_sts(start=5, replicas=2, policy="Parallel")
    assert plan(sts, []) == [("create", "web-5", ""), ("create", "web-6", "")]
    slots, condemned = split_pods(sts, [make_pod(0), make_pod(6)])
    assert [s and s["metadata"]["name"] for s in slots] == [None, "web-6"]
    assert [p["metadata"]["name"] for p in condemned] == ["web-0"]


@pytest.mark.parametrize(
    ("policy", "pods", "expected"),
    [
        ("OrderedReady", [make_pod(i) for i in range(4)], [("delete", "web-3", "scale-down")]),
        ("OrderedReady", [*(make_pod(i) for i in range(3)), make_pod(3, deleting=True)], []),
        # web-2 is not ready, but it is the first unhealthy pod: it may go
        (
            "OrderedReady",
            [make_pod(0), make_pod(1), make_pod(2, ready=False), make_pod(3)],
            [("delete", "web-3", "scale-down")],
        ),
        ("OrderedReady", [make_pod(0), make_pod(1, ready=False), make_pod(2), make_pod(3, ready=False)], []),
        (
            "Parallel",
            [make_pod(i) for i in range(4)],
            [("delete", "web-3", "scale-down"), ("delete", "web-2", "scale-down")],
        ),
    ],
)
def test_scale_down_from_the_highest_ordinal(
    policy: str, pods: list[dict[str, Any]], expected: list[tuple[str, str, str]]
) -> None:
    assert plan(make_sts(replicas=2, policy=policy), pods) == expected


def test_failed_pod_is_deleted_and_recreated() -> None:
    pods = [make_pod(0), make_pod(1, phase="Failed", ready=False)]
    assert plan(make_sts(), pods) == [("delete", "web-1", "RecreatingFailedPod"), ("create", "web-1", "")]
    pods = [make_pod(0, phase="Succeeded", ready=False)]
    assert plan(make_sts(), pods) == [("delete", "web-0", "RecreatingTerminatedPod"), ("create", "web-0", "")]


def test_a_pod_with_the_wrong_identity_is_updated() -> None:
    sts = make_sts(replicas=1)
    pod = make_pod(0)
    del pod["metadata"]["labels"][POD_NAME_LABEL]
    assert plan(sts, [pod]) == [("update", "web-0", "")]


def test_a_stale_claim_blocks_creation_while_its_old_pod_is_collected() -> None:
    sts = make_sts(replicas=1, claims=True, retention=("Retain", "Delete"))
    stale = {"metadata": {"name": "www-web-0", "ownerReferences": [pod_ref(0, uid="earlier")]}}
    result = plan_sync(sts, [], revisions_for(sts), claims={"www-web-0": stale}, now=NOW)
    assert result.steps() == [] and result.blocked


def test_scaled_down_pods_get_their_claims_fixed_before_deletion() -> None:
    sts = make_sts(replicas=1, claims=True, retention=("Retain", "Delete"))
    pods = [make_pod(0, sts=sts), make_pod(1, sts=sts)]
    claims = {"www-web-0": {"metadata": {"name": "www-web-0"}}, "www-web-1": {"metadata": {"name": "www-web-1"}}}
    result = plan_sync(sts, pods, revisions_for(sts), claims=claims, now=NOW)
    assert [(s.action, s.name) for s in result.steps()] == [(Action.FIX_CLAIMS, "web-1"), (Action.DELETE, "web-1")]


def test_nothing_happens_while_the_set_is_deleted() -> None:
    sts = make_sts()
    sts["metadata"]["deletionTimestamp"] = rfc3339(NOW)
    assert plan(sts, []) == []


# -- plan_sync: updates ------------------------------------------------------------------------------


def old_pods(n: int = 3, **kw: Any) -> list[dict[str, Any]]:
    return [make_pod(i, revision=OLD, **kw) for i in range(n)]


@pytest.mark.parametrize(
    ("strategy", "pods", "expected"),
    [
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, old_pods(), [("delete", "web-2", "update")]),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            [make_pod(0, revision=OLD), make_pod(1, revision=OLD), make_pod(2)],
            [("delete", "web-1", "update")],
        ),
        (  # the updated pod is not healthy yet: wait
            {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            [make_pod(0, revision=OLD), make_pod(1, revision=OLD), make_pod(2, ready=False)],
            [],
        ),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
            [make_pod(0, revision=OLD), make_pod(1, revision=OLD), make_pod(2)],
            [],
        ),
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}, old_pods(), []),
        ({"type": "OnDelete"}, old_pods(), []),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}},
            old_pods(),
            [("delete", "web-2", "update"), ("delete", "web-1", "update")],
        ),
    ],
)
def test_rolling_update(strategy: dict[str, Any], pods: list[dict[str, Any]], expected: list[Any]) -> None:
    assert plan(make_sts(strategy=strategy), pods, current=OLD) == expected


def test_recreated_pods_below_the_partition_keep_the_current_revision() -> None:
    sts = make_sts(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    result = plan_sync(sts, old_pods(1), revisions_for(sts, current=OLD), claims={}, now=NOW)
    [step] = result.steps()
    assert step.action is Action.CREATE and step.pod["metadata"]["labels"][REVISION_LABEL] == OLD
    assert step.why is None and not isinstance(step.why, Why)
