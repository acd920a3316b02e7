"""One container of a pod as the pod worker tracks it (`Slot`), and the runtime config it asks for.

A slot spans the container's attempts: the runtime sees each attempt as a new container (its
``attempt`` is the restart count), the slot remembers the current one and the one before it (for
``lastState`` and ``kubectl logs --previous``).  Labels and annotations follow the kubelet's
(``io.kubernetes.*``), so a restarted agent maps runtime containers back to pods and specs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from kubelite.agent.pods import status as podstatus
from kubelite.agent.pods.backoff import CrashLoopBackOff
from kubelite.agent.runtime.interface import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    Mount,
    PodSandboxStatus,
    Resources,
    Runtime,
    SandboxState,
)
from kubelite.machinery.quantity import QuantityError, quantity_from_json

POD_UID = "io.kubernetes.pod.uid"
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_HASH = "io.kubernetes.container.hash"
CONTAINER_KIND = "io.kubernetes.container.kind"  # "init" or "regular"

__all__ = [
    "CONTAINER_HASH",
    "CONTAINER_KIND",
    "CONTAINER_NAME",
    "POD_NAME",
    "POD_NAMESPACE",
    "POD_UID",
    "Slot",
    "container_config",
    "container_resources",
    "pod_labels",
    "restore",
    "spec_hash",
]


def pod_labels(pod: dict[str, Any]) -> dict[str, str]:
    meta = pod.get("metadata") or {}
    return {
        POD_UID: str(meta.get("uid", "")),
        POD_NAME: str(meta.get("name", "")),
        POD_NAMESPACE: str(meta.get("namespace", "")),
    }


def spec_hash(container: dict[str, Any]) -> str:
    """Stable digest of a container's spec: a changed spec (a new image) restarts the container."""
    return hashlib.sha256(json.dumps(container, sort_keys=True).encode()).hexdigest()[:16]


def _quantity(value: Any, *, milli: bool) -> int | None:
    if value is None:
        return None
    try:
        parsed = quantity_from_json(value)
    except QuantityError:
        return None
    return parsed.milli_value() if milli else parsed.value()


def container_resources(container: dict[str, Any]) -> Resources:
    """requests/limits → runtime limits: CPU in millicores, memory in bytes (as the kubelet converts)."""
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    return Resources(
        cpu_request_millis=_quantity(requests.get("cpu", limits.get("cpu")), milli=True),
        cpu_limit_millis=_quantity(limits.get("cpu"), milli=True),
        memory_limit_bytes=_quantity(limits.get("memory"), milli=False),
    )


def container_config(
    pod: dict[str, Any],
    container: dict[str, Any],
    *,
    kind: str,
    command: list[str],
    env: dict[str, str],
    attempt: int,
    mounts: tuple[Mount, ...] = (),
) -> ContainerConfig:
    """The runtime config of one attempt; `mounts` are the pod's (hosts, resolv.conf) for every container."""
    return ContainerConfig(
        name=container["name"],
        command=command,
        image=str(container.get("image") or ""),
        env=env,
        working_dir=str(container.get("workingDir") or ""),
        tty=bool(container.get("tty")),
        stdin=bool(container.get("stdin")),
        resources=container_resources(container),
        attempt=attempt,
        labels={**pod_labels(pod), CONTAINER_NAME: container["name"]},
        annotations={CONTAINER_HASH: spec_hash(container), CONTAINER_KIND: kind},
        mounts=mounts,
    )


