"""The contract every container `Runtime` passes: one suite, run against the process runtime (isolated
and not) and later containerd and the simulated runtime.

Subclass `RuntimeContract` in a test module and provide the `runtime` fixture (a started runtime; the
suite removes every sandbox it makes).  Commands are plain POSIX tools (``sh``, ``sleep``, ``cat``,
``stty``); a runtime with images overrides `container_config` to add one that has them::

    class TestProcessRuntime(RuntimeContract):
        @pytest.fixture
        async def runtime(self, tmp_path) -> AsyncIterator[Runtime]:
            async with ProcessRuntime(tmp_path / "runtime") as runtime:
                yield runtime

The suite uses nothing but the `Runtime` protocol.  What it checks is listed in
`kubelite.agent.runtime.interface`.  Timeouts only turn a hang into a failure; the one timing
assertion is that a stop honours its grace period (generously bounded).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.runtime.interface import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    InvalidStateError,
    Mount,
    NotFoundError,
    PodSandboxConfig,
    Runtime,
    SandboxState,
    StartError,
)

__all__ = ["CRI_LINE", "HANG_TIMEOUT", "RuntimeContract", "parse_cri_log", "wait_for_log"]

HANG_TIMEOUT = 20.0
CRI_LINE = re.compile(r"^(?P<time>\S+) (?P<stream>stdout|stderr) (?P<tag>[FP]) (?P<content>.*)$")


def parse_cri_log(path: Path) -> list[tuple[str, str, str, str]]:
    """(timestamp, stream, tag, content) for each line; fails the test on a malformed line."""
    records = []
    for line in path.read_text().splitlines():
        match = CRI_LINE.match(line)
        assert match, f"not a CRI log line: {line!r}"
        records.append((match["time"], match["stream"], match["tag"], match["content"]))
    return records


def parse_timestamp(value: str) -> datetime:
    """RFC 3339 with up to nine fractional digits (Python parses six)."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z", value)
    assert match, f"not an RFC 3339 UTC timestamp: {value!r}"
    fraction = (match[2] or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{match[1]}.{fraction}+00:00")


async def wait_for_log(runtime: Runtime, container_id: str, text: str, *, timeout: float = HANG_TIMEOUT) -> None:
    """Wait until the container's log contains `text` (tests only: checks every 20 ms)."""
    path = runtime.container_log_path(container_id)
    async with asyncio.timeout(timeout):
        while not (path.exists() and text in path.read_text()):  # noqa: ASYNC110 (polling a file, tests only)
            await asyncio.sleep(0.02)


class RuntimeContract:
    """The `Runtime` contract as tests; see the module docstring.  Runtimes that make bind mounts also
    take `MountContract` (the unisolated process runtime cannot)."""

    @pytest.fixture
    async def runtime(self) -> AsyncIterator[Runtime]:
        raise NotImplementedError("a runtime's test class provides the runtime fixture")
        yield  # pragma: no cover

    @pytest.fixture
    async def sandbox(self, runtime: Runtime, tmp_path: Path) -> AsyncIterator[str]:
        sandbox_id = await runtime.run_pod_sandbox(self.sandbox_config(tmp_path))
        try:
            yield sandbox_id
        finally:
            await runtime.remove_pod_sandbox(sandbox_id)

    def sandbox_config(self, tmp_path: Path, **overrides: Any) -> PodSandboxConfig:
        values: dict[str, Any] = {
            "uid": uuid.uuid4().hex,
            "name": "contract-pod",
            "namespace": "default",
            "log_directory": str(tmp_path / "pod-logs"),
        }
        values.update(overrides)
        return PodSandboxConfig(**values)

    def container_config(self, name: str, command: list[str], **overrides: Any) -> ContainerConfig:
        """Override to add an image (or rootfs) that has ``sh``, ``sleep``, ``cat`` and ``stty``."""
        return ContainerConfig(name=name, command=command, **overrides)

    async def started(self, runtime: Runtime, sandbox: str, name: str, command: list[str], **overrides: Any) -> str:
        container_id = await runtime.create_container(sandbox, self.container_config(name, command, **overrides))
        await runtime.start_container(container_id)
        return container_id

    async def run_to_end(
        self, runtime: Runtime, sandbox: str, command: list[str], **overrides: Any
    ) -> tuple[str, ContainerStatus]:
        container_id = await self.started(runtime, sandbox, "once", command, **overrides)
        async with asyncio.timeout(HANG_TIMEOUT):
            return container_id, await runtime.wait_container(container_id)

    # lifecycle and status

    async def test_container_is_created_then_running_after_start(self, runtime: Runtime, sandbox: str) -> None:
        config = self.container_config("app", ["sleep", "600"], attempt=2, labels={"k": "v"})
        container_id = await runtime.create_container(sandbox, config)
        status = await runtime.container_status(container_id)
        assert (status.state, status.name, status.attempt, status.labels) == (
            ContainerState.CREATED,
            "app",
            2,
            {"k": "v"},
        )
        assert status.sandbox_id == sandbox and status.started_at is None
        await runtime.start_container(container_id)
        status = await runtime.container_status(container_id)
        assert status.state == ContainerState.RUNNING
        assert status.started_at is not None and status.started_at >= status.created_at
        assert status.exit_code is None

    async def test_exit_zero_is_completed(self, runtime: Runtime, sandbox: str) -> None:
        _, status = await self.run_to_end(runtime, sandbox, ["sh", "-c", "exit 0"])
        assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 0, "Completed")
        assert status.finished_at is not None and status.started_at is not None
        assert status.finished_at >= status.started_at

    async def test_nonzero_exit_is_error_with_its_code(self, runtime: Runtime, sandbox: str) -> None:
        _, status = await self.run_to_end(runtime, sandbox, ["sh", "-c", "exit 3"])
        assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 3, "Error")

    async def test_wait_returns_when_the_container_exits(self, runtime: Runtime, sandbox: str) -> None:
        container_id = await self.started(runtime, sandbox, "short", ["sleep", "0.3"])
        waiter = asyncio.create_task(runtime.wait_container(container_id))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        async with asyncio.timeout(HANG_TIMEOUT):
            status = await waiter
        assert status.exit_code == 0

    async def test_starting_twice_is_an_invalid_state(self, runtime: Runtime, sandbox: str) -> None:
        container_id = await self.started(runtime, sandbox, "app", ["sleep", "600"])
        with pytest.raises(InvalidStateError):
            await runtime.start_container(container_id)

    async def test_missing_executable_is_a_start_error(self, runtime: Runtime, sandbox: str) -> None:
        container_id = await runtime.create_container(
            sandbox, self.container_config("broken", ["no-such-command-kubelite"])
        )
        with pytest.raises(StartError):
            await runtime.start_container(container_id)
        status = await runtime.container_status(container_id)
        assert (status.state, status.reason) == (ContainerState.EXITED, "StartError")
        assert "no-such-command-kubelite" in status.message

    async def test_unknown_ids_are_not_found_but_stop_and_remove_are_idempotent(self, runtime: Runtime) -> None:
        with pytest.raises(NotFoundError):
            await runtime.container_status("no-such-container")
        with pytest.raises(NotFoundError):
            await runtime.start_container("no-such-container")
        with pytest.raises(NotFoundError):
            await runtime.pod_sandbox_status("no-such-sandbox")
        await runtime.stop_container("no-such-container", 1)
        await runtime.remove_container("no-such-container")
        await runtime.stop_pod_sandbox("no-such-sandbox")
        await runtime.remove_pod_sandbox("no-such-sandbox")

    async def test_list_containers_filters_by_sandbox_and_state(
        self, runtime: Runtime, sandbox: str, tmp_path: Path
    ) -> None:
        other = await runtime.run_pod_sandbox(self.sandbox_config(tmp_path, name="other-pod"))
        try:
            running = await self.started(runtime, sandbox, "running", ["sleep", "600"])
            created = await runtime.create_container(sandbox, self.container_config("created", ["sleep", "1"]))
            elsewhere = await runtime.create_container(other, self.container_config("elsewhere", ["sleep", "1"]))
            ids = {s.id for s in await runtime.list_containers(sandbox_id=sandbox)}
            assert ids == {running, created}
            assert {s.id for s in await runtime.list_containers(state=ContainerState.RUNNING)} >= {running}
            assert created not in {s.id for s in await runtime.list_containers(state=ContainerState.RUNNING)}
            assert elsewhere in {s.id for s in await runtime.list_containers()}
            assert {s.id for s in await runtime.list_pod_sandboxes()} >= {sandbox, other}
        finally:
            await runtime.remove_pod_sandbox(other)

    # stopping

    async def test_stop_sends_sigterm_first(self, runtime: Runtime, sandbox: str) -> None:
        script = 'trap "echo got TERM; exit 0" TERM; echo ready; while true; do sleep 0.05; done'
        container_id = await self.started(runtime, sandbox, "graceful", ["sh", "-c", script])
        await wait_for_log(runtime, container_id, "ready")
        started = time.monotonic()
        await runtime.stop_container(container_id, 15)
        assert time.monotonic() - started < 10
        status = await runtime.container_status(container_id)
        assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 0, "Completed")
        assert "got TERM" in runtime.container_log_path(container_id).read_text()

    async def test_stop_kills_what_ignores_sigterm_after_the_timeout(self, runtime: Runtime, sandbox: str) -> None:
        script = 'trap "" TERM; sleep 600 & echo ready; while true; do sleep 0.05; done'
        container_id = await self.started(runtime, sandbox, "stubborn", ["sh", "-c", script])
        await wait_for_log(runtime, container_id, "ready")
        started = time.monotonic()
        await runtime.stop_container(container_id, 0.5)
        elapsed = time.monotonic() - started
        assert 0.4 < elapsed < 0.5 + 5
        status = await runtime.container_status(container_id)
        assert (status.state, status.exit_code) == (ContainerState.EXITED, 137)

    async def test_stop_of_an_exited_container_does_nothing(self, runtime: Runtime, sandbox: str) -> None:
        container_id, status = await self.run_to_end(runtime, sandbox, ["sh", "-c", "exit 4"])
        await runtime.stop_container(container_id, 1)
        assert await runtime.container_status(container_id) == status

    async def test_stop_pod_sandbox_kills_its_containers(self, runtime: Runtime, sandbox: str) -> None:
        container_id = await self.started(runtime, sandbox, "app", ["sleep", "600"])
        await runtime.stop_pod_sandbox(sandbox)
        assert (await runtime.container_status(container_id)).state == ContainerState.EXITED
        assert (await runtime.pod_sandbox_status(sandbox)).state == SandboxState.NOTREADY
        with pytest.raises(InvalidStateError):
            await runtime.create_container(sandbox, self.container_config("late", ["sleep", "1"]))

    async def test_remove_kills_and_forgets_the_container(self, runtime: Runtime, sandbox: str) -> None:
        container_id = await self.started(runtime, sandbox, "app", ["sleep", "600"])
        waiter = asyncio.create_task(runtime.wait_container(container_id))
        await runtime.remove_container(container_id)
        with pytest.raises(NotFoundError):
            await runtime.container_status(container_id)
        assert container_id not in {s.id for s in await runtime.list_containers()}
        async with asyncio.timeout(HANG_TIMEOUT):
            final = await waiter  # a waiter sees the container end: it was killed
        assert (final.state, final.exit_code) == (ContainerState.EXITED, 137)
        with pytest.raises(NotFoundError):
            await runtime.wait_container(container_id)
        await runtime.remove_container(container_id)

    async def test_remove_pod_sandbox_removes_its_containers(self, runtime: Runtime, tmp_path: Path) -> None:
        sandbox = await runtime.run_pod_sandbox(self.sandbox_config(tmp_path))
        container_id = await self.started(runtime, sandbox, "app", ["sleep", "600"])
        await runtime.remove_pod_sandbox(sandbox)
        with pytest.raises(NotFoundError):
            await runtime.container_status(container_id)
        with pytest.raises(NotFoundError):
            await runtime.pod_sandbox_status(sandbox)

    # logs, environment

    async def test_logs_are_written_in_cri_format(self, runtime: Runtime, sandbox: str) -> None:
        container_id, _ = await self.run_to_end(
            runtime, sandbox, ["sh", "-c", "echo out1; echo err1 >&2; echo 'two  spaces'; printf unterminated"]
        )
        records = parse_cri_log(runtime.container_log_path(container_id))
        assert [(s, t, c) for _, s, t, c in records if s == "stdout"] == [
            ("stdout", "F", "out1"),
            ("stdout", "F", "two  spaces"),
            ("stdout", "F", "unterminated"),
        ]
        assert [(s, t, c) for _, s, t, c in records if s == "stderr"] == [("stderr", "F", "err1")]
        for stamp, *_ in records:
            parse_timestamp(stamp)

    async def test_env_and_working_dir_are_honoured(self, runtime: Runtime, sandbox: str) -> None:
        container_id, status = await self.run_to_end(
            runtime,
            sandbox,
            ["sh", "-c", 'echo "foo=$FOO"; echo "pwd=$(pwd)"'],
            env={"FOO": "bar baz"},
            working_dir="/tmp",
        )
        assert status.exit_code == 0
        contents = [c for *_, c in parse_cri_log(runtime.container_log_path(container_id))]
        assert contents == ["foo=bar baz", "pwd=/tmp"]

    # exec

    async def test_exec_returns_exit_code_and_output(self, runtime: Runtime, sandbox: str) -> None:
        container_id = await self.started(runtime, sandbox, "app", ["sleep", "600"], env={"FOO": "bar"})
        result = await runtime.exec_sync(container_id, ["sh", "-c", 'echo "hi $FOO"; echo oops >&2; exit 7'])
        assert (result.exit_code, result.stdout, result.stderr) == (7, b"hi bar\n", b"oops\n")
        result = await runtime.exec_sync(container_id, ["true"])
        assert result.exit_code == 0

    async def test_exec_passes_stdin(self, runtime: Runtime, sandbox: str) -> None:
        container_id = await self.started(runtime, sandbox, "app", ["sleep", "600"])
        process = await runtime.exec(container_id, ["cat"], stdin=True)
        try:
            assert process.stdin is not None
            process.stdin.write(b"hello\n")
            await process.stdin.drain()
            process.stdin.close()
            output = b""
            async with asyncio.timeout(HANG_TIMEOUT):
                while chunk := await process.stdout.read():
                    output += chunk
                assert await process.wait() == 0
            assert output == b"hello\n"
        finally:
            await process.aclose()

    async def test_exec_with_a_tty_can_be_resized(self, runtime: Runtime, sandbox: str) -> None:
        container_id = await self.started(runtime, sandbox, "app", ["sleep", "600"])
        process = await runtime.exec(container_id, ["sh", "-c", "read x; stty size"], stdin=True, tty=True)
        try:
            assert process.stderr is None and process.stdin is not None
            process.resize(100, 30)
            process.stdin.write(b"go\n")
            await process.stdin.drain()
            output = b""
            async with asyncio.timeout(HANG_TIMEOUT):
                while b"30 100" not in output:
                    chunk = await process.stdout.read()
                    assert chunk, f"end of output before the size was printed: {output!r}"
                    output += chunk
                assert await process.wait() == 0
        finally:
            await process.aclose()

    async def test_exec_in_a_stopped_container_is_an_invalid_state(self, runtime: Runtime, sandbox: str) -> None:
        container_id, _ = await self.run_to_end(runtime, sandbox, ["sh", "-c", "exit 0"])
        with pytest.raises(InvalidStateError):
            await runtime.exec_sync(container_id, ["true"])

    # stats

    async def test_stats_report_usage_of_a_running_container(self, runtime: Runtime, sandbox: str) -> None:
        container_id = await self.started(
            runtime, sandbox, "busy", ["sh", "-c", "i=0; while true; do i=$((i+1)); done"]
        )
        await asyncio.sleep(0.2)
        stats = await runtime.stats(container_id)
        assert stats.container_id == container_id
        assert stats.cpu_usage_ns > 0
        assert stats.memory_usage_bytes >= stats.memory_working_set_bytes > 0


