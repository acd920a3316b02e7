"""The pod status the node agent reports: pure functions from what the agent knows to `status`.

Everything here works on API-shaped dicts (``containerStatuses[]`` entries, conditions), as the
kubelet's own ``getPhase`` / ``Generate*Condition`` work on ``v1.ContainerStatus``, so the rules can be
table-tested without a runtime.  The worker builds one container status per spec container with
`container_status` and the state helpers, then calls `pod_status`.

Contracts:

* `pod_phase` is upstream's ``getPhase``: init failures under ``restartPolicy: Never`` fail the pod;
  a waiting container keeps it Pending; all containers stopped means Succeeded/Failed unless the
  policy restarts them (Always: Running; OnFailure with a failure: Running).  ``terminal=True`` (the
  pod is being torn down, nothing will restart) decides by exit codes alone.
* A phase never leaves Succeeded/Failed once reported (`pod_status` keeps the old terminal phase).
* Condition order: PodReadyToStartContainers, Initialized, Ready, ContainersReady, then every
  condition the agent does not own (PodScheduled, readiness gates, DisruptionTarget) as the API had
  them.  ``lastTransitionTime`` moves only when a condition's status changes.
* Messages and reasons are upstream's, with Go's ``%s`` rendering of name lists: ``[a b]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from kubelite.machinery.meta import rfc3339

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED})

READY_TO_START = "PodReadyToStartContainers"
INITIALIZED = "Initialized"
READY = "Ready"
CONTAINERS_READY = "ContainersReady"
OWNED_CONDITIONS = (READY_TO_START, INITIALIZED, READY, CONTAINERS_READY)

# waiting reasons
CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
CREATE_CONTAINER_ERROR = "CreateContainerError"

# condition reasons
CONTAINERS_NOT_READY = "ContainersNotReady"
CONTAINERS_NOT_INITIALIZED = "ContainersNotInitialized"
READINESS_GATES_NOT_READY = "ReadinessGatesNotReady"
POD_COMPLETED = "PodCompleted"
POD_FAILED = "PodFailed"

CONTAINER_ID_SCHEME = "process://"

__all__ = [
    "CONTAINER_ID_SCHEME",
    "OWNED_CONDITIONS",
    "TERMINAL_PHASES",
    "container_status",
    "go_list",
    "pod_conditions",
    "pod_phase",
    "pod_status",
    "running_state",
    "terminated_state",
    "waiting_state",
]


# -- container statuses ---------------------------------------------------------------------------


def waiting_state(reason: str, message: str = "") -> dict[str, Any]:
    waiting: dict[str, Any] = {"reason": reason}
    if message:
        waiting["message"] = message
    return {"waiting": waiting}


def running_state(started_at: datetime | None) -> dict[str, Any]:
    return {"running": {"startedAt": rfc3339(started_at) if started_at else None}}


def terminated_state(
    *,
    exit_code: int,
    reason: str,
    started_at: datetime | None,
    finished_at: datetime | None,
    container_id: str = "",
    message: str = "",
    signal: int | None = None,
) -> dict[str, Any]:
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": rfc3339(started_at) if started_at else None,
        "finishedAt": rfc3339(finished_at) if finished_at else None,
    }
    if message:
        terminated["message"] = message
    if signal:
        terminated["signal"] = signal
    if container_id:
        terminated["containerID"] = container_id
    return {"terminated": terminated}


def container_status(
    name: str,
    image: str,
    state: dict[str, Any],
    *,
    container_id: str = "",
    image_id: str = "",
    ready: bool = False,
    started: bool = False,
    restart_count: int = 0,
    last_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``containerStatuses[]`` entry with the fields in the kubelet's order.  `container_id` is
    the runtime's id with its scheme (``process://<id>``); ``""`` before the container exists."""
    status: dict[str, Any] = {
        "name": name,
        "state": state,
        "lastState": last_state or {},
        "ready": ready,
        "restartCount": restart_count,
        "image": image,
        "imageID": image_id,
    }
    if container_id:
        status["containerID"] = container_id
    status["started"] = started
    return status


def go_list(names: Iterable[str]) -> str:
    """Go's ``%s`` for a ``[]string``: ``[a b c]``."""
    return "[" + " ".join(names) + "]"


