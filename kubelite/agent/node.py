"""The node agent's own Node object: registration, the Lease heartbeat and status reports.

As the kubelet does it (with the NodeLease feature, always on since 1.17):

* `NodeStatusManager.register` creates the Node with its labels, annotations and full status.  When the
  Node already exists (a restart, or a Node created by hand) it merges our labels, annotations and
  status into it and leaves the rest alone: ``spec.unschedulable`` and ``spec.taints`` set by a user
  (``kubectl cordon``) survive a restart.  Registration retries with back-off until it succeeds.
* `NodeStatusManager.run` renews the Lease ``kube-node-lease/<node>`` every `LEASE_RENEW_INTERVAL`
  (a quarter of `LEASE_DURATION_SECONDS`), owned by the Node so it goes when the Node goes; a failed
  renewal is retried after 200 ms, doubling up to 7 s.  This is the cheap heartbeat the node lifecycle
  controller watches.
* Every `STATUS_UPDATE_FREQUENCY` it computes the status from the Node as the API has it and posts it
  when it differs in anything but ``lastHeartbeatTime`` (e.g. a controller set Ready to Unknown), or
  when `STATUS_REPORT_FREQUENCY` has passed since the last report.
* A deleted Node is not recreated while the agent runs (as the kubelet: it registers once per start);
  status reports log the error until the agent restarts.

The pure builders (`node_labels`, `node_status`, `lease_for`, `status_changed`) hold the object shapes and
are tested table-driven; the class only moves them through the `Client`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kubelite.agent.machine import KUBELET_VERSION, Machine, kubelite_version, read_machine
from kubelite.client.clock import Clock, RealClock
from kubelite.client.errors import TransportError
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, rfc3339, rfc3339_micro

log = logging.getLogger(__name__)

NODES = builtin("", "nodes")
LEASES = builtin("coordination.k8s.io", "leases")
NODE_LEASE_NAMESPACE = "kube-node-lease"

LEASE_DURATION_SECONDS = 40
LEASE_RENEW_INTERVAL = LEASE_DURATION_SECONDS / 4  # the kubelet's renewIntervalFraction 0.25
STATUS_UPDATE_FREQUENCY = 10.0  # how often the status is computed and compared
STATUS_REPORT_FREQUENCY = 60.0  # an unchanged status is still posted this often
RETRY_INITIAL = 0.2
RETRY_MAX = 7.0
STATUS_UPDATE_RETRIES = 5  # the kubelet's nodeStatusUpdateRetry

MAX_PODS = 110  # the kubelet's default --max-pods
ISOLATION_ANNOTATION = "kubelite.io/container-isolation"
# "bridge" (each pod in its own network namespace) or "host: <why>" (pods share the node's network)
POD_NETWORK_ANNOTATION = "kubelite.io/pod-network"
TTL_ANNOTATION = "node.alpha.kubernetes.io/ttl"
ATTACH_DETACH_ANNOTATION = "volumes.kubernetes.io/controller-managed-attach-detach"

# (type, reason, message) of the conditions the kubelet reports, in its order; all healthy
_PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)
READY_REASON = "KubeletReady"
READY_MESSAGE = "kubelet is posting ready status"


# ---------------------------------------------------------------------------------------------------
# pure builders


def node_labels(node_name: str, architecture: str, labels: dict[str, str]) -> dict[str, str]:
    """The kubelet's default labels, then the caller's (which win on a clash)."""
    return {
        "beta.kubernetes.io/arch": architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": architecture,
        "kubernetes.io/hostname": node_name,
        "kubernetes.io/os": "linux",
        **labels,
    }


def node_annotations(isolation: str | None, network: NetworkReport | None = None) -> dict[str, str]:
    """``isolation`` None means containers are isolated; otherwise it is the reason they are not.
    `network` (once known) adds the pod network mode."""
    annotations = {
        TTL_ANNOTATION: "0",
        ATTACH_DETACH_ANNOTATION: "true",
        ISOLATION_ANNOTATION: "isolated" if isolation is None else f"none: {isolation}",
    }
    if network is not None:
        annotations[POD_NETWORK_ANNOTATION] = network.annotation
    return annotations


@dataclass(frozen=True, slots=True)
class NetworkReport:
    """How this node gives pods a network: `mode` ``"bridge"`` or ``"host"``; `note` why pods cannot
    have their own network here (host mode), shown in the Ready condition's message."""

    mode: str
    note: str | None = None

    @property
    def shared(self) -> bool:
        return self.mode == "host"

    @property
    def annotation(self) -> str:
        return f"host: {self.note}" if self.shared and self.note else self.mode

    @property
    def ready_suffix(self) -> str:
        if not self.shared:
            return ""
        why = f" ({self.note})" if self.note else ""
        return (
            f"; pods share the node's network{why}: their ports collide and they reach each other on the node's address"
        )


