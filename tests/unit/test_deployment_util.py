"""Deployment controller helpers: surge/unavailable math, the pod-template-hash, template equality,
revisions and the annotations kept on ReplicaSets."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.controllers.deployment.annotations import (
    copy_deployment_annotations,
    set_new_replica_set_annotations,
    set_replicas_annotations,
)
from kubelite.controllers.deployment.util import (
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    by_revision,
    by_size_newer_first,
    by_size_older_first,
    compute_hash,
    equal_ignore_hash,
    find_active_or_latest,
    find_new_replica_set,
    find_old_replica_sets,
    is_saturated,
    max_revision,
    max_surge,
    max_unavailable,
    new_rs_new_replicas,
    resolve_fenceposts,
    round_half_away,
    safe_encode,
    scaled_value,
)

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
}


def deployment(
    replicas: int = 10,
    surge: Any = "25%",
    unavailable: Any = "25%",
    strategy: str = "RollingUpdate",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "template": TEMPLATE, "strategy": {"type": strategy}}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "web", "annotations": annotations or {}}, "spec": spec}


def rs(
    name: str,
    replicas: int,
    *,
    created: str = "2026-01-01T00:00:00Z",
    available: int = 0,
    revision: str | None = None,
    template: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta_annotations = dict(annotations or {})
    if revision is not None:
        meta_annotations[REVISION_ANNOTATION] = revision
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created, "annotations": meta_annotations},
        "spec": {"replicas": replicas, "template": template or {"metadata": {"labels": {"app": name}}}},
        "status": {"replicas": replicas, "availableReplicas": available},
    }


# -- surge and unavailable ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        (3, 10, True, 3),
        ("25%", 10, True, 3),  # 2.5 rounds up
        ("25%", 10, False, 2),  # 2.5 rounds down
        ("100%", 7, False, 7),
        ("0%", 7, True, 0),
        ("1%", 1, True, 1),
        ("1%", 1, False, 0),
        (None, 10, True, 0),
    ],
)
def test_scaled_value_rounds_percentages_in_the_asked_direction(
    value: Any, total: int, round_up: bool, expected: int
) -> None:
    assert scaled_value(value, total, round_up=round_up) == expected


@pytest.mark.parametrize("value", ["5", "abc%", "%"])
def test_scaled_value_rejects_strings_that_are_not_percentages(value: str) -> None:
    with pytest.raises(ValueError, match="invalid value for IntOrString"):
        scaled_value(value, 10, round_up=True)


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),
        ("25%", "25%", 1, (1, 0)),
        (0, "10%", 5, (0, 1)),  # both resolve to 0: unavailable becomes 1
        ("0%", "0%", 3, (0, 1)),
        (2, 0, 4, (2, 0)),
        ("50%", 1, 3, (2, 1)),
    ],
)
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int, expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


def test_max_unavailable_is_capped_by_replicas_and_zero_for_recreate_or_no_replicas() -> None:
    assert max_unavailable(deployment(replicas=3, unavailable=5)) == 3
    assert max_unavailable(deployment(replicas=0)) == 0
    assert max_unavailable(deployment(strategy="Recreate")) == 0
    assert max_surge(deployment(strategy="Recreate")) == 0


def test_defaults_apply_when_the_rolling_parameters_are_absent() -> None:
    bare = {"spec": {"replicas": 4, "template": TEMPLATE}}
    assert (max_surge(bare), max_unavailable(bare)) == (1, 1)


@pytest.mark.parametrize(("value", "expected"), [(2.5, 3), (2.4, 2), (3.5, 4), (-2.5, -3), (0.5, 1), (0.0, 0)])
def test_round_half_away_from_zero_as_go(value: float, expected: int) -> None:
    assert round_half_away(value) == expected


# -- the hash and template equality ---------------------------------------------------------------


def test_safe_encode_uses_upstream_alphabet() -> None:
    assert safe_encode("0123456789") == "456789bcdf"


def test_hash_is_stable_for_a_template_and_independent_of_key_order() -> None:
    reordered = {"spec": {"containers": [{"image": "nginx", "name": "c"}]}, "metadata": {"labels": {"app": "web"}}}
    assert compute_hash(TEMPLATE) == compute_hash(reordered) == "5776f98846"


def test_hash_changes_with_the_template_and_with_collision_count() -> None:
    other = {**TEMPLATE, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    hashes = {compute_hash(TEMPLATE), compute_hash(other), compute_hash(TEMPLATE, 0), compute_hash(TEMPLATE, 1)}
    assert len(hashes) == 4
    assert all(set(h) <= set("bcdfghjklmnpqrstvwxz2456789") for h in hashes)


def test_equal_ignore_hash_ignores_only_the_hash_label_and_empty_values() -> None:
    with_hash = {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": TEMPLATE["spec"]}
    assert equal_ignore_hash(TEMPLATE, with_hash)
    spelled_out = {"metadata": {"labels": {"app": "web"}, "annotations": {}}, "spec": {**TEMPLATE["spec"], "x": None}}
    assert equal_ignore_hash(TEMPLATE, spelled_out)
    relabelled = {"metadata": {"labels": {"app": "other"}}, "spec": TEMPLATE["spec"]}
    assert not equal_ignore_hash(TEMPLATE, relabelled)


def test_only_hash_label_templates_equal_an_unlabelled_template() -> None:
    assert equal_ignore_hash({"metadata": {"labels": {"pod-template-hash": "x"}}, "spec": {}}, {"spec": {}})


# -- finding ReplicaSets --------------------------------------------------------------------------


def test_new_replica_set_is_the_oldest_with_the_deployments_template() -> None:
    d = deployment()
    older = rs("a", 1, created="2026-01-01T00:00:00Z", template=TEMPLATE)
    newer = rs("b", 1, created="2026-01-02T00:00:00Z", template=TEMPLATE)
    other = rs("c", 1)
    assert find_new_replica_set(d, [newer, other, older]) is older
    required, every = find_old_replica_sets(d, [newer, other, older, rs("z", 0)])
    assert [x["metadata"]["name"] for x in required] == ["b", "c"]
    assert [x["metadata"]["name"] for x in every] == ["b", "c", "z"]


def test_sort_orders_match_upstream() -> None:
    old = rs("old", 3, created="2026-01-01T00:00:00Z", revision="2")
    mid = rs("mid", 3, created="2026-01-02T00:00:00Z", revision="1")
    new = rs("new", 5, created="2026-01-03T00:00:00Z", revision="1")
    names = lambda rss: [x["metadata"]["name"] for x in rss]  # noqa: E731
    assert names(by_size_older_first([mid, new, old])) == ["new", "old", "mid"]
    assert names(by_size_newer_first([mid, new, old])) == ["new", "mid", "old"]
    assert names(by_revision([new, old, mid])) == ["mid", "new", "old"]
    assert max_revision([old, mid, None, rs("bad", 1, revision="x")]) == 2


def test_active_or_latest() -> None:
    new = rs("new", 0, created="2026-01-03T00:00:00Z")
    old1 = rs("old1", 0, created="2026-01-01T00:00:00Z")
    old2 = rs("old2", 0, created="2026-01-02T00:00:00Z")
    assert find_active_or_latest(new, [old1, old2]) is new
    assert find_active_or_latest(None, [old1, old2]) is old2
    busy = rs("busy", 2)
    assert find_active_or_latest(new, [busy, old1]) is busy
    assert find_active_or_latest(rs("n", 1), [busy]) is None
    assert find_active_or_latest(None, []) is None


def test_saturation_needs_size_annotation_and_availability() -> None:
    d = deployment(replicas=3)
    full = rs("n", 3, available=3, annotations={"deployment.kubernetes.io/desired-replicas": "3"})
    assert is_saturated(d, full)
    assert not is_saturated(d, rs("n", 3, available=3))
    assert not is_saturated(d, rs("n", 3, available=2, annotations={"deployment.kubernetes.io/desired-replicas": "3"}))


@pytest.mark.parametrize(
    ("strategy", "surge", "sizes", "new_size", "expected"),
    [
        ("RollingUpdate", 1, [3], 0, 1),  # 3 old + 0 new, surge 1: may add 1
        ("RollingUpdate", 1, [3], 1, 1),  # at the ceiling: stays
        ("RollingUpdate", "100%", [3], 0, 3),  # never past replicas
        ("RollingUpdate", 0, [3], 0, 0),  # no surge: waits for old ones to shrink
        ("RollingUpdate", 0, [2], 0, 1),  # a free slot below replicas
        ("Recreate", None, [3], 0, 3),
    ],
)
def test_new_rs_new_replicas(strategy: str, surge: Any, sizes: list[int], new_size: int, expected: int) -> None:
    d = deployment(replicas=3, surge=surge, unavailable=1, strategy=strategy)
    new = rs("new", new_size)
    olds = [rs(f"old{i}", size) for i, size in enumerate(sizes)]
    assert new_rs_new_replicas(d, [*olds, new], new) == expected


# -- annotations ----------------------------------------------------------------------------------


def test_deployment_annotations_are_copied_except_the_skipped_ones() -> None:
    d = deployment(
        annotations={
            "kubernetes.io/change-cause": "kubectl set image",
            "team": "a",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "deployment.kubernetes.io/revision": "7",
            "deprecated.deployment.rollback.to": "1",
        }
    )
    target = rs("n", 1, annotations={"keep": "me", "team": "b"})
    assert copy_deployment_annotations(d, target)
    assert target["metadata"]["annotations"] == {
        "keep": "me",
        "team": "a",
        "kubernetes.io/change-cause": "kubectl set image",
    }
    assert not copy_deployment_annotations(d, target)


def test_new_replica_set_gets_revision_and_replica_annotations() -> None:
    target: dict[str, Any] = {"metadata": {}}
    assert set_new_replica_set_annotations(deployment(replicas=4, surge=1), target, "3", exists=False)
    assert target["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "3",
        "deployment.kubernetes.io/desired-replicas": "4",
        "deployment.kubernetes.io/max-replicas": "5",
    }


def test_an_old_replica_set_becoming_new_again_keeps_its_former_revisions() -> None:
    target = rs("n", 0, revision="2", annotations={REVISION_HISTORY_ANNOTATION: "1"})
    assert set_new_replica_set_annotations(deployment(), target, "5", exists=True)
    annotations = target["metadata"]["annotations"]
    assert (annotations[REVISION_ANNOTATION], annotations[REVISION_HISTORY_ANNOTATION]) == ("5", "1,2")
    assert "deployment.kubernetes.io/desired-replicas" not in annotations


def test_first_revision_history_entry() -> None:
    target = rs("n", 0, revision="1")
    set_new_replica_set_annotations(deployment(), target, "3", exists=True)
    assert target["metadata"]["annotations"][REVISION_HISTORY_ANNOTATION] == "1"


def test_revision_never_goes_down() -> None:
    target = rs("n", 0, revision="9")
    assert not set_new_replica_set_annotations(deployment(), target, "3", exists=True)
    assert target["metadata"]["annotations"][REVISION_ANNOTATION] == "9"


def test_revision_history_drops_oldest_entries_beyond_the_limit() -> None:
    target = rs("n", 0, revision="40", annotations={REVISION_HISTORY_ANNOTATION: "10,20,30"})
    set_new_replica_set_annotations(deployment(), target, "50", exists=True, history_limit_chars=8)
    assert target["metadata"]["annotations"][REVISION_HISTORY_ANNOTATION] == "20,30,40"
    again = rs("n", 0, revision="40", annotations={REVISION_HISTORY_ANNOTATION: "10,20,30"})
    set_new_replica_set_annotations(deployment(), again, "50", exists=True, history_limit_chars=7)
    assert again["metadata"]["annotations"][REVISION_HISTORY_ANNOTATION] == "30,40"


def test_replicas_annotations_report_change() -> None:
    target: dict[str, Any] = {"metadata": {}}
    assert set_replicas_annotations(target, 3, 4)
    assert not set_replicas_annotations(target, 3, 4)