# -- phase ----------------------------------------------------------------------------------------


def _by_name(statuses: Sequence[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {s.get("name", ""): s for s in statuses or ()}


def _last_terminated(status: dict[str, Any]) -> dict[str, Any] | None:
    return (status.get("lastState") or {}).get("terminated")


def _any_regular_started(spec: dict[str, Any], statuses: Sequence[dict[str, Any]] | None) -> bool:
    known = _by_name(statuses)
    for container in spec.get("containers") or ():
        state = (known.get(container.get("name", "")) or {}).get("state") or {}
        if "running" in state or "terminated" in state:
            return True
        if _last_terminated(known.get(container.get("name", "")) or {}) is not None:
            return True
    return False


def pod_phase(
    spec: dict[str, Any],
    init_statuses: Sequence[dict[str, Any]] | None,
    statuses: Sequence[dict[str, Any]] | None,
    *,
    terminal: bool = False,
) -> str:
    """Upstream's ``getPhase`` (without sidecar init containers; see the module docstring)."""
    policy = spec.get("restartPolicy") or "Always"
    pending_init = failed_init = 0
    known_init = _by_name(init_statuses)
    for container in spec.get("initContainers") or ():
        status = known_init.get(container.get("name", ""))
        state = (status or {}).get("state") or {}
        if status is None or "running" in state:
            pending_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode") != 0:
                failed_init += 1
        elif "waiting" in state:
            last = _last_terminated(status)
            if last is not None:
                if last.get("exitCode") != 0:
                    failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1

    unknown = running = waiting = stopped = succeeded = 0
    known = _by_name(statuses)
    for container in spec.get("containers") or ():
        status = known.get(container.get("name", ""))
        state = (status or {}).get("state") or {}
        if status is None:
            unknown += 1
        elif "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in state:
            if _last_terminated(status) is not None:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1

    if failed_init > 0 and policy == "Never":
        return FAILED
    if (pending_init > 0 and not _any_regular_started(spec, statuses)) or waiting > 0:
        return PENDING
    if running > 0 and unknown == 0:
        return RUNNING
    if running == 0 and stopped > 0 and unknown == 0:
        if terminal:
            return SUCCEEDED if stopped == succeeded else FAILED
        if policy == "Always":
            return RUNNING
        if stopped == succeeded:
            return SUCCEEDED
        if policy == "Never":
            return FAILED
        return RUNNING
    return PENDING


# -- conditions -----------------------------------------------------------------------------------


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    condition: dict[str, Any] = {"type": kind, "status": "True" if ok else "False"}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _initialized(
    spec: dict[str, Any],
    phase: str,
    init_statuses: Sequence[dict[str, Any]] | None,
    statuses: Sequence[dict[str, Any]] | None,
) -> dict[str, Any]:
    inits = spec.get("initContainers") or ()
    if not inits:
        return _condition(INITIALIZED, True)
    known = _by_name(init_statuses)
    unknown: list[str] = []
    incomplete: list[str] = []
    for container in inits:
        name = container.get("name", "")
        status = known.get(name)
        if status is None:
            unknown.append(name)
        elif ((status.get("state") or {}).get("terminated") or {}).get("exitCode") != 0:
            incomplete.append(name)
    if phase == SUCCEEDED and not unknown:
        return _condition(INITIALIZED, True, POD_COMPLETED)
    if _any_regular_started(spec, statuses):
        return _condition(INITIALIZED, True)
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {go_list(unknown)}")
    if incomplete:
        messages.append(f"containers with incomplete status: {go_list(incomplete)}")
    if messages:
        return _condition(INITIALIZED, False, CONTAINERS_NOT_INITIALIZED, ", ".join(messages))
    return _condition(INITIALIZED, True)


def _containers_ready(spec: dict[str, Any], phase: str, statuses: Sequence[dict[str, Any]] | None) -> dict[str, Any]:
    known = _by_name(statuses)
    unknown: list[str] = []
    unready: list[str] = []
    for container in spec.get("containers") or ():
        name = container.get("name", "")
        status = known.get(name)
        if status is None:
            unknown.append(name)
        elif not status.get("ready"):
            unready.append(name)
    if phase == SUCCEEDED and not unknown:
        return _condition(CONTAINERS_READY, False, POD_COMPLETED)
    if phase == FAILED:
        return _condition(CONTAINERS_READY, False, POD_FAILED)
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {go_list(unknown)}")
    if unready:
        messages.append(f"containers with unready status: {go_list(unready)}")
    if messages:
        return _condition(CONTAINERS_READY, False, CONTAINERS_NOT_READY, ", ".join(messages))
    return _condition(CONTAINERS_READY, True)


def _ready(spec: dict[str, Any], containers_ready: dict[str, Any], others: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if containers_ready["status"] != "True":
        return {**containers_ready, "type": READY}
    present = {c.get("type"): c for c in others}
    messages = []
    for gate in spec.get("readinessGates") or ():
        kind = gate.get("conditionType", "")
        found = present.get(kind)
        if found is None:
            messages.append(f'corresponding condition of pod readiness gate "{kind}" does not exist.')
        elif found.get("status") != "True":
            messages.append(f'the status of pod readiness gate "{kind}" is not "True", but {found.get("status")}')
    if messages:
        return _condition(READY, False, READINESS_GATES_NOT_READY, ", ".join(messages))
    return _condition(READY, True)


def pod_conditions(
    pod: dict[str, Any],
    phase: str,
    init_statuses: Sequence[dict[str, Any]] | None,
    statuses: Sequence[dict[str, Any]] | None,
    *,
    sandbox_ready: bool,
    now: datetime,
) -> list[dict[str, Any]]:
    """The conditions the agent owns, computed, then the others kept from ``pod.status``."""
    spec = pod.get("spec") or {}
    old = list((pod.get("status") or {}).get("conditions") or ())
    others = [c for c in old if c.get("type") not in OWNED_CONDITIONS]
    containers_ready = _containers_ready(spec, phase, statuses)
    owned = [
        _condition(READY_TO_START, sandbox_ready),
        _initialized(spec, phase, init_statuses, statuses),
        _ready(spec, containers_ready, others),
        containers_ready,
    ]
    previous = {c.get("type"): c for c in old}
    stamp = rfc3339(now)
    result = []
    for condition in owned:
        before = previous.get(condition["type"])
        moved = before is None or before.get("status") != condition["status"] or not before.get("lastTransitionTime")
        result.append(
            {
                "type": condition["type"],
                "status": condition["status"],
                "lastProbeTime": None,
                "lastTransitionTime": stamp if moved else before["lastTransitionTime"],  # type: ignore[index]
                **{k: condition[k] for k in ("reason", "message") if k in condition},
            }
        )
    return result + others


# -- the whole status -----------------------------------------------------------------------------


def pod_status(
    pod: dict[str, Any],
    *,
    init_statuses: Sequence[dict[str, Any]],
    statuses: Sequence[dict[str, Any]],
    sandbox_ready: bool,
    node_ip: str,
    now: datetime,
    terminal: bool = False,
    start_time: datetime | None = None,
    pod_ips: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The status to write for `pod`: phase, conditions, IPs, startTime and container statuses.

    Fields the agent does not own (qosClass, nominatedNodeName, resize, ...) are kept from the API
    object.  `pod_ips` are the pod's addresses, primary first (``None``: the node's IP, a pod on the
    host network); while empty (the network is not set up yet) podIP/podIPs keep what the API has.
    `start_time` is when the agent accepted the pod; an existing ``status.startTime`` wins.
    """
    old = pod.get("status") or {}
    spec = pod.get("spec") or {}
    phase = pod_phase(spec, init_statuses, statuses, terminal=terminal)
    if old.get("phase") in TERMINAL_PHASES:
        phase = old["phase"]
    status = {k: v for k, v in old.items() if k not in ("conditions", "containerStatuses", "initContainerStatuses")}
    status["phase"] = phase
    status["conditions"] = pod_conditions(pod, phase, init_statuses, statuses, sandbox_ready=sandbox_ready, now=now)
    status["hostIP"] = node_ip
    status["hostIPs"] = [{"ip": node_ip}]
    ips = [node_ip] if pod_ips is None else list(pod_ips)
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    if not status.get("startTime"):
        status["startTime"] = rfc3339(start_time or now)
    if spec.get("initContainers"):
        status["initContainerStatuses"] = list(init_statuses)
    status["containerStatuses"] = list(statuses)
    return status