def capacity_of(machine: Machine, max_pods: int = MAX_PODS) -> dict[str, str]:
    """``status.capacity`` (and ``allocatable``: nothing is reserved, since nothing would enforce it)."""
    return {
        "cpu": str(machine.cpus),
        "ephemeral-storage": f"{machine.ephemeral_storage_kib}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{machine.memory_kib}Ki",
        "pods": str(max_pods),
    }


def node_status(
    machine: Machine,
    *,
    node_name: str,
    node_ip: str,
    kubelet_port: int,
    isolation: str | None,
    now: datetime,
    previous: dict[str, Any] | None = None,
    max_pods: int = MAX_PODS,
    network: NetworkReport | None = None,
) -> dict[str, Any]:
    """The status this agent reports, merged over `previous` (the status the API has, or None).

    Fields others own (``images``, ``volumesInUse``, conditions of other types) are kept.  A condition
    keeps its ``lastTransitionTime`` while its status stays the same; ``lastHeartbeatTime`` is `now`.
    """
    status = deep_copy(previous) if previous else {}
    old_conditions = {c.get("type"): c for c in status.get("conditions") or () if isinstance(c, dict)}
    stamp = rfc3339(now)
    ready_message = READY_MESSAGE if isolation is None else f"{READY_MESSAGE}; containers are not isolated: {isolation}"
    if network is not None:
        ready_message += network.ready_suffix
    ours = [*[(t, "False", r, m) for t, r, m in _PRESSURE_CONDITIONS], ("Ready", "True", READY_REASON, ready_message)]
    conditions = []
    for kind, value, reason, message in ours:
        old = old_conditions.pop(kind, None)
        transition = old.get("lastTransitionTime") if old and old.get("status") == value else None
        conditions.append(
            {
                "type": kind,
                "status": value,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": transition or stamp,
                "reason": reason,
                "message": message,
            }
        )
    conditions.extend(old_conditions.values())
    capacity = capacity_of(machine, max_pods)
    version = KUBELET_VERSION
    status.update(
        {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": node_ip}, {"type": "Hostname", "address": node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "nodeInfo": {
                "machineID": machine.machine_id,
                "systemUUID": machine.system_uuid,
                "bootID": machine.boot_id,
                "kernelVersion": machine.kernel_version,
                "osImage": machine.os_image,
                "containerRuntimeVersion": f"process://{kubelite_version()}",
                "kubeletVersion": version,
                "kubeProxyVersion": version,
                "operatingSystem": machine.operating_system,
                "architecture": machine.architecture,
            },
        }
    )
    return status


