"""The pod status the node agent reports: phase (upstream getPhase), conditions, container statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kubelite.agent.pods.status import (
    container_status,
    pod_conditions,
    pod_phase,
    pod_status,
    running_state,
    terminated_state,
    waiting_state,
)

T0 = datetime(2026, 11, 28, 16, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 28, 16, 5, 0, tzinfo=UTC)


def running(name: str, *, ready: bool = True) -> dict[str, Any]:
    return container_status(name, "img", running_state(T0), container_id="process://x", ready=ready, started=True)


def exited(name: str, code: int) -> dict[str, Any]:
    reason = "Completed" if code == 0 else "Error"
    state = terminated_state(exit_code=code, reason=reason, started_at=T0, finished_at=T1)
    return container_status(name, "img", state, container_id="process://x")


def waiting(name: str, reason: str = "ContainerCreating", *, last_exit: int | None = None) -> dict[str, Any]:
    last = None
    if last_exit is not None:
        last = terminated_state(exit_code=last_exit, reason="Error", started_at=T0, finished_at=T1)
    return container_status(name, "img", waiting_state(reason), last_state=last, restart_count=1 if last else 0)


def spec(containers: list[str], *, init: list[str] = (), policy: str = "Always") -> dict[str, Any]:  # type: ignore[assignment]
    result: dict[str, Any] = {"restartPolicy": policy, "containers": [{"name": n, "image": "img"} for n in containers]}
    if init:
        result["initContainers"] = [{"name": n, "image": "img"} for n in init]
    return result


PHASES = [
    # (case, spec, init statuses, statuses, terminal, phase)
    ("nothing reported yet", spec(["a"]), [], [], False, "Pending"),
    ("creating", spec(["a"]), [], [waiting("a")], False, "Pending"),
    ("one running", spec(["a", "b"]), [], [running("a"), running("b")], False, "Running"),
    ("running and creating", spec(["a", "b"]), [], [running("a"), waiting("b")], False, "Pending"),
    ("running, one unknown", spec(["a", "b"]), [], [running("a")], False, "Pending"),
    ("Always: all exited", spec(["a"]), [], [exited("a", 0)], False, "Running"),
    ("Always: crash looping", spec(["a"]), [], [waiting("a", "CrashLoopBackOff", last_exit=1)], False, "Running"),
    ("Never: exit 0", spec(["a"], policy="Never"), [], [exited("a", 0)], False, "Succeeded"),
    ("Never: exit 1", spec(["a"], policy="Never"), [], [exited("a", 1)], False, "Failed"),
    ("Never: one failed", spec(["a", "b"], policy="Never"), [], [exited("a", 0), exited("b", 2)], False, "Failed"),
    ("Never: one still runs", spec(["a", "b"], policy="Never"), [], [exited("a", 1), running("b")], False, "Running"),
    ("OnFailure: exit 0", spec(["a"], policy="OnFailure"), [], [exited("a", 0)], False, "Succeeded"),
    ("OnFailure: exit 1 restarts", spec(["a"], policy="OnFailure"), [], [exited("a", 1)], False, "Running"),
    ("terminal: killed", spec(["a"]), [], [exited("a", 143)], True, "Failed"),
    ("terminal: clean exit", spec(["a"]), [], [exited("a", 0)], True, "Succeeded"),
    ("init running", spec(["a"], init=["i"]), [running("i")], [waiting("a", "PodInitializing")], False, "Pending"),
    ("init done", spec(["a"], init=["i"]), [exited("i", 0)], [running("a")], False, "Running"),
    ("init failed, Never", spec(["a"], init=["i"], policy="Never"), [exited("i", 1)], [waiting("a")], False, "Failed"),
    (
        "init failed, Always: retried",
        spec(["a"], init=["i"]),
        [waiting("i", "CrashLoopBackOff", last_exit=1)],
        [waiting("a", "PodInitializing")],
        False,
        "Pending",
    ),
    (
        "init failed in the past, Never",
        spec(["a"], init=["i"], policy="Never"),
        [waiting("i", "CrashLoopBackOff", last_exit=1)],
        [waiting("a")],
        False,
        "Failed",
    ),
]


@pytest.mark.parametrize(
    ("case", "pod_spec", "init", "statuses", "terminal", "phase"), PHASES, ids=[p[0] for p in PHASES]
)
def test_phase_follows_upstream_get_phase(
    case: str,
    pod_spec: dict[str, Any],
    init: list[dict[str, Any]],
    statuses: list[dict[str, Any]],
    terminal: bool,
    phase: str,
) -> None:
    assert pod_phase(pod_spec, init, statuses, terminal=terminal) == phase


def conditions_of(pod: dict[str, Any], phase: str, init: list[Any], statuses: list[Any], **kw: Any) -> dict[str, Any]:
    found = pod_conditions(pod, phase, init, statuses, sandbox_ready=kw.pop("sandbox_ready", True), now=T1)
    return {c["type"]: c for c in found}


def test_ready_pod_has_every_condition_true_in_kubelet_order() -> None:
    pod = {"spec": spec(["a"]), "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}
    found = pod_conditions(pod, "Running", [], [running("a")], sandbox_ready=True, now=T1)
    assert [c["type"] for c in found] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert all(c["status"] == "True" for c in found)
    assert found[0] == {
        "type": "PodReadyToStartContainers",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": "2026-11-28T16:05:00Z",
    }


def test_unready_containers_are_named_as_go_prints_a_list() -> None:
    pod = {"spec": spec(["a", "b", "c"])}
    found = conditions_of(pod, "Running", [], [running("a", ready=False), running("b"), running("c", ready=False)])
    assert found["ContainersReady"]["reason"] == "ContainersNotReady"
    assert found["ContainersReady"]["message"] == "containers with unready status: [a c]"
    assert found["Ready"]["status"] == "False"
    assert found["Ready"]["reason"] == "ContainersNotReady"
    assert found["Ready"]["message"] == "containers with unready status: [a c]"


def test_unknown_and_unready_containers_both_reported() -> None:
    found = conditions_of({"spec": spec(["a", "b"])}, "Pending", [], [waiting("a")])
    assert found["ContainersReady"]["message"] == (
        "containers with unknown status: [b], containers with unready status: [a]"
    )


@pytest.mark.parametrize(("phase", "reason"), [("Succeeded", "PodCompleted"), ("Failed", "PodFailed")])
def test_finished_pods_are_not_ready(phase: str, reason: str) -> None:
    found = conditions_of({"spec": spec(["a"])}, phase, [], [exited("a", 0 if phase == "Succeeded" else 1)])
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == ("False", reason)
    assert (found["ContainersReady"]["status"], found["ContainersReady"]["reason"]) == ("False", reason)


def test_initialized_waits_for_every_init_container() -> None:
    pod = {"spec": spec(["a"], init=["i1", "i2"])}
    found = conditions_of(pod, "Pending", [exited("i1", 0), running("i2")], [waiting("a", "PodInitializing")])
    assert found["Initialized"]["status"] == "False"
    assert found["Initialized"]["reason"] == "ContainersNotInitialized"
    assert found["Initialized"]["message"] == "containers with incomplete status: [i2]"
    found = conditions_of(pod, "Running", [exited("i1", 0), exited("i2", 0)], [running("a")])
    assert found["Initialized"]["status"] == "True"


def test_succeeded_pod_reports_initialized_pod_completed() -> None:
    pod = {"spec": spec(["a"], init=["i"], policy="Never")}
    found = conditions_of(pod, "Succeeded", [exited("i", 0)], [exited("a", 0)])
    assert (found["Initialized"]["status"], found["Initialized"].get("reason")) == ("True", "PodCompleted")


def test_readiness_gates_hold_ready_back() -> None:
    pod_spec = spec(["a"]) | {"readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "x/y"}]}
    pod = {"spec": pod_spec, "status": {"conditions": [{"type": "x/y", "status": "False"}]}}
    found = conditions_of(pod, "Running", [], [running("a")])
    assert found["ContainersReady"]["status"] == "True"
    assert found["Ready"]["reason"] == "ReadinessGatesNotReady"
    assert found["Ready"]["message"] == (
        'corresponding condition of pod readiness gate "example.com/lb" does not exist., '
        'the status of pod readiness gate "x/y" is not "True", but False'
    )
    assert found["x/y"] == {"type": "x/y", "status": "False"}  # a condition the agent does not own: kept


def test_transition_time_moves_only_when_the_status_changes() -> None:
    old = [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-28T15:00:00Z"},
        {"type": "ContainersReady", "status": "False", "lastTransitionTime": "2026-11-28T15:00:00Z"},
    ]
    pod = {"spec": spec(["a"]), "status": {"conditions": old}}
    found = conditions_of(pod, "Running", [], [running("a")])
    assert found["Ready"]["lastTransitionTime"] == "2026-11-28T15:00:00Z"
    assert found["ContainersReady"]["lastTransitionTime"] == "2026-11-28T16:05:00Z"


def test_sandbox_gone_means_not_ready_to_start_containers() -> None:
    found = conditions_of({"spec": spec(["a"])}, "Succeeded", [], [exited("a", 0)], sandbox_ready=False)
    assert found["PodReadyToStartContainers"]["status"] == "False"


def test_container_status_shapes() -> None:
    assert waiting("a") == {
        "name": "a",
        "image": "img",
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ContainerCreating"}},
        "lastState": {},
    }
    state = terminated_state(
        exit_code=137, reason="OOMKilled", started_at=T0, finished_at=T1, container_id="process://c"
    )
    assert state == {
        "terminated": {
            "exitCode": 137,
            "reason": "OOMKilled",
            "startedAt": "2026-11-28T16:00:00Z",
            "finishedAt": "2026-11-28T16:05:00Z",
            "containerID": "process://c",
        }
    }
    assert running_state(T0) == {"running": {"startedAt": "2026-11-28T16:00:00Z"}}


def test_pod_status_keeps_fields_it_does_not_own_and_uses_the_node_ip() -> None:
    pod = {
        "spec": spec(["a"]),
        "status": {
            "phase": "Pending",
            "qosClass": "BestEffort",
            "startTime": "2026-11-28T15:59:00Z",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
        },
    }
    status = pod_status(pod, init_statuses=[], statuses=[running("a")], sandbox_ready=True, node_ip="10.1.2.3", now=T1)
    assert status["phase"] == "Running"
    assert status["qosClass"] == "BestEffort"
    assert status["startTime"] == "2026-11-28T15:59:00Z"
    assert (status["hostIP"], status["podIP"]) == ("10.1.2.3", "10.1.2.3")
    assert status["hostIPs"] == status["podIPs"] == [{"ip": "10.1.2.3"}]
    assert status["containerStatuses"] == [running("a")]
    assert "initContainerStatuses" not in status
    assert status["conditions"][-1] == {"type": "PodScheduled", "status": "True"}


def test_a_finished_phase_is_never_left() -> None:
    pod = {"spec": spec(["a"]), "status": {"phase": "Succeeded"}}
    status = pod_status(pod, init_statuses=[], statuses=[running("a")], sandbox_ready=True, node_ip="1.2.3.4", now=T1)
    assert status["phase"] == "Succeeded"


def test_start_time_is_set_once() -> None:
    status = pod_status(
        {"spec": spec(["a"])},
        init_statuses=[],
        statuses=[waiting("a")],
        sandbox_ready=True,
        node_ip="1.2.3.4",
        now=T1,
        start_time=T0,
    )
    assert status["startTime"] == "2026-11-28T16:00:00Z"
