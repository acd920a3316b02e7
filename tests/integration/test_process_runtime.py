"""ProcessRuntime isolated (root only): the runtime contract, and what isolation promises — the pod's
hostname, PID 1 in a pid namespace of its own, cgroup limits and OOM detection, no process outliving
its container, a runtime restart, orphan cleanup, a pod network namespace, a rootfs.

Every test uses its own cgroup root (``kubelite-test-<random>``) and removes it, with anything left in
it, even when the test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kubelite.agent.runtime import procfs
from kubelite.agent.runtime.cgroups import Cgroup, CgroupLayout, detect_layout
from kubelite.agent.runtime.interface import (
    ContainerConfig,
    ContainerState,
    PodSandboxConfig,
    Resources,
    Runtime,
)
from kubelite.agent.runtime.launch import Tools
from kubelite.agent.runtime.namespaces import release_namespace
from kubelite.agent.runtime.process import ProcessRuntime, detect_isolation
from kubelite.testing.runtime_contract import HANG_TIMEOUT, MountContract, parse_cri_log, wait_for_log

_why_not = "not Linux" if sys.platform != "linux" else detect_isolation(Tools.find())
pytestmark = pytest.mark.skipif(_why_not is not None, reason=f"isolated containers need root: {_why_not}")

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def purge_cgroup_root(layout: CgroupLayout, root: str) -> None:
    """Kill everything under `root` in every hierarchy and remove its groups, deepest first."""
    for hierarchy in {p for p in layout.roots().values()}:
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


async def close_runtime(runtime: ProcessRuntime, cgroup_root: str) -> None:
    """Remove every sandbox, then check that the runtime left no cgroup and no mount behind."""
    for sandbox in await runtime.list_pod_sandboxes():
        await runtime.remove_pod_sandbox(sandbox.id)
    await runtime.close()
    assert Cgroup(runtime.cgroup_layout, cgroup_root).children() == set()
    assert str(runtime.root_dir) not in Path("/proc/self/mountinfo").read_text()


class TestIsolatedProcessRuntime(MountContract):
    @pytest.fixture
    async def runtime(self, tmp_path: Path, cgroup_root: str) -> AsyncIterator[Runtime]:
        runtime = ProcessRuntime(tmp_path / "runtime", isolated=True, cgroup_root=cgroup_root)
        await runtime.start()
        try:
            yield runtime
        finally:
            await close_runtime(runtime, cgroup_root)


@pytest.fixture
async def runtime(tmp_path: Path, cgroup_root: str) -> AsyncIterator[ProcessRuntime]:
    runtime = ProcessRuntime(tmp_path / "runtime", isolated=True, cgroup_root=cgroup_root)
    await runtime.start()
    try:
        yield runtime
    finally:
        await close_runtime(runtime, cgroup_root)


@pytest.fixture
async def sandbox(runtime: ProcessRuntime, tmp_path: Path) -> str:
    return await runtime.run_pod_sandbox(
        PodSandboxConfig(uid="uid-1", name="web-0", namespace="default", log_directory=str(tmp_path / "logs"))
    )


async def run(runtime: ProcessRuntime, sandbox: str, command: list[str], **config: object) -> list[str]:
    """Run a container to its end; its log lines."""
    container = await runtime.create_container(sandbox, ContainerConfig(name="c", command=command, **config))  # type: ignore[arg-type]
    await runtime.start_container(container)
    async with asyncio.timeout(HANG_TIMEOUT):
        await runtime.wait_container(container)
    return [content for *_, content in parse_cri_log(runtime.container_log_path(container))]


def container_cgroup(runtime: ProcessRuntime, cgroup_root: str, container: str) -> Cgroup:
    return Cgroup(runtime.cgroup_layout, f"{cgroup_root}/poduid-1/{container}")


def gone(pid: int) -> bool:
    return procfs.start_time(pid) is None  # no such process, or a zombie


# isolation


async def test_isolated_runtime_has_no_note(runtime: ProcessRuntime) -> None:
    assert runtime.isolated and runtime.isolation_note is None
    assert runtime.cgroup_layout.mode in ("v1", "v2", "hybrid")


async def test_hostname_is_the_pod_name(runtime: ProcessRuntime, sandbox: str) -> None:
    assert await run(runtime, sandbox, ["sh", "-c", 'cat /proc/sys/kernel/hostname; echo "$HOSTNAME"']) == [
        "web-0",
        "web-0",
    ]


async def test_command_is_pid_1_and_sees_only_its_own_processes(runtime: ProcessRuntime, sandbox: str) -> None:
    lines = await run(runtime, sandbox, ["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"])
    assert lines[0] == "1"
    assert int(lines[1]) <= 4  # sh, ls, grep, and the subshell


async def test_containers_of_a_pod_share_ipc_but_not_pids(runtime: ProcessRuntime, sandbox: str) -> None:
    namespaces = []
    for name in ("a", "b"):
        container = await runtime.create_container(sandbox, ContainerConfig(name=name, command=["sleep", "600"]))
        await runtime.start_container(container)
        result = await runtime.exec_sync(container, ["readlink", "/proc/1/ns/ipc", "/proc/1/ns/pid"])
        namespaces.append(result.stdout.decode().split())
    (ipc_a, pid_a), (ipc_b, pid_b) = namespaces
    assert ipc_a == ipc_b and pid_a != pid_b
    assert ipc_a != os.readlink("/proc/self/ns/ipc")


# cgroups


async def test_limits_are_written_to_the_cgroup(runtime: ProcessRuntime, sandbox: str, cgroup_root: str) -> None:
    resources = Resources(cpu_request_millis=100, cpu_limit_millis=200, memory_limit_bytes=64 << 20, pids_limit=20)
    container = await runtime.create_container(
        sandbox, ContainerConfig(name="c", command=["sleep", "600"], resources=resources)
    )
    group = container_cgroup(runtime, cgroup_root, container)
    if runtime.cgroup_layout.mode == "v2":
        directory = group.dirs["unified"]
        assert (directory / "cpu.max").read_text().split() == ["20000", "100000"]
        assert (directory / "memory.max").read_text().strip() == str(64 << 20)
        assert (directory / "pids.max").read_text().strip() == "20"
    else:
        assert (group.dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "20000"
        assert (group.dirs["cpu"] / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert (group.dirs["cpu"] / "cpu.shares").read_text().strip() == "102"
        assert (group.dirs["memory"] / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert (group.dirs["pids"] / "pids.max").read_text().strip() == "20"
    await runtime.start_container(container)
    status = await runtime.container_status(container)
    assert status.pid is not None and status.pid in group.pids()


async def test_memory_hog_is_oom_killed(runtime: ProcessRuntime, sandbox: str) -> None:
    container = await runtime.create_container(
        sandbox,
        ContainerConfig(
            name="hog",
            command=[PYTHON, "-c", "x = bytearray(200 * 1024 * 1024)"],
            resources=Resources(memory_limit_bytes=50 << 20),
        ),
    )
    await runtime.start_container(container)
    async with asyncio.timeout(HANG_TIMEOUT):
        status = await runtime.wait_container(container)
    assert (status.exit_code, status.reason) == (137, "OOMKilled")


async def test_pids_limit_blocks_forks(runtime: ProcessRuntime, sandbox: str) -> None:
    script = "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; wait"
    lines = await run(runtime, sandbox, ["sh", "-c", script], resources=Resources(pids_limit=4))
    assert any("fork" in line.lower() or "resource" in line.lower() for line in lines), lines


# no process outlives its container


async def test_background_children_die_when_the_container_is_stopped(
    runtime: ProcessRuntime, sandbox: str, cgroup_root: str
) -> None:
    container = await runtime.create_container(
        sandbox, ContainerConfig(name="c", command=["sh", "-c", "sleep 600 & sleep 601 & echo ready; wait"])
    )
    await runtime.start_container(container)
    await wait_for_log(runtime, container, "ready")
    pids = container_cgroup(runtime, cgroup_root, container).pids()
    assert len(pids) == 3
    await runtime.stop_container(container, 0.2)
    assert all(gone(pid) for pid in pids)


async def test_background_children_die_when_the_main_process_exits(
    runtime: ProcessRuntime, sandbox: str, cgroup_root: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    script = f"sleep 600 & echo ready; while [ ! -e {go} ]; do sleep 0.02; done; exit 0"
    container = await runtime.create_container(sandbox, ContainerConfig(name="c", command=["sh", "-c", script]))
    await runtime.start_container(container)
    await wait_for_log(runtime, container, "ready")
    pids = container_cgroup(runtime, cgroup_root, container).pids()
    go.touch()
    async with asyncio.timeout(HANG_TIMEOUT):
        status = await runtime.wait_container(container)
    assert status.reason == "Completed"
    assert pids and all(gone(pid) for pid in pids)


async def test_an_exec_dies_with_its_container(runtime: ProcessRuntime, sandbox: str) -> None:
    container = await runtime.create_container(sandbox, ContainerConfig(name="c", command=["sleep", "600"]))
    await runtime.start_container(container)
    process = await runtime.exec(container, ["sleep", "600"])
    try:
        await runtime.stop_container(container, 0)
        async with asyncio.timeout(HANG_TIMEOUT):
            assert await process.wait() != 0
    finally:
        await process.aclose()


async def test_exec_runs_in_the_container_namespaces_and_cgroups(
    runtime: ProcessRuntime, sandbox: str, cgroup_root: str
) -> None:
    container = await runtime.create_container(
        sandbox, ContainerConfig(name="c", command=["sleep", "600"], working_dir="/tmp")
    )
    await runtime.start_container(container)
    result = await runtime.exec_sync(container, ["sh", "-c", "hostname; pwd; cat /proc/self/cgroup"])
    hostname, cwd, *cgroups = result.stdout.decode().splitlines()
    assert (hostname, cwd) == ("web-0", "/tmp")
    assert any(line.endswith(f"/{cgroup_root}/poduid-1/{container}") for line in cgroups)


# restart


FIRST_RUNTIME = """
import asyncio, json, sys
from pathlib import Path
from kubelite.agent.runtime.interface import ContainerConfig, PodSandboxConfig
from kubelite.agent.runtime.process import ProcessRuntime
from kubelite.testing.runtime_contract import wait_for_log