def status_changed(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether `new` differs from `old` in anything but the conditions' ``lastHeartbeatTime``."""
    return _without_heartbeats(old or {}) != _without_heartbeats(new)


def lease_for(
    node_name: str, node_uid: str | None, now: datetime, lease: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`lease` (or a new Lease) renewed at `now`, held by the node and owned by it when its uid is known."""
    lease = deep_copy(lease) if lease else {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease"}
    meta = lease.setdefault("metadata", {})
    meta["name"] = node_name
    meta["namespace"] = NODE_LEASE_NAMESPACE
    if node_uid:
        owners = [o for o in meta.get("ownerReferences") or () if o.get("kind") != "Node"]
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}, *owners]
    spec = lease.setdefault("spec", {})
    spec["holderIdentity"] = node_name
    spec["leaseDurationSeconds"] = LEASE_DURATION_SECONDS
    spec["renewTime"] = rfc3339_micro(now)
    return lease


def _without_heartbeats(status: dict[str, Any]) -> dict[str, Any]:
    copy = dict(status)
    copy["conditions"] = [
        {k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status.get("conditions") or ()
    ]
    return copy


# ---------------------------------------------------------------------------------------------------
# the shell


class NodeStatusManager:
    """Keeps this agent's Node and Lease current.  `register()` once, then `run()` until cancelled.

    ``isolation`` None means containers run isolated; a string is the reason they are not, shown on the
    Node (annotation and Ready message) so users know what they get.
    """

    def __init__(
        self,
        client: Client,
        *,
        node_name: str,
        node_ip: str,
        kubelet_port: int,
        labels: dict[str, str],
        isolation: str | None,
        data_dir: Path,
        clock: Clock | None = None,
        machine: Machine | None = None,
        max_pods: int = MAX_PODS,
    ) -> None:
        """`machine` overrides the facts read from this machine (tests, simulated nodes)."""
        self.client = client
        self.node_name = node_name
        self.node_ip = node_ip
        self.kubelet_port = kubelet_port
        self.labels = dict(labels)
        self.isolation = isolation
        self.data_dir = Path(data_dir)
        self.clock: Clock = clock or RealClock()
        self._machine = machine
        self.max_pods = max_pods
        self._node_uid: str | None = None
        self._lease: dict[str, Any] | None = None
        self._last_report: float | None = None
        self.network: NetworkReport | None = None  # set once the pod network is started

    async def report_network(self, network: NetworkReport) -> None:
        """Record the pod network mode (annotation and Ready message) and post it now."""
        self.network = network
        try:
            node = await self.client.get(NODES, self.node_name)
            meta = node.setdefault("metadata", {})
            annotations = {**(meta.get("annotations") or {}), POD_NETWORK_ANNOTATION: network.annotation}
            if annotations != meta.get("annotations"):
                meta["annotations"] = annotations
                await self.client.update(NODES, node)
            await self.update_status()
        except (ApiError, TransportError) as exc:  # the status loop posts the Ready message later
            log.warning("reporting the pod network failed", extra={"node": self.node_name, "error": str(exc)})

    async def register(self) -> dict[str, Any]:
        """Create or merge the Node; retried with back-off until it works.  Returns the Node as stored."""
        if self._machine is None:
            self._machine = await asyncio.to_thread(read_machine, self.data_dir)
        delay = RETRY_INITIAL
        while True:
            try:
                node = await self._register_once()
                self._node_uid = node["metadata"].get("uid")
                self._last_report = self.clock.now()
                log.info("node registered", extra={"node": self.node_name})
                return node
            except (ApiError, TransportError) as exc:
                log.warning("node registration failed", extra={"node": self.node_name, "error": str(exc)})
            await self.clock.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def run(self) -> None:
        """Renew the Lease and report status until cancelled; `register()` must have succeeded."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._lease_loop())
            group.create_task(self._status_loop())

    # -- registration -----------------------------------------------------------------------------

    def _desired_metadata(self) -> tuple[dict[str, str], dict[str, str]]:
        assert self._machine is not None
        annotations = node_annotations(self.isolation, self.network)
        return node_labels(self.node_name, self._machine.architecture, self.labels), annotations

    def _status(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        assert self._machine is not None
        return node_status(
            self._machine,
            node_name=self.node_name,
            node_ip=self.node_ip,
            kubelet_port=self.kubelet_port,
            isolation=self.isolation,
            now=self.clock.utcnow(),
            previous=previous,
            max_pods=self.max_pods,
            network=self.network,
        )

    async def _register_once(self) -> dict[str, Any]:
        labels, annotations = self._desired_metadata()
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": labels, "annotations": annotations},
            "spec": {},
            "status": self._status(None),
        }
        try:
            return await self.client.create(NODES, node)
        except ApiError as exc:
            if exc.code != 409:
                raise
        existing = await self.client.get(NODES, self.node_name)
        meta = existing.setdefault("metadata", {})
        merged_labels = {**(meta.get("labels") or {}), **labels}
        merged_annotations = {**(meta.get("annotations") or {}), **annotations}
        if merged_labels != meta.get("labels") or merged_annotations != meta.get("annotations"):
            meta["labels"], meta["annotations"] = merged_labels, merged_annotations
            existing = await self.client.update(NODES, existing)  # resourceVersion set: compare-and-swap
        existing["status"] = self._status(existing.get("status"))
        return await self.client.update(NODES, existing, subresource="status")

    # -- lease ------------------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        delay = RETRY_INITIAL
        while True:
            try:
                await self.renew_lease()
                delay = RETRY_INITIAL
                await self.clock.sleep(LEASE_RENEW_INTERVAL)
            except (ApiError, TransportError) as exc:
                log.warning("node lease renewal failed", extra={"node": self.node_name, "error": str(exc)})
                await self.clock.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def renew_lease(self) -> dict[str, Any]:
        """One renewal: update the Lease we last saw (or read it; create it when missing)."""
        now = self.clock.utcnow()
        if self._lease is None:
            try:
                self._lease = await self.client.get(LEASES, self.node_name, NODE_LEASE_NAMESPACE)
            except ApiError as exc:
                if exc.code != 404:
                    raise
                lease = lease_for(self.node_name, self._node_uid, now)
                self._lease = await self.client.create(LEASES, lease, NODE_LEASE_NAMESPACE)
                return self._lease
        try:
            self._lease = await self.client.update(
                LEASES, lease_for(self.node_name, self._node_uid, now, self._lease), NODE_LEASE_NAMESPACE
            )
        except ApiError:
            self._lease = None  # conflict or gone: read it again next time
            raise
        return self._lease

    # -- status -----------------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        while True:
            await self.clock.sleep(STATUS_UPDATE_FREQUENCY)
            try:
                await self.update_status()
            except (ApiError, TransportError) as exc:
                log.warning("node status update failed", extra={"node": self.node_name, "error": str(exc)})

    async def update_status(self) -> bool:
        """Post the status if it changed or the report is due; True when it was posted.

        A conflicting write (someone changed the Node meanwhile) is retried on a fresh read.
        """
        for attempt in range(STATUS_UPDATE_RETRIES):
            node = await self.client.get(NODES, self.node_name)
            status = self._status(node.get("status"))
            due = self._last_report is None or self.clock.now() - self._last_report >= STATUS_REPORT_FREQUENCY
            if not due and not status_changed(node.get("status"), status):
                return False
            node["status"] = status
            try:
                await self.client.update(NODES, node, subresource="status")
            except ApiError as exc:
                if exc.code != 409 or attempt == STATUS_UPDATE_RETRIES - 1:
                    raise
                continue
            self._last_report = self.clock.now()
            return True
        return False


__all__ = [
    "LEASE_DURATION_SECONDS",
    "LEASE_RENEW_INTERVAL",
    "POD_NETWORK_ANNOTATION",
    "STATUS_REPORT_FREQUENCY",
    "STATUS_UPDATE_FREQUENCY",
    "NetworkReport",
    "NodeStatusManager",
    "lease_for",
    "node_annotations",
    "node_labels",
    "node_status",
    "status_changed",
]
