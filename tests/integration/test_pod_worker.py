"""The node agent's pod lifecycle end to end on a real ProcessRuntime (isolated, root) and a FakeClient:
pods run and report status, crash loops back off, init containers go first, OOM kills are reported,
deletion kills within the grace period and removes the object, a restarted manager adopts containers.

Every test uses its own cgroup root and temp dirs and removes them, with anything left in them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import sys
import types
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.runtime import procfs
from kubelite.agent.runtime.cgroups import Cgroup, CgroupLayout, detect_layout
from kubelite.agent.runtime.launch import Tools
from kubelite.agent.runtime.process import ProcessRuntime, detect_isolation
from kubelite.client.clock import Clock, RealClock
from kubelite.client.interface import builtin
from kubelite.machinery.errors import ApiError
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock


def _install_stand_ins() -> list[str]:
    """Minimal env/hooks/probes modules while their real ones are not written yet (another part of the
    agent).  Only installed when missing; the report says which tests ran with them."""
    installed = []
    if importlib.util.find_spec("kubelite.agent.pods.env") is None:
        env = types.ModuleType("kubelite.agent.pods.env")

        class EnvError(Exception):
            def __init__(self, reason: str, message: str) -> None:
                super().__init__(message)
                self.reason, self.message = reason, message

        async def container_env(
            client: Any, pod: dict[str, Any], container: dict[str, Any], **_: Any
        ) -> dict[str, str]:
            values = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
            values.update({e["name"]: e.get("value", "") for e in container.get("env") or ()})
            return values

        def expand_command(container: dict[str, Any], env_: dict[str, str]) -> list[str]:
            return [*(container.get("command") or ()), *(container.get("args") or ())]

        env.EnvError, env.container_env, env.expand_command = EnvError, container_env, expand_command  # type: ignore[attr-defined]
        sys.modules[env.__name__] = env
        installed.append("env")
    if importlib.util.find_spec("kubelite.agent.pods.probes") is None:
        probes = types.ModuleType("kubelite.agent.pods.probes")

        @dataclass
        class ProbeContext:
            pod_ip: str
            container: dict[str, Any]
            exec_sync: Callable[[list[str], float], Awaitable[Any]]

        class Prober:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            async def run(self) -> None:
                await asyncio.get_running_loop().create_future()

        probes.ProbeContext, probes.Prober = ProbeContext, Prober  # type: ignore[attr-defined]
        sys.modules[probes.__name__] = probes
        installed.append("probes")
    if importlib.util.find_spec("kubelite.agent.pods.hooks") is None:
        hooks = types.ModuleType("kubelite.agent.pods.hooks")

        async def run_handler(handler: dict[str, Any], ctx: Any, *, timeout: float) -> str | None:
            result = await ctx.exec_sync(handler["exec"]["command"], timeout)
            return None if result.exit_code == 0 else f"exec hook exited {result.exit_code}"

        hooks.run_handler = run_handler  # type: ignore[attr-defined]
        sys.modules[hooks.__name__] = hooks
        installed.append("hooks")
    return installed


STAND_INS = _install_stand_ins()

from kubelite.agent.pods.manager import PodManager  # noqa: E402

_why_not = "not Linux" if sys.platform != "linux" else detect_isolation(Tools.find())
pytestmark = pytest.mark.skipif(_why_not is not None, reason=f"isolated containers need root: {_why_not}")

PODS = builtin("", "pods")
NODE = "node-1"
WAIT = 30.0
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


class Recorder:
    """Keeps (reason, message) of every event, as the EventRecorder would be told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: dict[str, Any], event_type: str, reason: str, message: str, *, field_path: Any = None) -> None:
        self.events.append((event_type, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


def purge_cgroup_root(layout: CgroupLayout, root: str) -> None:
    for hierarchy in set(layout.roots().values()):
        top = hierarchy / root
        if not top.exists():
            continue
        for directory in [*sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)), top]:
            group = Cgroup(layout, str(directory.relative_to(hierarchy)))
            group.kill()
            group.wait_empty(2)
            directory.rmdir()


@pytest.fixture
def cgroup_root() -> Iterator[str]:
    root = f"kubelite-test-{uuid.uuid4().hex[:8]}"
    yield root
    purge_cgroup_root(detect_layout(), root)


