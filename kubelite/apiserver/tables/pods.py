"""Pods and pod templates: upstream `printPod`, the most consulted logic in `kubectl get`.

The STATUS cell is not a field: it is derived from the phase, the pod's reason, init containers (in
order; the first unfinished one decides, as "Init:1/3", "Init:CrashLoopBackOff" or "Init:Error"),
then regular containers (the first in spec order with a waiting/terminated reason wins), and finally
deletion ("Terminating", or "Unknown" for a pod lost with its node).  RESTARTS counts restarts of
the containers that decided the status, with "(5m ago)" for the latest termination.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubelite.apiserver.tables import descriptions as doc
from kubelite.apiserver.tables.format import (
    AGE,
    NAME,
    Obj,
    age,
    as_int,
    as_list,
    column,
    format_labels,
    get,
    human_duration,
    layout_containers,
    name,
    parse_timestamp,
)

POD_COLUMNS = [
    NAME,
    column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    column("Status", description="The aggregate status of the containers in this pod."),
    column(
        "Restarts",
        description="The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.",
    ),
    AGE,
    column("IP", priority=1, description=doc.POD_IP),
    column("Node", priority=1, description=doc.POD_NODE_NAME),
    column("Nominated Node", priority=1, description=doc.POD_NOMINATED_NODE),
    column("Readiness Gates", priority=1, description=doc.POD_READINESS_GATES),
]

POD_TEMPLATE_COLUMNS = [
    NAME,
    column("Containers", description="Names of each container in the template."),
    column("Images", description="Images referenced by each container in the template."),
    column("Pod Labels", description="The labels for the pod template."),
]

NODE_UNREACHABLE_POD_REASON = "NodeLost"


def _is_restartable_init(container: Any) -> bool:
    """A sidecar: an init container with restartPolicy Always (`podutil.IsRestartableInitContainer`)."""
    return isinstance(container, dict) and container.get("restartPolicy") == "Always"


def _condition_true(pod: Obj, condition_type: str) -> bool:
    """The first condition of the type decides, as upstream's loops `break`/`return` on it."""
    for condition in as_list(get(pod, "status", "conditions")):
        if get(condition, "type") == condition_type:
            return get(condition, "status") == "True"
    return False


def _has_ready_condition(pod: Obj) -> bool:
    """`hasPodReadyCondition`: any Ready condition that is True (not just the first)."""
    return any(
        get(c, "type") == "Ready" and get(c, "status") == "True"
        for c in as_list(get(pod, "status", "conditions"))
    )


def _terminated_reason(terminated: dict, prefix: str = "") -> str:
    reason = terminated.get("reason") or ""
    if reason:
        return prefix + reason
    if as_int(terminated.get("signal")):
        return f"{prefix}Signal:{as_int(terminated.get('signal'))}"
    return f"{prefix}ExitCode:{as_int(terminated.get('exitCode'))}"


class _Restarts:
    """Restart count plus the latest `lastState.terminated.finishedAt` among the counted containers."""

    def __init__(self) -> None:
        self.count = 0
        self.last: datetime | None = None

    def add(self, status: Any) -> None:
        self.count += as_int(get(status, "restartCount"))
        if get(status, "lastState", "terminated") is not None:
            finished = parse_timestamp(get(status, "lastState", "terminated", "finishedAt"))
            if finished is not None and (self.last is None or self.last < finished):
                self.last = finished

    def merge(self, other: _Restarts) -> None:
        self.count = other.count
        self.last = other.last


def pod_status(pod: Obj) -> tuple[int, int, str, _Restarts]:
    """(ready containers, total containers, STATUS reason, restarts): upstream `printPod`'s core."""
    spec_containers = as_list(get(pod, "spec", "containers"))
    spec_init = as_list(get(pod, "spec", "initContainers"))
    total = len(spec_containers)
    ready = 0
    restarts = _Restarts()
    sidecar_restarts = _Restarts()

    phase = str(get(pod, "status", "phase") or "")
    reason = str(get(pod, "status", "reason") or "") or phase
    for condition in as_list(get(pod, "status", "conditions")):
        if get(condition, "type") == "PodScheduled" and get(condition, "reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_by_name = {get(c, "name"): c for c in spec_init}
    total += sum(1 for c in spec_init if _is_restartable_init(c))

    initializing = False
    for index, status in enumerate(as_list(get(pod, "status", "initContainerStatuses"))):
        restarts.add(status)
        sidecar = _is_restartable_init(init_by_name.get(get(status, "name")))
        if sidecar:
            sidecar_restarts.add(status)
        terminated = get(status, "state", "terminated")
        waiting = get(status, "state", "waiting")
        if isinstance(terminated, dict) and as_int(terminated.get("exitCode")) == 0:
            continue
        if sidecar and get(status, "started") is True:
            if get(status, "ready") is True:
                ready += 1
            continue
        if isinstance(terminated, dict):
            reason = _terminated_reason(terminated, "Init:")
        elif (
            isinstance(waiting, dict) and waiting.get("reason") and waiting.get("reason") != "PodInitializing"
        ):
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{index}/{len(spec_init)}"
        initializing = True
        break

    if not initializing or _condition_true(pod, "Initialized"):
        restarts.merge(sidecar_restarts)
        has_running = False
        for status in reversed(as_list(get(pod, "status", "containerStatuses"))):
            restarts.add(status)
            terminated = get(status, "state", "terminated")
            waiting = get(status, "state", "waiting")
            if isinstance(waiting, dict) and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif isinstance(terminated, dict):
                reason = _terminated_reason(terminated)
            elif get(status, "ready") is True and get(status, "state", "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_ready_condition(pod) else "NotReady"

    deleting = get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and get(pod, "status", "reason") == NODE_UNREACHABLE_POD_REASON:
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return ready, total, reason, restarts


def _readiness_gates(pod: Obj) -> str:
    gates = as_list(get(pod, "spec", "readinessGates"))
    if not gates:
        return "<none>"
    conditions = as_list(get(pod, "status", "conditions"))
    true_count = 0
    for gate in gates:
        for condition in conditions:
            if get(condition, "type") == get(gate, "conditionType"):
                true_count += get(condition, "status") == "True"
                break
    return f"{true_count}/{len(gates)}"


def pod_cells(pod: Obj, now: datetime) -> list:
    ready, total, reason, restarts = pod_status(pod)
    restarts_cell = str(restarts.count)
    if restarts.count and restarts.last is not None:
        restarts_cell = f"{restarts.count} ({human_duration(now - restarts.last)} ago)"
    # The internal type always carries podIPs (conversion fills it from podIP), so fall back to podIP.
    pod_ip = get(pod, "status", "podIPs", 0, "ip") or get(pod, "status", "podIP") or "<none>"
    return [
        name(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        age(pod, now),
        pod_ip,
        get(pod, "spec", "nodeName") or "<none>",
        get(pod, "status", "nominatedNodeName") or "<none>",
        _readiness_gates(pod),
    ]


def pod_conditions(pod: Obj) -> list[dict] | None:
    """Row conditions upstream attaches so clients can tell finished pods apart."""
    phase = get(pod, "status", "phase")
    if phase == "Succeeded":
        return [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            }
        ]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


def pod_template_cells(obj: Obj, now: datetime) -> list:
    names, images = layout_containers(get(obj, "template", "spec", "containers"))
    return [name(obj), names, images, format_labels(get(obj, "template", "metadata", "labels"))]
