"""ControllerRevision helpers: hashing, naming, the data kubectl rollout reads, dedupe and trimming."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.controllers import history
from kubelite.controllers.history import (
    CONTROLLER_REVISION_HASH_LABEL,
    choose_current,
    compute_hash,
    new_revision,
    revision_name,
    revisions_to_trim,
    split_current,
    template_of,
    template_patch,
)

TEMPLATE = {
    "metadata": {"labels": {"app": "agent"}},
    "spec": {"containers": [{"name": "agent", "image": "agent:1"}]},
}
DAEMONSET = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {
        "name": "agent",
        "namespace": "ns",
        "uid": "ds-uid",
        "annotations": {"kubernetes.io/change-cause": "kubectl set image"},
    },
    "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": TEMPLATE},
}


def revision(name: str, number: int, *, data: Any = None, hash_value: str | None = None) -> dict[str, Any]:
    labels = {"app": "agent"}
    if hash_value is not None:
        labels[CONTROLLER_REVISION_HASH_LABEL] = hash_value
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": labels},
        "data": data if data is not None else {"n": number},
        "revision": number,
    }


# -- hashing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fnv1", "fnv1a"),
    [(b"", 0x811C9DC5, 0x811C9DC5), (b"a", 0x050C5D7E, 0xE40C292C), (b"foobar", 0x31F0B262, 0xBF9CF968)],
)
def test_fnv_sums_match_the_published_test_vectors(data: bytes, fnv1: int, fnv1a: int) -> None:
    assert history.fnv32(data) == fnv1
    assert history.fnv32a(data) == fnv1a


def test_hash_uses_only_the_safe_alphabet_and_is_stable() -> None:
    value = compute_hash(TEMPLATE)
    assert value == compute_hash({"spec": TEMPLATE["spec"], "metadata": TEMPLATE["metadata"]})  # key order
    assert value and set(value) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert len(value) <= 10


def test_hash_changes_with_the_template_and_the_collision_count() -> None:
    changed = {**TEMPLATE, "spec": {"containers": [{"name": "agent", "image": "agent:2"}]}}
    hashes = {compute_hash(TEMPLATE), compute_hash(changed), compute_hash(TEMPLATE, 0), compute_hash(TEMPLATE, 1)}
    assert len(hashes) == 4


def test_statefulset_style_revision_hash_folds_in_the_probe() -> None:
    data = template_patch(TEMPLATE)
    assert history.hash_revision_data(data) == history.hash_revision_data(template_patch(TEMPLATE))
    assert history.hash_revision_data(data) != history.hash_revision_data(data, 1)


# -- names and shape ------------------------------------------------------------------------------


def test_revision_name_is_owner_dash_hash_with_a_bounded_prefix() -> None:
    assert revision_name("agent", "5f7d8") == "agent-5f7d8"
    long = revision_name("x" * 300, "abc")
    assert long == "x" * 223 + "-abc"
    assert len(long) <= 253


def test_data_is_the_replace_patch_kubectl_rollout_undo_sends_back() -> None:
    data = template_patch(TEMPLATE)
    assert data == {"spec": {"template": {**TEMPLATE, "$patch": "replace"}}}
    assert "$patch" not in TEMPLATE  # the caller's template is left alone
    assert template_of({"data": data}) == TEMPLATE
    assert template_of({"data": "not a patch"}) is None


def test_new_revision_is_named_labelled_annotated_and_owned() -> None:
    hash_value = compute_hash(TEMPLATE)
    created = new_revision(
        DAEMONSET,
        api_version="apps/v1",
        kind="DaemonSet",
        data=template_patch(TEMPLATE),
        revision=3,
        hash_value=hash_value,
        labels=TEMPLATE["metadata"]["labels"],
    )
    meta = created["metadata"]
    assert (created["apiVersion"], created["kind"], created["revision"]) == ("apps/v1", "ControllerRevision", 3)
    assert meta["name"] == f"agent-{hash_value}"
    assert meta["namespace"] == "ns"
    assert meta["labels"] == {"app": "agent", CONTROLLER_REVISION_HASH_LABEL: hash_value}
    assert meta["annotations"] == {"kubernetes.io/change-cause": "kubectl set image"}
    [owner] = meta["ownerReferences"]
    assert owner == {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "name": "agent",
        "uid": "ds-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }


# -- current, duplicates, trimming ----------------------------------------------------------------


def test_split_current_compares_data_not_names() -> None:
    data = template_patch(TEMPLATE)
    same = revision("agent-a", 1, data=template_patch(TEMPLATE))
    other = revision("agent-b", 2)
    current, old = split_current([same, other], data)
    assert current == [same]
    assert old == [other]


def test_choose_current_keeps_the_highest_revision_and_returns_the_duplicates() -> None:
    low, high, mid = revision("a", 1), revision("b", 5), revision("c", 3)
    keep, duplicates = choose_current([low, high, mid])
    assert keep is high
    assert duplicates == [low, mid]


def test_choose_current_prefers_the_last_of_equal_revisions() -> None:
    first, second = revision("a", 2), revision("b", 2)
    keep, duplicates = choose_current([first, second])
    assert keep is second and duplicates == [first]


@pytest.mark.parametrize(
    ("numbers", "limit", "live", "trimmed"),
    [
        ([1, 2, 3], 3, set(), []),
        ([1, 2, 3], 10, set(), []),
        ([3, 1, 2, 5, 4], 2, set(), [1, 2, 3]),
        ([1, 2, 3, 4], 2, {"h1"}, [2, 3]),  # revision 1 still has live pods
        ([1, 2, 3], 0, {"h1", "h2", "h3"}, []),  # every old revision in use: keep them all
        ([1, 2, 3], 0, set(), [1, 2, 3]),
    ],
)
def test_trim_deletes_the_oldest_unused_revisions_beyond_the_limit(
    numbers: list[int], limit: int, live: set[str], trimmed: list[int]
) -> None:
    old = [revision(f"agent-h{n}", n, hash_value=f"h{n}") for n in numbers]
    assert [r["revision"] for r in revisions_to_trim(old, limit, live)] == trimmed


def test_revision_without_hash_label_is_known_by_its_name() -> None:
    unlabelled = revision("agent-legacy", 1)
    assert history.revision_hash(unlabelled) == "agent-legacy"
    trimmed = revisions_to_trim([unlabelled, revision("agent-x", 2)], 1, {"agent-legacy"})
    assert [r["revision"] for r in trimmed] == [2]


def test_history_limit_defaults_to_ten() -> None:
    assert history.history_limit({"spec": {}}) == 10
    assert history.history_limit({"spec": {"revisionHistoryLimit": 0}}) == 0


def test_owner_index_names_the_controller_or_the_namespace_of_an_orphan() -> None:
    owned = {"metadata": {"namespace": "ns", "ownerReferences": [{"uid": "u1", "controller": True}]}}
    orphan = {"metadata": {"namespace": "ns"}}
    assert history.owner_uid_index(owned) == ["u1"]
    assert history.owner_uid_index(orphan) == [history.orphan_key("ns")]
