"""Records survive a JSON round trip; exit reasons; the launch chain's arguments."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubelite.agent.runtime import launch
from kubelite.agent.runtime.container import exit_reason
from kubelite.agent.runtime.interface import (
    ContainerConfig,
    ContainerState,
    PodSandboxConfig,
    Resources,
    SandboxState,
    StartError,
)
from kubelite.agent.runtime.state import ContainerRecord, SandboxRecord, load_json, write_json_atomic

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_container_record_round_trips(tmp_path: Path) -> None:
    record = ContainerRecord(
        id="c1",
        sandbox_id="s1",
        config=ContainerConfig(
            name="app",
            command=("sh", "-c", "echo hi"),
            env={"A": "1"},
            resources=Resources(cpu_limit_millis=200, memory_limit_bytes=1 << 20),
            labels={"l": "v"},
        ),
        log_path="/logs/app/0.log",
        cgroup_path="kubelite/podu/c1",
        state=ContainerState.RUNNING,
        created_at=NOW,
        started_at=NOW,
        shim_pid=10,
        shim_started=1234,
        pid=11,
        pid_started=1235,
    )
    write_json_atomic(tmp_path / "c.json", record.to_json())
    data = load_json(tmp_path / "c.json")
    assert data is not None
    assert ContainerRecord.from_json(data) == record


def test_sandbox_record_round_trips(tmp_path: Path) -> None:
    record = SandboxRecord(
        id="s1",
        config=PodSandboxConfig(uid="u", name="p", namespace="ns", netns_path="/run/netns/p"),
        state=SandboxState.READY,
        created_at=NOW,
        cgroup_parent="kubelite/podu",
        log_directory="/logs",
        namespaces={"uts": "/x/uts"},
    )
    assert SandboxRecord.from_json(record.to_json()) == record
    assert record.status().hostname == "p"


def test_unreadable_records_load_as_none(tmp_path: Path) -> None:
    (tmp_path / "torn.json").write_text('{"id": ')
    assert load_json(tmp_path / "torn.json") is None
    assert load_json(tmp_path / "missing.json") is None


@pytest.mark.parametrize(
    ("exit_code", "oom_kills", "reason"),
    [
        (0, 0, "Completed"),
        (0, 1, "Completed"),
        (1, 0, "Error"),
        (137, 0, "Error"),
        (137, 1, "OOMKilled"),
        (2, 1, "OOMKilled"),
    ],
)
def test_exit_reason(exit_code: int, oom_kills: int, reason: str) -> None:
    assert exit_reason(exit_code, oom_kills) == reason


TOOLS = launch.Tools(
    sh="/bin/sh",
    unshare="/usr/bin/unshare",
    nsenter="/usr/bin/nsenter",
    setsid="/usr/bin/setsid",
    chroot="/usr/sbin/chroot",
    mount="/usr/bin/mount",
)


def test_isolated_chain_enters_the_pod_namespaces_then_makes_its_own() -> None:
    config = ContainerConfig(name="c", command=["sleep", "1"], working_dir="/tmp")
    argv = launch.container_argv(
        TOOLS,
        config,
        isolated=True,
        exit_file=Path("/state/exit"),
        env={"PWD": "/keep"},
        namespaces={"uts": "/s/uts", "ipc": "/s/ipc"},
        netns_path="/run/netns/p",
        procs_files=[Path("/cg/memory/x/cgroup.procs")],
    )
    assert argv[:10] == [
        "/usr/bin/nsenter",
        "--uts=/s/uts",
        "--ipc=/s/ipc",
        "--net=/run/netns/p",
        "--",
        "/usr/bin/unshare",
        "--pid",
        "--mount",
        "--propagation=private",  # bind mounts made inside never reach the host
        "--wd=/tmp",
    ]
    assert argv[10:15] == ["--", "/bin/sh", "-c", launch.SHIM_SCRIPT, "sh"]
    no_binds = "0"
    assert argv[-9:] == [
        "/usr/bin/mount",
        "/proc",
        no_binds,
        "1",
        "/cg/memory/x/cgroup.procs",
        "1",
        "PWD=/keep",
        "sleep",
        "1",
    ]


def test_unisolated_chain_makes_a_session_and_changes_directory() -> None:
    argv = launch.container_argv(
        TOOLS, ContainerConfig(name="c", command=["true"]), isolated=False, exit_file=Path("/e"), env={}
    )
    assert argv[0] == "/bin/sh" and argv[4] == "/e"
    assert argv[5:8] == ["/usr/bin/setsid", "/usr/bin/unshare", "--wd=/"]
    assert argv[-7:] == ["sh", "", "", "0", "0", "0", "true"]  # no /proc, no binds, no cgroups, no env fixes


def test_missing_executable_or_directory_is_refused_before_spawning(tmp_path: Path) -> None:
    env = launch.container_environment(ContainerConfig(name="c", command=["x"]), hostname="h", home="/root")
    assert env["HOSTNAME"] == "h" and env["PATH"] == launch.DEFAULT_PATH
    launch.check_startable(ContainerConfig(name="c", command=["sh"]), env)
    with pytest.raises(StartError, match="executable file not found"):
        launch.check_startable(ContainerConfig(name="c", command=["no-such-binary"]), env)
    with pytest.raises(StartError, match="chdir"):
        launch.check_startable(ContainerConfig(name="c", command=["sh"], working_dir=str(tmp_path / "nope")), env)
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    launch.check_startable(ContainerConfig(name="c", command=["./run.sh"], working_dir=str(tmp_path)), env)
