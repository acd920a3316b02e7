"""`PodWorker`: one asyncio task per pod on this node, driving the pod's containers on the `Runtime`.

The worker is event-driven: it sleeps on one wake-up event that is set by a newer pod object
(`update`), by the pod leaving the API (`api_deleted`), by a container exit (a task per container in
``runtime.wait_container``), by a probe result flipping, and by timers (back-off, retries) on the
injected `Clock`.  Each wake-up runs one level-based sync: make the runtime match the spec, then
write the computed status if it changed.

Lifecycle contracts, as the kubelet's:

* Admission first: a pod the manager rejected (a host-port clash, `admission`) is Failed at once with
  the kubelet's reason and message, and never runs.
* Network before the sandbox (`networking`): the pod's namespace and IPs (none for hostNetwork pods,
  whose IP is the node's), its hosts and resolv.conf files, mounted into every container.  The network
  goes after the sandbox is removed, or once the pod finished.
* Sandbox first (hostname, log directory ``<log root>/<ns>_<name>_<uid>``, ``io.kubernetes.pod.*``
  labels so that a restarted agent finds it again), then init containers one at a time, each to a
  successful exit, then every container.  An init failure under ``restartPolicy: Never`` fails the pod.
* Restarts follow restartPolicy with CrashLoopBackOff (`backoff`); a pod that reached Succeeded or
  Failed is never restarted; its exited containers stay until the pod is deleted.
* Probes: startup gates liveness and readiness; a liveness or startup failure kills the container
  (it then restarts per policy); readiness drives ``ready``.
* Deletion (``deletionTimestamp``): preStop hooks, then stop every container within the grace period
  (SIGTERM, SIGKILL at the end), remove the sandbox, write the final status and delete the object with
  grace 0 and a uid precondition.  A pod gone from the API (forced deletion) is killed at once.
* Cancelling `run` leaves the containers running: a new worker adopts them (same ids, no restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from kubelite.agent.network.interface import NetworkError
from kubelite.agent.pods import status as podstatus
from kubelite.agent.pods.admission import Rejection
from kubelite.agent.pods.backoff import CrashLoopBackOff, format_duration
from kubelite.agent.pods.containers import CONTAINER_HASH, Slot, container_config, pod_labels, restore
from kubelite.agent.pods.containers import spec_hash as container_hash
from kubelite.agent.pods.env import EnvError, container_env, expand_command
from kubelite.agent.pods.hooks import run_handler
from kubelite.agent.pods.networking import NodeNetworking, PodNetworkAttachment
from kubelite.agent.pods.probes import ProbeContext
from kubelite.agent.pods.probing import AttemptProbes, stop_probes
from kubelite.agent.pods.writer import StatusWriter
from kubelite.agent.runtime.interface import (
    ContainerRuntimeError,
    ContainerState,
    NotFoundError,
    PodSandboxConfig,
    Runtime,
    SandboxState,
    StartError,
)
from kubelite.agent.volumes.manager import PodVolumes, VolumeSetupError
from kubelite.agent.volumes.mounts import container_mounts
from kubelite.client.clock import Clock
from kubelite.client.interface import Client
from kubelite.machinery.meta import rfc3339

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 30
MIN_GRACE_SECONDS = 2  # the kubelet's minimum after a preStop hook used up the grace period
RETRY_SECONDS = 10.0  # a container whose config or creation failed is tried again after this
VOLUME_REFRESH_SECONDS = 60.0  # configMap/secret/downwardAPI volumes re-synced (the kubelet's sync period)
VOLUME_CHECK_SECONDS = 10.0  # emptyDir sizeLimit checked (the eviction manager's monitoring interval)

__all__ = ["EventSink", "PodWorker", "grace_seconds"]


class EventSink(Protocol):
    """What the worker needs of `kubelite.client.events.EventRecorder`."""

    def event(
        self, obj: dict[str, Any], event_type: str, reason: str, message: str, *, field_path: str | None = None
    ) -> None: ...


def grace_seconds(pod: dict[str, Any]) -> int:
    """The deletion's grace period, else the spec's, else 30 s."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionGracePeriodSeconds") is not None:
        return max(int(meta["deletionGracePeriodSeconds"]), 0)
    spec_grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE_SECONDS if spec_grace is None else max(int(spec_grace), 0)