async def main(root, cgroup_root, script):
    async with ProcessRuntime(Path(root), isolated=True, cgroup_root=cgroup_root) as runtime:
        sandbox = await runtime.run_pod_sandbox(PodSandboxConfig(uid="uid-1", name="web-0", namespace="default"))
        container = await runtime.create_container(sandbox, ContainerConfig(name="c", command=["sh", "-c", script]))
        await runtime.start_container(container)
        await wait_for_log(runtime, container, "started")
        print(json.dumps({"container": container, "pid": (await runtime.container_status(container)).pid}))

asyncio.run(main(*sys.argv[1:]))
"""


async def start_in_another_process(root: Path, cgroup_root: str, script: str) -> tuple[str, int]:
    """A runtime in its own process starts a container and exits, as an agent that is restarted: the
    container's shim is then nobody's child here."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FIRST_RUNTIME, str(root), cgroup_root, script, stdout=PIPE
    )
    async with asyncio.timeout(HANG_TIMEOUT):
        output, _ = await process.communicate()
    assert process.returncode == 0
    started = json.loads(output)
    return started["container"], started["pid"]


async def test_a_restarted_runtime_takes_over_running_containers(tmp_path: Path, cgroup_root: str) -> None:
    go = tmp_path / "go"
    script = f"echo started; while [ ! -e {go} ]; do sleep 0.02; done; echo after; exec sleep 600"
    container, pid = await start_in_another_process(tmp_path / "runtime", cgroup_root, script)
    assert not gone(pid)
    runtime = ProcessRuntime(tmp_path / "runtime", isolated=True, cgroup_root=cgroup_root)
    await runtime.start()
    try:
        status = await runtime.container_status(container)
        assert (status.state, status.pid) == (ContainerState.RUNNING, pid)
        go.touch()
        await wait_for_log(runtime, container, "after")  # no SIGPIPE meanwhile; the log goes on
        await runtime.stop_container(container, 0)
        status = await runtime.wait_container(container)
        assert (status.state, status.exit_code) == (ContainerState.EXITED, 137)
        assert gone(pid)
        assert [c for *_, c in parse_cri_log(runtime.container_log_path(container))] == ["started", "after"]
    finally:
        await close_runtime(runtime, cgroup_root)