@dataclass
class Node:
    client: FakeClient
    runtime: ProcessRuntime
    recorder: Recorder
    manager: PodManager
    task: asyncio.Task[None]
    tmp: Path
    clock: Clock


async def start_manager(node_parts: dict[str, Any]) -> tuple[PodManager, asyncio.Task[None]]:
    manager = PodManager(
        node_parts["client"],
        node_parts["runtime"],
        node_parts["recorder"],
        node_name=NODE,
        node_ip="127.0.0.1",
        log_root=node_parts["tmp"] / "pods",
        clock=node_parts["clock"],
    )
    task = asyncio.create_task(manager.run())
    async with asyncio.timeout(WAIT):
        await manager.wait_ready()
    return manager, task


async def stop_manager(manager: PodManager, task: asyncio.Task[None], *, stop_pods: bool) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await manager.shutdown(stop_pods=stop_pods)


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> Clock:
    """Real time unless a test asks for ``indirect`` "fake"."""
    return FakeClock() if getattr(request, "param", "real") == "fake" else RealClock()


@pytest.fixture
async def node(tmp_path: Path, cgroup_root: str, clock: Clock) -> AsyncIterator[Node]:
    runtime = ProcessRuntime(tmp_path / "runtime", isolated=True, cgroup_root=cgroup_root)
    await runtime.start()
    parts = {"client": FakeClient(), "runtime": runtime, "recorder": Recorder(), "tmp": tmp_path, "clock": clock}
    manager, task = await start_manager(parts)
    node = Node(parts["client"], runtime, parts["recorder"], manager, task, tmp_path, clock)
    try:
        yield node
    finally:
        if not node.task.done():
            await stop_manager(node.manager, node.task, stop_pods=True)
        for sandbox in await node.runtime.list_pod_sandboxes():
            await node.runtime.remove_pod_sandbox(sandbox.id)
        await node.runtime.close()


def pod_manifest(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": NODE, "containers": containers, "terminationGracePeriodSeconds": 2, **spec},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]},
    }


def container(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox:1.36", "command": command, **extra}


async def create(node: Node, pod: dict[str, Any]) -> dict[str, Any]:
    return await node.client.create(PODS, pod)


async def wait_for(
    node: Node, name: str, check: Callable[[dict[str, Any]], bool], *, timeout: float = WAIT
) -> dict[str, Any]:
    """Until the stored pod satisfies `check` (real time, bounded)."""
    pod: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                pod = await node.client.get(PODS, name, "default")
                if check(pod):
                    return pod
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"condition not reached; last status: {pod.get('status')}") from None


async def until(check: Callable[[], Awaitable[bool]], *, timeout: float = WAIT) -> None:
    """Until `check()` holds (real time, bounded)."""
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


def statuses(pod: dict[str, Any], key: str = "containerStatuses") -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in (pod.get("status") or {}).get(key) or ()}


def conditions(pod: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or ()}


def gone(pid: int) -> bool:
    return procfs.start_time(pid) is None


async def test_a_pod_runs_and_reports_running_and_ready(node: Node) -> None:
    created = await create(node, pod_manifest("web", [container("app", ["sleep", "300"])]))
    pod = await wait_for(node, "web", lambda p: conditions(p).get("Ready") == "True")
    status = pod["status"]
    assert status["phase"] == "Running"
    assert status["podIP"] == status["hostIP"] == "127.0.0.1"
    assert conditions(pod) == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    app = statuses(pod)["app"]
    assert app["ready"] is True and app["started"] is True and app["restartCount"] == 0
    assert app["containerID"].startswith("process://")
    assert set(app["state"]) == {"running"} and app["state"]["running"]["startedAt"].endswith("Z")
    container_id = node.manager.find_container("default", "web", "app")
    assert container_id is not None and app["containerID"] == f"process://{container_id}"
    assert [r for r in node.recorder.reasons()] == ["Pulled", "Created", "Started"]
    assert ("Normal", "Started", "Started container app") in node.recorder.events
    assert ("Normal", "Pulled", 'Container image "busybox:1.36" already present on machine') in node.recorder.events
    uid = created["metadata"]["uid"]
    log_dir = node.tmp / "pods" / f"default_web_{uid}"
    assert (log_dir / "app" / "0.log").exists()
    assert node.manager.pod_count() == 1
    # status is written when it changes, not on every wake-up
    patches = [a for a in node.client.actions if a.verb == "patch" and a.subresource == "status"]
    assert 1 <= len(patches) <= 4
    assert all(a.body["metadata"] == {"uid": uid} for a in patches)


