"""ProcessRuntime without isolation (works without root): the runtime contract, plus what unisolated
mode means — host namespaces, a note for the node's conditions, the process group as the unit."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubelite.agent.runtime import procfs
from kubelite.agent.runtime.interface import (
    ContainerConfig,
    ContainerState,
    PodSandboxConfig,
    Runtime,
    UnsupportedError,
)
from kubelite.agent.runtime.process import ProcessRuntime
from kubelite.testing.runtime_contract import HANG_TIMEOUT, RuntimeContract, parse_cri_log, wait_for_log

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the process runtime needs Linux (/proc, pidfd)")


class TestUnisolatedProcessRuntime(RuntimeContract):
    @pytest.fixture
    async def runtime(self, tmp_path: Path) -> AsyncIterator[Runtime]:
        runtime = ProcessRuntime(tmp_path / "runtime", isolated=False)
        await runtime.start()
        try:
            yield runtime
        finally:
            for sandbox in await runtime.list_pod_sandboxes():
                await runtime.remove_pod_sandbox(sandbox.id)
            await runtime.close()


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    runtime = ProcessRuntime(tmp_path / "runtime", isolated=False, log_max_bytes=4096)
    await runtime.start()
    try:
        yield runtime
    finally:
        for sandbox in await runtime.list_pod_sandboxes():
            await runtime.remove_pod_sandbox(sandbox.id)
        await runtime.close()


async def run_pod(runtime: ProcessRuntime, tmp_path: Path) -> str:
    return await runtime.run_pod_sandbox(
        PodSandboxConfig(uid="uid-1", name="pod-a", namespace="default", log_directory=str(tmp_path / "logs"))
    )


async def test_unisolated_mode_says_so_and_shares_the_host_pid_namespace(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    assert runtime.isolation_note is not None and "unisolated" in runtime.isolation_note
    sandbox = await run_pod(runtime, tmp_path)
    container = await runtime.create_container(
        sandbox, ContainerConfig(name="c", command=["sh", "-c", 'echo "$$ $HOSTNAME"'])
    )
    await runtime.start_container(container)
    status = await runtime.wait_container(container)
    assert status.exit_code == 0
    [(_, _, _, line)] = parse_cri_log(runtime.container_log_path(container))
    pid, hostname = line.split()
    assert int(pid) > 1 and hostname == "pod-a"


async def test_a_network_namespace_needs_isolation(runtime: ProcessRuntime) -> None:
    with pytest.raises(UnsupportedError):
        await runtime.run_pod_sandbox(
            PodSandboxConfig(uid="u", name="p", namespace="default", netns_path="/run/netns/x")
        )


@pytest.mark.skipif(os.geteuid() == 0, reason="as root, isolation is possible")
def test_asking_for_isolation_without_root_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError):
        ProcessRuntime(tmp_path, isolated=True)


async def test_stop_kills_the_process_group_with_its_background_children(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    sandbox = await run_pod(runtime, tmp_path)
    container = await runtime.create_container(
        sandbox, ContainerConfig(name="c", command=["sh", "-c", "sleep 600 & echo bg=$!; wait"])
    )
    await runtime.start_container(container)
    await wait_for_log(runtime, container, "bg=")
    [(_, _, _, line)] = parse_cri_log(runtime.container_log_path(container))
    background = int(line.removeprefix("bg="))
    await runtime.stop_container(container, 5)
    assert (await runtime.container_status(container)).state == ContainerState.EXITED
    assert procfs.start_time(background) is None  # gone, or a zombie waiting for the host's init


async def test_logs_rotate_by_size_keeping_one_old_file(runtime: ProcessRuntime, tmp_path: Path) -> None:
    sandbox = await run_pod(runtime, tmp_path)
    script = 'i=0; while [ $i -lt 300 ]; do echo "line $i $(printf %040d 0)"; i=$((i+1)); done'
    container = await runtime.create_container(sandbox, ContainerConfig(name="c", command=["sh", "-c", script]))
    await runtime.start_container(container)
    async with asyncio.timeout(HANG_TIMEOUT):
        await runtime.wait_container(container)
    path = runtime.container_log_path(container)
    rotated = Path(f"{path}.1")
    assert rotated.exists() and not Path(f"{path}.2").exists()
    assert path.stat().st_size <= 4096 and rotated.stat().st_size <= 4096
    old, new = parse_cri_log(rotated), parse_cri_log(path)
    numbers = [int(content.split()[1]) for *_, content in old + new]
    assert numbers == list(range(numbers[0], 300))  # contiguous, newest last, nothing torn
