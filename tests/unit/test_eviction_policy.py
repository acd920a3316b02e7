"""Eviction API decisions and the DefaultTolerationSeconds admission step (pure parts)."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.apiserver.admission.tolerations import DefaultTolerationSeconds
from kubelite.apiserver.eviction import (
    budgets_for,
    can_ignore_budget,
    parse_eviction,
    take_disruption,
    unhealthy_pod_can_skip_budget,
)
from kubelite.machinery.errors import ApiError

STAMP = "2026-01-01T00:00:00Z"


def pdb(allowed: int = 1, *, generation: int = 1, observed: int = 1, policy: str | None = None, **status: Any) -> dict:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 1}
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    return {
        "metadata": {"name": "budget", "namespace": "ns", "generation": generation},
        "spec": spec,
        "status": {"disruptionsAllowed": allowed, "observedGeneration": observed, **status},
    }


def test_take_disruption_decrements_and_records_the_pod() -> None:
    taken = take_disruption(pdb(2), "p1", timestamp=STAMP, dry_run=False)
    assert taken["status"]["disruptionsAllowed"] == 1
    assert taken["status"]["disruptedPods"] == {"p1": STAMP}


def test_take_disruption_on_dry_run_records_nothing() -> None:
    taken = take_disruption(pdb(1), "p1", timestamp=STAMP, dry_run=True)
    assert taken["status"]["disruptionsAllowed"] == 0 and "disruptedPods" not in taken["status"]
    assert taken["status"]["conditions"][0]["reason"] == "InsufficientPods"


@pytest.mark.parametrize(
    ("budget", "code", "cause"),
    [
        (
            pdb(0, desiredHealthy=2, currentHealthy=2),
            429,
            "The disruption budget budget needs 2 healthy pods and has 2 currently",
        ),
        (pdb(1, generation=2, observed=1), 429, "The disruption budget budget is still being processed by the server."),
        (pdb(-1), 403, None),
    ],
)
def test_take_disruption_refuses_as_upstream(budget: dict, code: int, cause: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        take_disruption(budget, "p1", timestamp=STAMP, dry_run=False)
    assert caught.value.code == code
    if cause:
        assert caught.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
        assert [(c.reason, c.message) for c in caught.value.causes] == [("DisruptionBudget", cause)]


@pytest.mark.parametrize(
    ("phase", "deleting", "ignored"),
    [
        ("Succeeded", False, True),
        ("Failed", False, True),
        ("Pending", False, True),
        ("Running", False, False),
        ("Running", True, True),
    ],
)
def test_terminal_pending_or_deleting_pods_skip_the_budget(phase: str, deleting: bool, ignored: bool) -> None:
    pod = {"metadata": {"deletionTimestamp": STAMP} if deleting else {}, "status": {"phase": phase}}
    assert can_ignore_budget(pod) is ignored


def test_budgets_for_ignores_empty_selectors_and_other_namespaces() -> None:
    pod = {"metadata": {"namespace": "ns", "labels": {"app": "web"}}}
    empty = {"metadata": {"name": "e", "namespace": "ns"}, "spec": {"selector": {}}}
    other = {**pdb(), "metadata": {"name": "o", "namespace": "other"}}
    assert [b["metadata"]["name"] for b in budgets_for(pod, [pdb(), empty, other])] == ["budget"]


@pytest.mark.parametrize(
    ("budget", "skips"),
    [
        (pdb(0, desiredHealthy=2, currentHealthy=2), True),
        (pdb(0, desiredHealthy=2, currentHealthy=1), False),
        (pdb(0, desiredHealthy=2, currentHealthy=1, policy="AlwaysAllow"), True),
        (pdb(0, desiredHealthy=0, currentHealthy=0), False),
    ],
)
def test_unready_pods_skip_a_healthy_budget_or_always_allow(budget: dict, skips: bool) -> None:
    assert unhealthy_pod_can_skip_budget(budget) is skips


def test_parse_eviction_checks_the_name_and_reads_delete_options() -> None:
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "p"},
        "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "u"}, "dryRun": ["All"]},
    }
    parsed = parse_eviction(body, "p")
    assert (parsed.grace_period_seconds, parsed.uid, parsed.dry_run) == (0, "u", True)
    with pytest.raises(ApiError, match="name in URL does not match name in Eviction object"):
        parse_eviction(body, "q")


@pytest.mark.parametrize(
    ("tolerations", "added"),
    [
        ([], ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]),
        (
            [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}],
            ["node.kubernetes.io/not-ready"],
        ),
        ([{"operator": "Exists"}], []),
        (
            [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}],
            ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"],
        ),
    ],
)
def test_default_tolerations_are_added_unless_already_tolerated(tolerations: list, added: list[str]) -> None:
    pod: dict[str, Any] = {"spec": {"containers": [], "tolerations": list(tolerations)}}
    DefaultTolerationSeconds(not_ready_seconds=30, unreachable_seconds=60).admit(pod)
    new = pod["spec"]["tolerations"][len(tolerations) :]
    assert [t["key"] for t in new] == added
    assert all(t["operator"] == "Exists" and t["effect"] == "NoExecute" for t in new)
    assert {t["key"]: t["tolerationSeconds"] for t in new} == {
        k: {"node.kubernetes.io/not-ready": 30, "node.kubernetes.io/unreachable": 60}[k] for k in added
    }