@dataclass(eq=False)
class Slot:
    """What the worker knows about one spec container across its attempts.

    `current` is the newest attempt's last known runtime status (None before the first create);
    `exited_at` the clock time its exit was observed (for back-off).  `waiting` overrides the state
    reported while no attempt runs (CrashLoopBackOff, CreateContainerConfigError, ...).
    """

    spec: dict[str, Any]
    kind: str  # "init" or "regular"
    backoff: CrashLoopBackOff
    current: ContainerStatus | None = None
    previous: ContainerStatus | None = None
    attempts: int = 0
    exited_at: float | None = None
    waiting: tuple[str, str] | None = None
    ready: bool = False
    started: bool = False
    retry_at: float | None = None  # earliest clock time to try again after a config/create error
    replace: bool = False  # the spec changed under a running attempt: the next one starts without back-off
    probers: list[Any] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def field_path(self) -> str:
        return f"spec.{'initContainers' if self.kind == 'init' else 'containers'}{{{self.name}}}"

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.state in (ContainerState.RUNNING, ContainerState.CREATED)

    @property
    def exited(self) -> bool:
        return self.current is not None and self.current.state == ContainerState.EXITED

    @property
    def succeeded(self) -> bool:
        return self.exited and self.current is not None and self.current.exit_code == 0

    @property
    def restart_count(self) -> int:
        return max(self.attempts - 1, 0)

    def wants_restart(self, policy: str) -> bool:
        """Whether the exited current attempt is to be followed by another (restartPolicy)."""
        if not self.exited or self.current is None:
            return False
        if self.kind == "init":
            return policy != "Never" and self.current.exit_code != 0
        return policy == "Always" or (policy == "OnFailure" and self.current.exit_code != 0)

    def api_status(self, *, default_waiting: str) -> dict[str, Any]:
        """This slot as a ``containerStatuses[]`` entry."""
        image = str(self.spec.get("image") or "")
        current = self.current
        if current is None:
            reason, message = self.waiting or (default_waiting, "")
            return podstatus.container_status(
                self.name, image, podstatus.waiting_state(reason, message), restart_count=self.restart_count
            )
        container_id = podstatus.CONTAINER_ID_SCHEME + current.id
        last = _terminated(self.previous)
        if current.state == ContainerState.EXITED and self.waiting is not None:
            # the exited attempt becomes lastState while the next one waits (back-off, config error)
            state = podstatus.waiting_state(*self.waiting)
            last = _terminated(current)
        elif current.state == ContainerState.EXITED:
            state = _terminated(current)
        elif current.state == ContainerState.RUNNING:
            state = podstatus.running_state(current.started_at)
        else:
            state = podstatus.waiting_state(self.waiting[0] if self.waiting else default_waiting)
        running = current.state == ContainerState.RUNNING
        return podstatus.container_status(
            self.name,
            image,
            state,
            container_id=container_id,
            image_id=image,
            ready=running and self.ready,
            started=running and self.started,
            restart_count=self.restart_count,
            last_state=last,
        )


def _terminated(status: ContainerStatus | None) -> dict[str, Any]:
    if status is None or status.state != ContainerState.EXITED:
        return {}
    return podstatus.terminated_state(
        exit_code=status.exit_code if status.exit_code is not None else 0,
        reason=status.reason or ("Completed" if status.exit_code == 0 else "Error"),
        message=status.message,
        started_at=status.started_at,
        finished_at=status.finished_at,
        container_id=podstatus.CONTAINER_ID_SCHEME + status.id,
    )


async def restore(runtime: Runtime, uid: str, slots: list[Slot], *, keep_stopped: bool) -> PodSandboxStatus | None:
    """Map what the runtime has for pod `uid` back onto `slots` (an agent restart) and return the sandbox
    to keep: the newest ready one (with `keep_stopped`, the newest of any state: a finished pod keeps
    its exited containers).  Other sandboxes of the pod are removed; per container name the newest
    attempt becomes `current`, the one before `previous`, older ones are removed.  Attempt numbers
    carry on from every container seen, kept or not."""
    mine = sorted(
        (s for s in await runtime.list_pod_sandboxes() if s.labels.get(POD_UID) == uid), key=lambda s: s.created_at
    )
    ready = [s for s in mine if s.state == SandboxState.READY]
    keep = ready[-1] if ready else (mine[-1] if mine and keep_stopped else None)
    by_name = {slot.name: slot for slot in slots}
    for sandbox in mine:
        containers = sorted(await runtime.list_containers(sandbox_id=sandbox.id), key=lambda c: c.attempt)
        for container in containers:
            slot = by_name.get(container.labels.get(CONTAINER_NAME, container.name))
            if slot is not None:
                slot.attempts = max(slot.attempts, container.attempt + 1)
        if keep is None or sandbox.id != keep.id:
            await runtime.remove_pod_sandbox(sandbox.id)
            continue
        for container in containers:
            slot = by_name.get(container.labels.get(CONTAINER_NAME, container.name))
            if slot is None:
                await runtime.remove_container(container.id)
                continue
            if slot.previous is not None:
                await runtime.remove_container(slot.previous.id)
            slot.previous, slot.current = slot.current, container
    return keep