async def test_a_container_that_ended_while_no_runtime_ran_keeps_its_exit_code(
    tmp_path: Path, cgroup_root: str
) -> None:
    go = tmp_path / "go"
    script = f"echo started; while [ ! -e {go} ]; do sleep 0.02; done; exit 3"
    container, _ = await start_in_another_process(tmp_path / "runtime", cgroup_root, script)
    go.touch()
    exit_file = tmp_path / "runtime" / "containers" / container / "exit"  # written by the shim
    async with asyncio.timeout(HANG_TIMEOUT):
        while not exit_file.exists() or not exit_file.read_text().strip():  # noqa: ASYNC110 (polling a file, tests only)
            await asyncio.sleep(0.02)
    runtime = ProcessRuntime(tmp_path / "runtime", isolated=True, cgroup_root=cgroup_root)
    await runtime.start()
    try:
        status = await runtime.container_status(container)
        assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 3, "Error")
    finally:
        await close_runtime(runtime, cgroup_root)


async def test_cleanup_orphans_kills_and_removes_unknown_cgroups(
    runtime: ProcessRuntime, cgroup_root: str, tmp_path: Path
) -> None:
    orphan = Cgroup(runtime.cgroup_layout, f"{cgroup_root}/podgone/abandoned")
    orphan.create()
    joins = "; ".join(f"echo 0 > {path}" for path in orphan.procs_files())
    process = await asyncio.create_subprocess_exec("sh", "-c", f"{joins}; echo joined; exec sleep 600", stdout=PIPE)
    try:
        assert process.stdout is not None
        assert await process.stdout.readline() == b"joined\n"
        stray_state = tmp_path / "runtime" / "containers" / "crashed-mid-create"
        stray_state.mkdir()
        report = await runtime.cleanup_orphans()
        async with asyncio.timeout(HANG_TIMEOUT):
            assert await process.wait() == -signal.SIGKILL
        assert report.killed_processes == 1
        assert set(report.removed_cgroups) == {orphan.path, f"{cgroup_root}/podgone"}
        assert report.removed_containers == ["crashed-mid-create"] and not stray_state.exists()
        assert not any(d.exists() for d in orphan.distinct_dirs())
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()