@pytest.mark.parametrize("clock", ["fake"], indirect=True)
async def test_a_crashing_container_backs_off_and_its_restart_count_grows(node: Node) -> None:
    created = await create(node, pod_manifest("crash", [container("c", ["sh", "-c", "echo boom; exit 3"])]))
    uid = created["metadata"]["uid"]

    def crash_looping(restarts: int, window: str) -> Callable[[dict[str, Any]], bool]:
        def check(pod: dict[str, Any]) -> bool:
            c = statuses(pod).get("c") or {}
            waiting = (c.get("state") or {}).get("waiting") or {}
            return (
                c.get("restartCount") == restarts
                and waiting.get("reason") == "CrashLoopBackOff"
                and (f"back-off {window} " in waiting.get("message", ""))
            )

        return check

    # first crash: restarted at once; second: 10 s back-off
    pod = await wait_for(node, "crash", crash_looping(1, "10s"))
    c = statuses(pod)["c"]
    assert c["state"]["waiting"]["message"] == f"back-off 10s restarting failed container=c pod=crash_default({uid})"
    assert c["lastState"]["terminated"]["exitCode"] == 3
    assert c["lastState"]["terminated"]["reason"] == "Error"
    assert pod["status"]["phase"] == "Running"
    assert conditions(pod)["Ready"] == "False"
    backoff = ("Warning", "BackOff", f"Back-off restarting failed container c in pod crash_default({uid})")
    assert backoff in node.recorder.events
    assert isinstance(node.clock, FakeClock)
    node.clock.advance(10)
    await wait_for(node, "crash", crash_looping(2, "20s"))
    node.clock.advance(20)
    await wait_for(node, "crash", crash_looping(3, "40s"))
    assert node.manager.find_container("default", "crash", "c", previous=True) is not None


async def test_restart_policy_never_and_exit_0_succeeds(node: Node) -> None:
    await create(node, pod_manifest("job", [container("c", ["true"])], restartPolicy="Never"))
    pod = await wait_for(node, "job", lambda p: p["status"].get("phase") == "Succeeded")
    c = statuses(pod)["c"]
    assert c["state"]["terminated"]["exitCode"] == 0
    assert c["state"]["terminated"]["reason"] == "Completed"
    assert c["restartCount"] == 0 and c["ready"] is False
    found = {x["type"]: x for x in pod["status"]["conditions"]}
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == ("False", "PodCompleted")
    # nothing restarts it, and its exited container stays recorded until the pod is deleted
    await asyncio.sleep(0.5)
    assert statuses(await node.client.get(PODS, "job", "default"))["c"]["restartCount"] == 0
    container_id = node.manager.find_container("default", "job", "c")
    assert container_id is not None
    assert (await node.runtime.container_status(container_id)).exit_code == 0
    await node.client.delete(PODS, "job", "default")

    async def cleaned_up() -> bool:
        return not await node.runtime.list_pod_sandboxes() and node.manager.pod_count() == 0

    await until(cleaned_up)


async def test_restart_policy_never_and_a_failure_fails_the_pod(node: Node) -> None:
    await create(node, pod_manifest("bad", [container("c", ["sh", "-c", "exit 7"])], restartPolicy="Never"))
    pod = await wait_for(node, "bad", lambda p: p["status"].get("phase") == "Failed")
    assert statuses(pod)["c"]["state"]["terminated"]["exitCode"] == 7


async def test_init_containers_run_to_completion_before_the_main_container(node: Node) -> None:
    marker = node.tmp / "marker"
    pod = pod_manifest("init", [container("app", ["sh", "-c", f"test -f {marker} && exec sleep 300"])])
    pod["spec"]["initContainers"] = [
        container("first", ["sh", "-c", f"sleep 0.3; touch {marker}"]),
        container("second", ["test", "-f", str(marker)]),
    ]
    await create(node, pod)
    pod = await wait_for(node, "init", lambda p: conditions(p).get("Ready") == "True")
    inits = statuses(pod, "initContainerStatuses")
    assert [s["name"] for s in pod["status"]["initContainerStatuses"]] == ["first", "second"]
    assert all(s["state"]["terminated"]["exitCode"] == 0 for s in inits.values())
    assert conditions(pod)["Initialized"] == "True"
    assert statuses(pod)["app"]["restartCount"] == 0
    created = [m for _, r, m in node.recorder.events if r == "Created"]
    assert created == ["Created container first", "Created container second", "Created container app"]