class PodWorker:
    """Runs one pod (see the module docstring).  `update` / `api_deleted` are called by the manager
    from informer handlers; `run` returns once the pod is gone from the node and the API."""

    def __init__(
        self,
        pod: dict[str, Any],
        *,
        client: Client,
        runtime: Runtime,
        recorder: EventSink,
        node_name: str,
        node_ip: str,
        log_root: Path,
        clock: Clock,
        services: Callable[[dict[str, Any]], list[dict[str, Any]]],
        networking: NodeNetworking | None = None,
        rejection: Rejection | None = None,
        volume_check_seconds: float = VOLUME_CHECK_SECONDS,
        volume_refresh_seconds: float = VOLUME_REFRESH_SECONDS,
    ) -> None:
        """`networking` None: every pod on the host network, no hosts/resolv.conf files (see
        `networking`).  `rejection`: the manager did not admit the pod.  Volumes live under
        ``<log_root>/<uid>/volumes`` (`kubelite.agent.volumes`)."""
        meta = pod.get("metadata") or {}
        self.uid = str(meta.get("uid", ""))
        self.name = str(meta.get("name", ""))
        self.namespace = str(meta.get("namespace", ""))
        self.pod = pod
        self._client = client
        self._runtime = runtime
        self._recorder = recorder
        self._node_name = node_name
        self._node_ip = node_ip
        self._log_root = Path(log_root)
        self._clock = clock
        self._services = services
        spec = pod.get("spec") or {}
        self.init_slots = [Slot(c, "init", CrashLoopBackOff(clock)) for c in spec.get("initContainers") or ()]
        self.slots = [Slot(c, "regular", CrashLoopBackOff(clock)) for c in spec.get("containers") or ()]
        self.sandbox_id: str | None = None
        self._sandbox_ready = False
        self._terminal = (pod.get("status") or {}).get("phase") in podstatus.TERMINAL_PHASES
        self._gone = False
        self._wake = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._timer: tuple[float, asyncio.Task[None]] | None = None
        self._start_time: datetime | None = None
        self._writer = StatusWriter(client, clock, uid=self.uid, name=self.name, namespace=self.namespace)
        self._frozen = False
        self.net = PodNetworkAttachment(networking, pod, node_ip=node_ip)
        self.rejection = None if self._terminal else rejection
        if self.rejection is not None:
            self._terminal = True
        self._waiting_network = False
        self.volumes = PodVolumes(
            pod, client=client, root=self._log_root / self.uid / "volumes", clock=clock, node_name=node_name
        )
        self._volume_check_seconds = volume_check_seconds
        self._volume_refresh_seconds = volume_refresh_seconds
        self._volume_refresh_at = self._volume_check_at = 0.0
        self._evicted: str | None = None

    # -- inputs (called from informer handlers: quick, non-blocking) -----------------------------

    def update(self, pod: dict[str, Any]) -> None:
        """A newer version of the pod object."""
        self.pod = pod
        spec = pod.get("spec") or {}
        for slots, specs in ((self.init_slots, spec.get("initContainers")), (self.slots, spec.get("containers"))):
            by_name = {c.get("name"): c for c in specs or ()}
            for slot in slots:
                slot.spec = by_name.get(slot.name, slot.spec)
        self._wake.set()

    def api_deleted(self) -> None:
        """The pod left the API without this worker finishing it (forced deletion): kill at once."""
        self._gone = True
        self._wake.set()

    @property
    def all_slots(self) -> list[Slot]:
        return [*self.init_slots, *self.slots]

    @property
    def terminal(self) -> bool:
        return self._terminal

    def find_container(self, name: str, *, previous: bool = False) -> str | None:
        """The runtime id of container `name`'s current attempt, or of the one before (`previous`)."""
        for slot in self.all_slots:
            if slot.name != name:
                continue
            if not previous:
                return slot.current.id if slot.current else None
            if slot.exited and slot.waiting is not None and slot.current is not None:
                return slot.current.id  # crash-looping: the exited attempt is the previous one
            return slot.previous.id if slot.previous else None
        return None

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                try:
                    await self._main()
                finally:
                    for task in list(self._background):
                        task.cancel()
        finally:
            self._tasks = None

    async def _main(self) -> None:
        self._start_time = self._clock.utcnow()
        if self.rejection is not None:
            self._event(None, "Warning", self.rejection.reason, self.rejection.message)
        await self._adopt()
        while True:
            if self._gone:
                await self._kill_all(0)
                await self._remove_sandbox()
                await self._detach_network()
                await self.volumes.teardown()
                return
            if (self.pod.get("metadata") or {}).get("deletionTimestamp"):
                await self._terminate()
                return
            try:
                await self._sync()
            except ContainerRuntimeError as exc:  # the runtime refused (a sandbox stopped under us): retry
                log.warning(
                    "pod sync failed; retrying", extra={"pod": f"{self.namespace}/{self.name}", "error": str(exc)}
                )
                self._schedule(RETRY_SECONDS)
            await self._write_status()
            await self._wake.wait()
            self._wake.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        assert self._tasks is not None
        task = self._tasks.create_task(coro, name=f"pod-{self.namespace}/{self.name}-{name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _schedule(self, delay: float) -> None:
        """Wake the loop after `delay` seconds of clock time (keeps the earliest pending alarm)."""
        due = self._clock.now() + max(delay, 0.0)
        if self._timer is not None and not self._timer[1].done():
            if self._timer[0] <= due:
                return
            self._timer[1].cancel()
        self._timer = (due, self._spawn(self._alarm(delay), "timer"))

    async def _alarm(self, delay: float) -> None:
        await self._clock.sleep(delay)
        self._wake.set()

    def _event(self, slot: Slot | None, event_type: str, reason: str, message: str) -> None:
        self._recorder.event(self.pod, event_type, reason, message, field_path=slot.field_path if slot else None)

    @property
    def _pod_ref(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"

    # -- adoption ---------------------------------------------------------------------------------

    async def _adopt(self) -> None:
        """Take over what the runtime already has for this pod (an agent restart); see `restore`."""
        kept = await restore(self._runtime, self.uid, self.all_slots, keep_stopped=self._terminal)
        if kept is not None:
            self.sandbox_id, self._sandbox_ready = kept.id, kept.state == SandboxState.READY
            running: list[tuple[Slot, str]] = []
            for slot in self.all_slots:
                if slot.running and slot.current is not None:
                    self._watch(slot, slot.current.id)
                    running.append((slot, slot.current.id))
                elif slot.exited:
                    slot.exited_at = self._clock.now()
            if running:
                self._spawn(self._probe_when_attached(running), "adopted-probes")
        elif not any(slot.attempts for slot in self.all_slots):
            # nothing left in the runtime: attempts continue from the counts the API has
            status = self.pod.get("status") or {}
            by_name = {slot.name: slot for slot in self.all_slots}
            for entry in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
                slot = by_name.get(entry.get("name"))
                if slot is not None and entry.get("containerID"):
                    slot.attempts = max(slot.attempts, int(entry.get("restartCount") or 0) + 1)
        # a finished pod whose containers are gone: the API's status is the only record; leave it be
        self._frozen = self._terminal and kept is None and self.rejection is None
        if self._terminal:
            self.net.remember(self.pod.get("status") or {})
        elif kept is not None:
            await self._ensure_network()  # the same namespace and address again (setup_pod is idempotent)

    # -- sync: make the runtime match the spec -----------------------------------------------------

    async def _sync(self) -> None:
        if self._terminal:
            return
        if not await self._volume_work():
            return
        if self.sandbox_id is None and not await self._create_sandbox():
            return
        if not self.net.attached:
            await self._ensure_network()
        policy = (self.pod.get("spec") or {}).get("restartPolicy") or "Always"
        for slot in self.init_slots:
            if slot.succeeded:
                continue
            if slot.running:
                return
            if slot.exited:
                if slot.wants_restart(policy):
                    await self._restart(slot)
                else:
                    await self._finish()
                return
            await self._start(slot)
            return
        for slot in self.slots:
            if slot.running:
                self._check_definition(slot)
            elif slot.current is None:
                await self._start(slot)
            elif slot.exited and (slot.replace or slot.wants_restart(policy)):
                await self._restart(slot)
        if self.slots and all(s.exited and not s.replace and not s.wants_restart(policy) for s in self.slots):
            await self._finish()

    async def _volume_work(self) -> bool:
        """Volumes set up (False while one cannot be: a FailedMount event, a retry), configMaps and
        secrets re-synced every minute, emptyDir sizeLimits checked (an eviction when exceeded)."""
        now = self._clock.now()
        if not self.volumes.ready:
            try:
                await self.volumes.setup(self.pod)
            except VolumeSetupError as exc:
                self._event(None, "Warning", "FailedMount", str(exc))
                self._schedule(RETRY_SECONDS)
                return False
            self._volume_refresh_at = now + self._volume_refresh_seconds
        elif now >= self._volume_refresh_at:
            await self.volumes.refresh(self.pod)
            self._volume_refresh_at = now + self._volume_refresh_seconds
        volumes = (self.pod.get("spec") or {}).get("volumes") or ()
        if any((v.get("emptyDir") or {}).get("sizeLimit") for v in volumes):
            if now >= self._volume_check_at:
                self._volume_check_at = now + self._volume_check_seconds
                violation = await asyncio.to_thread(self.volumes.size_limit_violation)
                if violation is not None:
                    await self._evict(violation)
                    return False
            self._schedule(min(self._volume_check_at, self._volume_refresh_at) - now)
        elif volumes:
            self._schedule(self._volume_refresh_at - now)
        return True

    async def _evict(self, message: str) -> None:
        """The eviction manager's verdict: kill every container at once, the pod Failed/Evicted."""
        self._evicted = message
        self._event(None, "Warning", "Evicted", message)
        await self._kill_all(0)
        await self._finish()

    async def _ensure_network(self) -> bool:
        """Attach the pod's network; False (and a wake-up once it can work) while the node's is not
        started, or after a failure (an event, and a retry)."""
        try:
            if await self.net.attach():
                return True
        except NetworkError as exc:
            self._event(None, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            self._schedule(RETRY_SECONDS)
            return False
        if not self._waiting_network:
            self._waiting_network = True
            self._spawn(self._wait_network(), "network")
        return False

    async def _probe_when_attached(self, running: list[tuple[Slot, str]]) -> None:
        """Probes of adopted containers go to the pod's IP: start them once the pod's network is found again
        (the node's network starts after the agent does)."""
        while not (self.net.host_network or self.net.attached):
            await self.net.wait_ready()
            if not await self._ensure_network():
                await self._clock.sleep(RETRY_SECONDS)
        for slot, container_id in running:
            if slot.running and slot.current is not None and slot.current.id == container_id:
                self._start_probers(slot, container_id)

    async def _wait_network(self) -> None:
        await self.net.wait_ready()
        self._waiting_network = False
        self._wake.set()

    async def _detach_network(self) -> None:
        try:
            await self.net.detach()
        except (NetworkError, OSError) as exc:  # the agent's orphan clean-up gets it at the next start
            log.warning(
                "pod network teardown failed", extra={"pod": f"{self.namespace}/{self.name}", "error": str(exc)}
            )

    async def _create_sandbox(self) -> bool:
        spec = self.pod.get("spec") or {}
        if not await self._ensure_network():
            return False
        try:
            warnings = await self.net.write_files(self.pod)
        except OSError as exc:
            self._event(None, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            self._schedule(RETRY_SECONDS)
            return False
        for warning in warnings:
            self._event(None, "Warning", warning.reason, warning.message)
        log_dir = self._log_root / f"{self.namespace}_{self.name}_{self.uid}"
        config = PodSandboxConfig(
            uid=self.uid,
            name=self.name,
            namespace=self.namespace,
            hostname=str(spec.get("hostname") or self.name),
            log_directory=str(log_dir),
            netns_path=self.net.netns_path,
            labels=pod_labels(self.pod),
            annotations=dict((self.pod.get("metadata") or {}).get("annotations") or {}),
        )
        try:
            self.sandbox_id = await self._runtime.run_pod_sandbox(config)
        except ContainerRuntimeError as exc:
            self._event(None, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            self._schedule(RETRY_SECONDS)
            return False
        self._sandbox_ready = True
        return True

    def _check_definition(self, slot: Slot) -> None:
        """A running container whose spec changed (a new image) is killed; it restarts without back-off."""
        current = slot.current
        if current is None or current.annotations.get(CONTAINER_HASH) in (None, container_hash(slot.spec)):
            return
        if slot.replace:
            return
        slot.replace = True
        self._event(slot, "Normal", "Killing", f"Container {slot.name} definition changed, will be restarted")
        self._spawn(self._stop(slot, current.id, grace_seconds(self.pod)), f"kill-{slot.name}")

    async def _restart(self, slot: Slot) -> None:
        exited_at = slot.exited_at if slot.exited_at is not None else self._clock.now()
        changed = slot.replace
        delay = 0.0 if changed else slot.backoff.delay(exited_at)
        if delay > 0:
            window = format_duration(slot.backoff.window)
            message = f"back-off {window} restarting failed container={slot.name} pod={self._pod_ref}"
            if slot.waiting != (podstatus.CRASH_LOOP_BACK_OFF, message):
                slot.waiting = (podstatus.CRASH_LOOP_BACK_OFF, message)
                text = f"Back-off restarting failed container {slot.name} in pod {self._pod_ref}"
                self._event(slot, "Warning", "BackOff", text)
            self._schedule(delay)
            return
        if not changed:
            slot.backoff.restarted(exited_at)
        await self._start(slot)

    async def _start(self, slot: Slot) -> None:
        """Create and start the slot's next attempt; failures leave it waiting with a reason."""
        now = self._clock.now()
        if slot.retry_at is not None and now < slot.retry_at:
            self._schedule(slot.retry_at - now)
            return
        assert self.sandbox_id is not None
        try:
            env = await container_env(
                self._client,
                self.pod,
                slot.spec,
                node_name=self._node_name,
                node_ip=self._node_ip,
                pod_ip=self.net.pod_ip,
                services=self._services(self.pod),
            )
            command = expand_command(slot.spec, env)
            mounts = await asyncio.to_thread(
                container_mounts, slot.spec, env, self.volumes.paths, pod_mounts=self.net.mounts
            )
            config = container_config(
                self.pod,
                slot.spec,
                kind=slot.kind,
                command=command,
                env=env,
                attempt=slot.attempts,
                mounts=mounts,
            )
            container_id = await self._runtime.create_container(self.sandbox_id, config)
        except (EnvError, ContainerRuntimeError) as exc:
            reason = exc.reason if isinstance(exc, EnvError) else podstatus.CREATE_CONTAINER_ERROR
            message = exc.message if isinstance(exc, EnvError) else str(exc)
            if slot.waiting != (reason, message):
                self._event(slot, "Warning", "Failed", f"Error: {message}")
            slot.waiting, slot.retry_at = (reason, message), now + RETRY_SECONDS
            self._schedule(RETRY_SECONDS)
            return
        if slot.previous is not None and slot.current is not None:
            with contextlib.suppress(ContainerRuntimeError):
                await self._runtime.remove_container(slot.previous.id)
        slot.previous = slot.current if slot.exited else slot.previous
        slot.current = await self._runtime.container_status(container_id)
        slot.attempts += 1
        slot.waiting = slot.retry_at = slot.exited_at = None
        slot.ready = slot.started = slot.replace = False
        image = str(slot.spec.get("image") or "")
        self._event(slot, "Normal", "Pulled", f'Container image "{image}" already present on machine')
        self._event(slot, "Normal", "Created", f"Created container {slot.name}")
        try:
            await self._runtime.start_container(container_id)
        except StartError as exc:
            self._event(slot, "Warning", "Failed", f"Error: {exc}")
        else:
            self._event(slot, "Normal", "Started", f"Started container {slot.name}")
        slot.current = await self._runtime.container_status(container_id)
        self._watch(slot, container_id)
        if slot.running:
            await self._post_start(slot, container_id)
        if slot.running:
            self._start_probers(slot, container_id)

    async def _post_start(self, slot: Slot, container_id: str) -> None:
        handler = (slot.spec.get("lifecycle") or {}).get("postStart")
        if not handler:
            return
        failure = await self._hook(handler, slot, container_id, grace_seconds(self.pod))
        if failure is not None:
            self._event(slot, "Warning", "FailedPostStartHook", failure)
            await self._stop(slot, container_id, grace_seconds(self.pod))

    async def _hook(self, handler: dict[str, Any], slot: Slot, container_id: str, timeout: float) -> str | None:
        """Run a lifecycle hook; its failure message, or None."""
        try:
            return await run_handler(handler, self._probe_context(slot, container_id), timeout=timeout)
        except (ContainerRuntimeError, TimeoutError) as exc:
            return str(exc) or type(exc).__name__

    async def _finish(self) -> None:
        """Nothing will run again (restartPolicy): stop the sandbox, keep the exited containers."""
        self._terminal = True
        for slot in self.all_slots:
            stop_probes(slot)
        if self.sandbox_id is not None:
            await self._runtime.stop_pod_sandbox(self.sandbox_id)
        self._sandbox_ready = False
        await self._detach_network()  # nothing runs in it again; the pod keeps reporting its IP
        await self.volumes.teardown()

    # -- container exits and probes ---------------------------------------------------------------

    def _watch(self, slot: Slot, container_id: str) -> None:
        self._spawn(self._wait_exit(slot, container_id), f"wait-{slot.name}")

    async def _wait_exit(self, slot: Slot, container_id: str) -> None:
        try:
            final = await self._runtime.wait_container(container_id)
        except ContainerRuntimeError:
            return  # removed, or the runtime is closing
        if slot.current is None or slot.current.id != container_id:
            return
        slot.current = final
        slot.exited_at = self._clock.now()
        slot.ready = slot.started = False
        slot.waiting = None
        stop_probes(slot)
        self._wake.set()

    def _probe_context(self, slot: Slot, container_id: str) -> ProbeContext:
        async def exec_sync(command: list[str], timeout: float) -> Any:
            return await self._runtime.exec_sync(container_id, command, timeout=timeout)

        # httpGet / tcpSocket without a host go to the pod's IP, as upstream: it reaches the pod's namespace
        return ProbeContext(pod_ip=self.net.pod_ip or self._node_ip, container=slot.spec, exec_sync=exec_sync)

    def _start_probers(self, slot: Slot, container_id: str) -> None:
        def kill(slot: Slot, container_id: str) -> None:
            self._spawn(self._stop(slot, container_id, grace_seconds(self.pod)), f"kill-{slot.name}")

        AttemptProbes(
            slot,
            container_id,
            self._probe_context(slot, container_id),
            clock=self._clock,
            spawn=self._spawn,
            changed=self._wake.set,
            emit=self._event,
            kill=kill,
        ).start()

    async def _stop(self, slot: Slot, container_id: str, grace: float) -> None:
        try:
            await self._runtime.stop_container(container_id, grace)
        except NotFoundError:
            pass
        except ContainerRuntimeError as exc:
            log.warning("stopping a container failed", extra={"container": container_id, "error": str(exc)})

    # -- termination ------------------------------------------------------------------------------

    async def _terminate(self) -> None:
        await self._kill_all(grace_seconds(self.pod))
        await self._remove_sandbox()
        await self._detach_network()
        await self.volumes.teardown()
        await self._write_status(terminal=True)
        await self._writer.delete(lambda: self._gone)

    async def _kill_all(self, grace: float) -> None:
        """preStop hooks (when there is a grace period), then stop every running container in parallel."""
        if self._timer is not None:
            self._timer[1].cancel()
        deadline = self._clock.now() + grace
        running = [s for s in self.all_slots if s.running and s.current is not None]
        for slot in self.all_slots:
            stop_probes(slot)

        async def stop_one(slot: Slot, container_id: str) -> None:
            pre_stop = (slot.spec.get("lifecycle") or {}).get("preStop")
            if pre_stop and grace > 0:
                failure = await self._hook(pre_stop, slot, container_id, grace)
                if failure is not None:
                    self._event(slot, "Warning", "FailedPreStopHook", failure)
            self._event(slot, "Normal", "Killing", f"Stopping container {slot.name}")
            left = deadline - self._clock.now()
            await self._stop(slot, container_id, max(left, MIN_GRACE_SECONDS) if grace > 0 else 0)
            with contextlib.suppress(ContainerRuntimeError):
                slot.current = await self._runtime.container_status(container_id)

        async with asyncio.TaskGroup() as group:
            for slot in running:
                assert slot.current is not None
                group.create_task(stop_one(slot, slot.current.id))
        self._terminal = True

    async def _remove_sandbox(self) -> None:
        if self.sandbox_id is not None:
            await self._runtime.remove_pod_sandbox(self.sandbox_id)
        self._sandbox_ready = False

    # -- status -----------------------------------------------------------------------------------

    def compute_status(self, *, terminal: bool = False) -> dict[str, Any]:
        if self.rejection is not None:
            return self._rejected_status()
        waiting = podstatus.POD_INITIALIZING if self.init_slots else podstatus.CONTAINER_CREATING
        status = podstatus.pod_status(
            self.pod,
            init_statuses=[s.api_status(default_waiting=waiting) for s in self.init_slots],
            statuses=[s.api_status(default_waiting=waiting) for s in self.slots],
            sandbox_ready=self._sandbox_ready,
            node_ip=self._node_ip,
            now=self._clock.utcnow(),
            terminal=terminal,
            start_time=self._start_time,
            pod_ips=self.net.ips,
        )
        if self._evicted is not None:
            status.update({"phase": podstatus.FAILED, "reason": "Evicted", "message": self._evicted})
            before = [c for c in status.get("conditions") or () if c.get("type") == "DisruptionTarget"]
            status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") != "DisruptionTarget"]
            status["conditions"].append(
                before[0]
                if before
                else {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(self._clock.utcnow()),
                    "reason": "TerminationByKubelet",
                    "message": self._evicted,
                }
            )
        return status

    def _rejected_status(self) -> dict[str, Any]:
        """What the kubelet writes for a pod it did not admit: Failed, with the admission's reason; the
        scheduler's conditions and qosClass stay, nothing else (it never ran)."""
        assert self.rejection is not None
        status = {k: v for k, v in (self.pod.get("status") or {}).items() if k in ("conditions", "qosClass")}
        status.update(
            {"phase": podstatus.FAILED, "reason": self.rejection.reason, "message": self.rejection.status_message}
        )
        return status

    async def _write_status(self, *, terminal: bool = False) -> None:
        if self._gone or self._frozen:
            return
        stored, retry = await self._writer.write(self.pod, self.compute_status(terminal=terminal))
        if stored is not None:
            self.pod = {**self.pod, "status": stored}
        if retry is not None:
            self._schedule(retry)

    # -- agent shutdown ---------------------------------------------------------------------------

    async def stop_containers(self, timeout: float) -> None:
        """Stop every container and the sandbox (the agent is stopping; `run` was cancelled).  The
        sandbox stays recorded, so a restarted agent continues the attempt counts."""
        running = [
            s.current.id
            for s in self.all_slots
            if s.current is not None and s.current.state in (ContainerState.RUNNING, ContainerState.CREATED)
        ]
        await asyncio.gather(*(self._runtime.stop_container(c, timeout) for c in running), return_exceptions=True)
        if self.sandbox_id is not None:
            with contextlib.suppress(ContainerRuntimeError):
                await self._runtime.stop_pod_sandbox(self.sandbox_id)