class MountContract(RuntimeContract):
    """Bind mounts (`ContainerConfig.mounts`): what the container sees, and that the host never does."""

    async def test_file_mounted_over_etc_hosts_is_what_the_container_reads(
        self, runtime: Runtime, sandbox: str, tmp_path: Path
    ) -> None:
        hosts = tmp_path / "pod-hosts"
        hosts.write_text("10.42.0.5\tcontract-pod\n")
        before = Path("/etc/hosts").read_bytes()
        mounts = (Mount(str(hosts), "/etc/hosts"),)
        container_id, status = await self.run_to_end(runtime, sandbox, ["cat", "/etc/hosts"], mounts=mounts)
        assert status.exit_code == 0, status.message
        contents = [c for *_, c in parse_cri_log(runtime.container_log_path(container_id))]
        assert contents == ["10.42.0.5\tcontract-pod"]
        assert Path("/etc/hosts").read_bytes() == before  # the host's file is untouched

    async def test_read_only_mount_refuses_writes_and_a_writable_one_reaches_the_source(
        self, runtime: Runtime, sandbox: str, tmp_path: Path
    ) -> None:
        ro_dir, rw_dir, target = tmp_path / "ro", tmp_path / "rw", tmp_path / "target"
        for directory in (ro_dir, rw_dir, target):
            directory.mkdir()
        (ro_dir / "f").write_text("original")
        script = f"echo changed > {target}/f && echo wrote; cat {target}/f"
        mounts = (Mount(str(ro_dir), str(target), readonly=True),)
        container_id, status = await self.run_to_end(runtime, sandbox, ["sh", "-c", script], mounts=mounts)
        contents = [c for *_, c in parse_cri_log(runtime.container_log_path(container_id))]
        assert "wrote" not in contents and "original" in contents
        assert (ro_dir / "f").read_text() == "original"
        mounts = (Mount(str(rw_dir), str(target)),)
        _, status = await self.run_to_end(runtime, sandbox, ["sh", "-c", f"echo hi > {target}/new"], mounts=mounts)
        assert status.exit_code == 0, status.message
        assert (rw_dir / "new").read_text() == "hi\n"
        assert not (target / "new").exists()  # the mount lived in the container's namespace only

    async def test_mount_with_a_missing_source_is_a_start_error(
        self, runtime: Runtime, sandbox: str, tmp_path: Path
    ) -> None:
        config = self.container_config("app", ["true"], mounts=(Mount(str(tmp_path / "nope"), "/etc/hosts"),))
        container_id = await runtime.create_container(sandbox, config)
        with pytest.raises(StartError, match="does not exist"):
            await runtime.start_container(container_id)
        status = await runtime.container_status(container_id)
        assert status.state == ContainerState.EXITED and status.reason == "StartError"

    async def test_missing_mount_targets_are_created_in_the_container_only(
        self, runtime: Runtime, sandbox: str, tmp_path: Path
    ) -> None:
        data, config = tmp_path / "data", tmp_path / "app.conf"
        data.mkdir()
        config.write_text("key=1\n")
        target = f"/kubelite-contract-{uuid.uuid4().hex[:8]}"
        mounts = (Mount(str(data), f"{target}/data"), Mount(str(config), f"{target}/etc/app.conf", readonly=True))
        script = f"echo hi > {target}/data/x && cat {target}/etc/app.conf"
        container_id, status = await self.run_to_end(runtime, sandbox, ["sh", "-c", script], mounts=mounts)
        assert status.exit_code == 0, status.message
        assert [c for *_, c in parse_cri_log(runtime.container_log_path(container_id))] == ["key=1"]
        assert (data / "x").read_text() == "hi\n"
        assert not Path(target).exists()  # created in the container's root, never on the host

    async def test_writes_outside_mounts_never_change_the_host(self, runtime: Runtime, sandbox: str) -> None:
        name = f"kubelite-contract-{uuid.uuid4().hex[:8]}"
        before = sorted(p.name for p in Path("/etc").iterdir())
        script = f"echo x > /etc/{name} && mkdir /{name} && echo y > /{name}/f && rm -f /etc/hostname; cat /etc/{name}"
        container_id, status = await self.run_to_end(runtime, sandbox, ["sh", "-c", script])
        assert status.exit_code == 0, status.message
        assert [c for *_, c in parse_cri_log(runtime.container_log_path(container_id))] == ["x"]
        assert not Path(f"/etc/{name}").exists() and not Path(f"/{name}").exists()
        assert sorted(p.name for p in Path("/etc").iterdir()) == before

    async def test_tmp_is_shared_with_the_host(self, runtime: Runtime, sandbox: str, tmp_path: Path) -> None:
        marker = tmp_path / "from-container"
        _, status = await self.run_to_end(runtime, sandbox, ["sh", "-c", f"echo shared > {marker}"])
        assert status.exit_code == 0, status.message
        assert marker.read_text() == "shared\n"