async def test_a_memory_hog_over_its_limit_is_oom_killed(node: Node) -> None:
    hog = container(
        "hog",
        [PYTHON, "-c", "import time; x = b'a' * 200_000_000; time.sleep(5)"],
        resources={"limits": {"memory": "20Mi"}},
    )
    await create(node, pod_manifest("hog", [hog], restartPolicy="Never"))
    pod = await wait_for(node, "hog", lambda p: p["status"].get("phase") == "Failed")
    terminated = statuses(pod)["hog"]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137


async def test_deleting_a_pod_kills_its_processes_within_the_grace_period_and_removes_it(node: Node) -> None:
    await create(node, pod_manifest("doomed", [container("c", ["sleep", "300"])], terminationGracePeriodSeconds=1))
    await wait_for(node, "doomed", lambda p: p["status"].get("phase") == "Running")
    container_id = node.manager.find_container("default", "doomed", "c")
    assert container_id is not None
    pid = (await node.runtime.container_status(container_id)).pid
    assert pid is not None and not gone(pid)
    await node.client.delete(PODS, "doomed", "default")
    async with asyncio.timeout(WAIT):
        while True:
            try:
                await node.client.get(PODS, "doomed", "default")
            except ApiError as exc:
                assert exc.code == 404
                break
            await asyncio.sleep(0.05)
    assert gone(pid)
    assert ("Normal", "Killing", "Stopping container c") in node.recorder.events
    assert await node.runtime.list_pod_sandboxes() == []

    async def no_pods() -> bool:
        return node.manager.pod_count() == 0

    await until(no_pods)


async def test_a_pod_removed_from_the_api_is_killed_at_once(node: Node) -> None:
    await create(node, pod_manifest("forced", [container("c", ["sleep", "300"])], terminationGracePeriodSeconds=60))
    await wait_for(node, "forced", lambda p: p["status"].get("phase") == "Running")
    container_id = node.manager.find_container("default", "forced", "c")
    assert container_id is not None
    pid = (await node.runtime.container_status(container_id)).pid
    assert pid is not None
    await node.client.delete(PODS, "forced", "default", grace_period_seconds=0)

    async def cleaned_up() -> bool:
        return gone(pid) and not await node.runtime.list_pod_sandboxes()

    await until(cleaned_up)


async def test_a_restarted_manager_adopts_running_containers(node: Node, cgroup_root: str) -> None:
    await create(node, pod_manifest("keep", [container("c", ["sleep", "300"])]))
    await wait_for(node, "keep", lambda p: conditions(p).get("Ready") == "True")
    container_id = node.manager.find_container("default", "keep", "c")
    assert container_id is not None
    pid = (await node.runtime.container_status(container_id)).pid
    # a stale sandbox of a pod that is no longer bound here is removed at start-up
    from kubelite.agent.runtime.interface import PodSandboxConfig

    stale = await node.runtime.run_pod_sandbox(
        PodSandboxConfig(uid="gone", name="gone", namespace="default", labels={"io.kubernetes.pod.uid": "gone"})
    )
    await stop_manager(node.manager, node.task, stop_pods=False)
    # the agent restarts: a new runtime instance over the same state, a new manager
    await node.runtime.close()
    node.runtime = ProcessRuntime(node.runtime.root_dir, isolated=True, cgroup_root=cgroup_root)
    await node.runtime.start()
    node.recorder.events.clear()
    parts = {
        "client": node.client,
        "runtime": node.runtime,
        "recorder": node.recorder,
        "tmp": node.tmp,
        "clock": node.clock,
    }
    node.manager, node.task = await start_manager(parts)
    assert node.manager.find_container("default", "keep", "c") == container_id
    status = await node.runtime.container_status(container_id)
    assert status.pid == pid and not gone(pid)
    pod = await wait_for(node, "keep", lambda p: conditions(p).get("Ready") == "True")
    assert statuses(pod)["c"]["restartCount"] == 0
    assert statuses(pod)["c"]["containerID"] == f"process://{container_id}"
    assert "Created" not in node.recorder.reasons()
    assert stale not in {s.id for s in await node.runtime.list_pod_sandboxes()}