# network namespace and rootfs


@pytest.fixture
def netns(tmp_path: Path) -> Iterator[Path]:
    """A fresh network namespace (only a loopback device) bound to a file; nothing on the host changes."""
    path = tmp_path / "netns"
    path.touch()
    subprocess.run(["unshare", f"--net={path}", "true"], check=True)
    yield path
    release_namespace(path)


async def test_pod_network_namespace_is_entered(runtime: ProcessRuntime, tmp_path: Path, netns: Path) -> None:
    sandbox = await runtime.run_pod_sandbox(
        PodSandboxConfig(uid="uid-2", name="net-pod", namespace="default", netns_path=str(netns))
    )
    lines = await run(runtime, sandbox, ["sh", "-c", "readlink /proc/self/ns/net; tail -n +3 /proc/net/dev"])
    assert lines[0] == f"net:[{os.stat(netns).st_ino}]"
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["lo"]


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    """A minimal root file system: dash as /bin/sh and the libraries it links."""
    root = tmp_path / "rootfs"
    sh = os.path.realpath(shutil.which("sh") or "/bin/sh")
    (root / "bin").mkdir(parents=True)
    (root / "proc").mkdir()
    shutil.copy2(sh, root / "bin" / "sh")
    for line in subprocess.run(["ldd", sh], capture_output=True, text=True, check=True).stdout.splitlines():
        library = next((part for part in line.split() if part.startswith("/")), None)
        if library:
            target = root / library.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(library, target)
    return root


async def test_a_rootfs_replaces_the_host_file_system(runtime: ProcessRuntime, sandbox: str, rootfs: Path) -> None:
    lines = await run(runtime, sandbox, ["sh", "-c", "echo $$; pwd; echo /*"], rootfs=str(rootfs), working_dir="/bin")
    assert lines[0] == "1" and lines[1] == "/bin"
    assert set(lines[2].split()) <= {"/bin", "/lib", "/lib64", "/proc", "/usr"}
