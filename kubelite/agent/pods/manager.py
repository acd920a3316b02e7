"""`PodManager`: the node agent's pods — one `PodWorker` per pod bound to this node.

Contracts:

* Inputs are informers: pods with ``spec.nodeName=<node>`` and every Service (for the service
  environment variables).  Handlers only hand the newest object to the pod's worker (keyed by uid, so
  a pod re-created under the same name gets a fresh worker) and start workers; all work happens in
  the workers, inside the manager's TaskGroup.
* Start-up reconciles with the runtime before any worker starts: a sandbox whose pod uid is still
  bound here is left for that pod's worker to adopt (running containers keep running, same ids); every
  other sandbox is stopped and removed, then the runtime's orphans are cleaned up.
* Admission: a new pod that asks for a host port an admitted, unfinished pod holds is rejected
  (`admission`; in host-network mode every containerPort is a host port).  Decided synchronously in
  arrival order, so two pods arriving together never both get the port.
* Pod networks: with `NodeNetworking`, each worker attaches its pod (`networking`).  Once the node's
  network is ready, networks and per-pod files of pods no longer bound here are removed.
* A worker that finished (its pod is gone) is forgotten; late events for its uid are ignored.
* `shutdown(stop_pods=True)` (after `run` was cancelled) stops every container: processes never
  outlive the agent.  With ``stop_pods=False`` they keep running for the next agent to adopt.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import shutil
from pathlib import Path
from typing import Any

from kubelite.agent.network.interface import NetworkError
from kubelite.agent.pods.admission import admit
from kubelite.agent.pods.containers import POD_UID, container_resources
from kubelite.agent.pods.networking import NodeNetworking
from kubelite.agent.pods.status import TERMINAL_PHASES
from kubelite.agent.pods.worker import VOLUME_REFRESH_SECONDS, EventSink, PodWorker, grace_seconds
from kubelite.agent.runtime.interface import ContainerRuntimeError, Runtime
from kubelite.agent.streaming.portforward import open_connection_in_netns
from kubelite.agent.volumes.manager import cleanup_orphans as cleanup_volume_orphans
from kubelite.client.clock import Clock, RealClock
from kubelite.client.informer import Informer
from kubelite.client.interface import Client, builtin
from kubelite.machinery.quantity import quantity_from_json

log = logging.getLogger(__name__)

PODS = builtin("", "pods")
SERVICES = builtin("", "services")
FINISHED_MEMORY = 4096  # uids of finished pods remembered, to ignore their late events
SHUTDOWN_GRACE_SECONDS = 5.0  # at most this long per pod for SIGTERM when the agent stops

__all__ = ["PodManager"]


class PodManager:
    """Runs this node's pods (module docstring); implements the streaming layer's `PodTarget`."""

    def __init__(
        self,
        client: Client,
        runtime: Runtime,
        recorder: EventSink,
        *,
        node_name: str,
        node_ip: str,
        log_root: Path,
        clock: Clock | None = None,
        networking: NodeNetworking | None = None,
        sync_frequency: float = VOLUME_REFRESH_SECONDS,
    ) -> None:
        """`networking` None: pods run on the node's network and get no hosts/resolv.conf files.
        `sync_frequency`: how often mounted configMaps, secrets and downward API files are refreshed."""
        self.client = client
        self.runtime = runtime
        self.recorder = recorder
        self.node_name = node_name
        self.node_ip = node_ip
        self.log_root = Path(log_root)
        self.clock = clock or RealClock()
        self.networking = networking
        self.sync_frequency = sync_frequency
        self.pods = Informer(client, PODS, field_selector=f"spec.nodeName={node_name}", clock=self.clock)
        self.services = Informer(client, SERVICES, clock=self.clock)
        self._workers: dict[str, PodWorker] = {}
        self._finished: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._group: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()

    # -- running ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled.  Workers are cancelled with it; their containers keep running."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.pods.run(), name="pods-informer")
                group.create_task(self.services.run(), name="services-informer")
                await self.pods.wait_for_sync()
                await self.services.wait_for_sync()
                await self._reconcile_runtime()
                await self._cleanup_volume_orphans()
                self._group = group
                self.pods.add_handler(self._on_pod, lambda _old, new: self._on_pod(new), self._on_pod_deleted)
                cleanup = getattr(self.runtime, "cleanup_orphans", None)
                if cleanup is not None:
                    try:
                        await cleanup()
                    except (ContainerRuntimeError, OSError):
                        log.exception("cleaning up runtime orphans failed")
                if self.networking is not None:
                    group.create_task(self._cleanup_networks(self.networking), name="network-orphans")
                self._ready.set()
        finally:
            self._group = None

    async def wait_ready(self) -> None:
        """Until start-up reconciliation is done and every bound pod has a worker."""
        await self._ready.wait()

    async def _reconcile_runtime(self) -> None:
        bound = {str((p.get("metadata") or {}).get("uid")) for p in self.pods.list()}
        for sandbox in await self.runtime.list_pod_sandboxes():
            if sandbox.labels.get(POD_UID, sandbox.uid) in bound:
                continue
            log.info("removing the sandbox of a pod no longer bound here", extra={"sandbox": sandbox.id})
            try:
                await self.runtime.remove_pod_sandbox(sandbox.id)
            except ContainerRuntimeError:
                log.exception("removing a stale sandbox failed", extra={"sandbox": sandbox.id})

    async def _cleanup_networks(self, networking: NodeNetworking) -> None:
        """Once the node's network is up: tear down pod networks and files of pods not bound here."""
        await networking.ready.wait()
        known = {str((p.get("metadata") or {}).get("uid")) for p in self.pods.list()} | set(self._workers)
        try:
            removed = await networking.network.cleanup_orphans(known)
        except NetworkError:
            log.exception("cleaning up orphan pod networks failed")
        else:
            if removed:
                log.info("orphan pod networks removed", extra={"count": len(removed)})
        await asyncio.to_thread(_remove_unknown_dirs, networking.files_root, known)

    def _admitted_pods(self) -> list[dict[str, Any]]:
        return [w.pod for w in self._workers.values() if not w.terminal and w.rejection is None]

    def _on_pod(self, pod: dict[str, Any]) -> None:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        if not uid or uid in self._finished:
            return
        worker = self._workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        if self._group is None:
            return
        phase = (pod.get("status") or {}).get("phase")
        rejection = None
        if phase not in TERMINAL_PHASES and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            node_network = self.networking is None or self.networking.pods_share_node_network
            rejection = admit(pod, self._admitted_pods(), node_network=node_network)
        worker = PodWorker(
            pod,
            client=self.client,
            runtime=self.runtime,
            recorder=self.recorder,
            node_name=self.node_name,
            node_ip=self.node_ip,
            log_root=self.log_root,
            clock=self.clock,
            services=self._services_for,
            networking=self.networking,
            rejection=rejection,
            volume_refresh_seconds=self.sync_frequency,
        )
        self._workers[uid] = worker
        self._group.create_task(self._supervise(worker), name=f"pod-{uid}")

    def _on_pod_deleted(self, pod: dict[str, Any]) -> None:
        worker = self._workers.get(str((pod.get("metadata") or {}).get("uid") or ""))
        if worker is not None:
            worker.api_deleted()

    async def _supervise(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        except Exception:  # supervision point: one pod's bug must not stop the others
            log.exception("pod worker failed", extra={"pod": f"{worker.namespace}/{worker.name}"})
            self._workers.pop(worker.uid, None)
            return
        self._workers.pop(worker.uid, None)
        self._finished[worker.uid] = None
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

    def _services_for(self, pod: dict[str, Any]) -> list[dict[str, Any]]:
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        found = [s for s in self.services.list() if (s.get("metadata") or {}).get("namespace") == namespace]
        if namespace != "default":
            master = self.services.get("default/kubernetes")
            if master is not None:
                found.append(master)
        return found

    async def _cleanup_volume_orphans(self) -> None:
        """Volume directories (and tmpfs mounts) of pods no longer bound here: left by a killed agent."""
        known = {str((p.get("metadata") or {}).get("uid")) for p in self.pods.list()}
        try:
            await cleanup_volume_orphans(self.log_root, known)
        except OSError:
            log.exception("cleaning up orphan pod volumes failed")

    async def shutdown(self, *, stop_pods: bool) -> None:
        """Call after `run` returned.  `stop_pods`: stop every container (SIGTERM, SIGKILL after the
        pod's grace period, at most `SHUTDOWN_GRACE_SECONDS`)."""
        if not stop_pods:
            return
        await asyncio.gather(
            *(w.stop_containers(min(grace_seconds(w.pod), SHUTDOWN_GRACE_SECONDS)) for w in self._workers.values()),
            return_exceptions=True,
        )

    # -- queries ----------------------------------------------------------------------------------

    def pod_count(self) -> int:
        """Pods this node runs or has not finished tearing down."""
        return len(self._workers)

    def worker(self, namespace: str, name: str) -> PodWorker | None:
        """The worker of pod `namespace/name` (the newest, should an old one still be tearing down)."""
        matches = [w for w in self._workers.values() if w.namespace == namespace and w.name == name]
        return matches[-1] if matches else None

    def resources_in_use(self) -> dict[str, int]:
        """Requests of the pods that are not finished: ``{"cpu": millicores, "memory": bytes, "pods": n}``."""
        cpu = memory = count = 0
        for worker in self._workers.values():
            if worker.terminal or (worker.pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
                continue
            count += 1
            for container in (worker.pod.get("spec") or {}).get("containers") or ():
                resources = container_resources(container)
                cpu += resources.cpu_request_millis or 0
                requested = ((container.get("resources") or {}).get("requests") or {}).get("memory")
                if requested is not None:
                    memory += quantity_from_json(requested).value()
        return {"cpu": cpu, "memory": memory, "pods": count}

    # -- PodTarget (streaming: logs, exec, port-forward) ------------------------------------------

    def find_container(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> str | None:
        worker = self.worker(namespace, pod)
        return worker.find_container(container, previous=previous) if worker is not None else None

    async def open_port(self, namespace: str, pod: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to `port` on the pod's loopback: inside its network namespace, or on the node
        for a pod on the host network."""
        worker = self.worker(namespace, pod)
        if worker is None:
            raise LookupError(f"pod {namespace}/{pod} is not running on node {self.node_name}")
        if worker.net.netns_path:
            return await open_connection_in_netns(worker.net.netns_path, port)
        return await asyncio.open_connection("127.0.0.1", port)


def _remove_unknown_dirs(root: Path, known: set[str]) -> None:
    """Remove ``root/<uid>`` for every uid not in `known` (per-pod files left by a killed agent)."""
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir() and entry.name not in known:
            shutil.rmtree(entry, ignore_errors=True)