async def test_agent_shutdown_stops_every_container_and_the_next_agent_restarts_them(
    node: Node, cgroup_root: str
) -> None:
    await create(node, pod_manifest("svc", [container("c", ["sleep", "300"])], terminationGracePeriodSeconds=1))
    await wait_for(node, "svc", lambda p: p["status"].get("phase") == "Running")
    container_id = node.manager.find_container("default", "svc", "c")
    assert container_id is not None
    pid = (await node.runtime.container_status(container_id)).pid
    assert pid is not None
    await stop_manager(node.manager, node.task, stop_pods=True)
    assert gone(pid)
    await node.runtime.close()
    node.runtime = ProcessRuntime(node.runtime.root_dir, isolated=True, cgroup_root=cgroup_root)
    await node.runtime.start()
    parts = {
        "client": node.client,
        "runtime": node.runtime,
        "recorder": node.recorder,
        "tmp": node.tmp,
        "clock": node.clock,
    }
    node.manager, node.task = await start_manager(parts)
    pod = await wait_for(
        node,
        "svc",
        lambda p: (
            (statuses(p).get("c") or {}).get("state", {}).get("running") is not None
            and statuses(p)["c"]["restartCount"] == 1
        ),
    )
    assert statuses(pod)["c"]["containerID"] != f"process://{container_id}"


async def test_a_failing_post_start_hook_kills_the_container(node: Node) -> None:
    hooked = container("c", ["sleep", "300"], lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "exit 1"]}}})
    await create(node, pod_manifest("hooked", [hooked], restartPolicy="Never", terminationGracePeriodSeconds=1))
    pod = await wait_for(node, "hooked", lambda p: p["status"].get("phase") == "Failed")
    assert statuses(pod)["c"]["state"]["terminated"]["exitCode"] == 137
    assert "FailedPostStartHook" in node.recorder.reasons()


async def test_pre_stop_hook_runs_before_the_container_is_stopped(node: Node) -> None:
    marker = node.tmp / "pre-stop-ran"
    hooked = container("c", ["sleep", "300"], lifecycle={"preStop": {"exec": {"command": ["touch", str(marker)]}}})
    await create(node, pod_manifest("graceful", [hooked], terminationGracePeriodSeconds=2))
    await wait_for(node, "graceful", lambda p: p["status"].get("phase") == "Running")
    await node.client.delete(PODS, "graceful", "default")

    async def deleted() -> bool:
        return not node.client.objects(PODS)

    await until(deleted)
    assert marker.exists()


async def test_status_writes_are_retried_after_failures(node: Node) -> None:
    from kubelite.client.errors import TransportError

    node.client.inject_error("patch", TransportError("connection reset"), resource=PODS, times=2)
    await create(node, pod_manifest("flaky", [container("c", ["sleep", "300"])]))
    await wait_for(node, "flaky", lambda p: conditions(p).get("Ready") == "True")


class ScriptedProber:
    """Stands in for `probes.Prober` where a test needs a probe outcome at a chosen moment: each kind
    follows `SCRIPT[kind]`, a list of (seconds to wait, ok) steps, reported as the real prober would."""

    SCRIPT: dict[str, list[tuple[float, bool]]] = {}
    started: list[str] = []

    def __init__(self, kind: str, probe: dict[str, Any], ctx: Any, *, clock: Any, on_change: Any, on_failure: Any):
        self.kind, self.on_change, self.on_failure = kind, on_change, on_failure

    async def run(self) -> None:
        ScriptedProber.started.append(self.kind)
        for delay, ok in self.SCRIPT.get(self.kind, []):
            await asyncio.sleep(delay)
            if not ok:
                self.on_failure("scripted failure")
            self.on_change(ok)
        await asyncio.get_running_loop().create_future()


@pytest.fixture
def scripted_probes(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedProber]:
    from kubelite.agent.pods import probing

    ScriptedProber.SCRIPT, ScriptedProber.started = {}, []
    monkeypatch.setattr(probing, "Prober", ScriptedProber)
    return ScriptedProber


EXEC_PROBE = {"exec": {"command": ["true"]}}


async def test_a_liveness_failure_kills_and_restarts_the_container(
    node: Node, scripted_probes: type[ScriptedProber]
) -> None:
    scripted_probes.SCRIPT = {"liveness": [(0.2, False)]}
    app = container("c", ["sleep", "300"], livenessProbe=EXEC_PROBE)
    await create(node, pod_manifest("sick", [app], terminationGracePeriodSeconds=1))
    pod = await wait_for(node, "sick", lambda p: (statuses(p).get("c") or {}).get("restartCount", 0) >= 1)
    assert statuses(pod)["c"]["lastState"]["terminated"]["exitCode"] == 137  # sleep ignores SIGTERM as PID 1
    assert ("Normal", "Killing", "Container c failed liveness probe, will be restarted") in node.recorder.events
    assert ("Warning", "Unhealthy", "Liveness probe failed: scripted failure") in node.recorder.events


async def test_startup_gates_readiness_and_readiness_drives_ready(
    node: Node, scripted_probes: type[ScriptedProber]
) -> None:
    scripted_probes.SCRIPT = {"startup": [(0.5, True)], "readiness": [(0.3, True), (0.5, False)]}
    app = container("c", ["sleep", "300"], startupProbe=EXEC_PROBE, readinessProbe=EXEC_PROBE)
    await create(node, pod_manifest("gated", [app]))
    pod = await wait_for(node, "gated", lambda p: p["status"].get("phase") == "Running")
    c = statuses(pod)["c"]
    if not c["started"]:
        assert scripted_probes.started == ["startup"]
        assert c["ready"] is False
    pod = await wait_for(node, "gated", lambda p: statuses(p)["c"]["ready"] is True)
    assert statuses(pod)["c"]["started"] is True
    assert scripted_probes.started == ["startup", "readiness"]
    pod = await wait_for(node, "gated", lambda p: statuses(p)["c"]["ready"] is False)
    assert conditions(pod)["Ready"] == "False"
    assert conditions(pod)["ContainersReady"] == "False"
    assert statuses(pod)["c"]["restartCount"] == 0


async def test_a_new_image_restarts_the_container(node: Node) -> None:
    await create(node, pod_manifest("upgrade", [container("c", ["sleep", "300"])], terminationGracePeriodSeconds=1))
    await wait_for(node, "upgrade", lambda p: conditions(p).get("Ready") == "True")
    upgraded = [container("c", ["sleep", "300"]) | {"image": "busybox:1.37"}]
    await node.client.patch(PODS, "upgrade", {"spec": {"containers": upgraded}}, "default")
    pod = await wait_for(
        node,
        "upgrade",
        lambda p: (
            statuses(p)["c"]["image"] == "busybox:1.37"
            and statuses(p)["c"]["restartCount"] == 1
            and "running" in statuses(p)["c"]["state"]
        ),
    )
    assert ("Normal", "Killing", "Container c definition changed, will be restarted") in node.recorder.events
    assert "waiting" not in statuses(pod)["c"]["state"]


async def test_events_reach_the_api_through_the_real_event_recorder(tmp_path: Path, cgroup_root: str) -> None:
    from kubelite.client.events import EventRecorder

    client = FakeClient()
    runtime = ProcessRuntime(tmp_path / "runtime", isolated=True, cgroup_root=cgroup_root)
    await runtime.start()
    recorder = EventRecorder(client, "kubelet", NODE)
    writer = asyncio.create_task(recorder.run())
    parts = {"client": client, "runtime": runtime, "recorder": recorder, "tmp": tmp_path, "clock": RealClock()}
    manager, task = await start_manager(parts)
    node = Node(client, runtime, Recorder(), manager, task, tmp_path, RealClock())
    try:
        await create(node, pod_manifest("evented", [container("app", ["sleep", "300"])]))
        await wait_for(node, "evented", lambda p: p["status"].get("phase") == "Running")
        async with asyncio.timeout(WAIT):
            await recorder.flush()
        events = {e["reason"]: e for e in client.objects(builtin("", "events"))}
        started = events["Started"]
        assert started["message"] == "Started container app"
        assert started["involvedObject"]["name"] == "evented"
        assert started["involvedObject"]["fieldPath"] == "spec.containers{app}"
        assert started["source"] == {"component": "kubelet", "host": NODE}
    finally:
        await stop_manager(manager, task, stop_pods=True)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        for sandbox in await runtime.list_pod_sandboxes():
            await runtime.remove_pod_sandbox(sandbox.id)
        await runtime.close()
