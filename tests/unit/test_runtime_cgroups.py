"""cgroup layout detection, the kubelet's quantity conversions, and the files limits go to (against a
fake hierarchy of plain files, so no root is needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelite.agent.runtime.cgroups import Cgroup, CgroupLayout, cpu_quota, cpu_shares, cpu_weight, parse_mountinfo
from kubelite.agent.runtime.interface import Resources

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
V1_COMOUNTED = """\
25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /sys/fs/cgroup/memory rw,nosuid shared:10 - cgroup cgroup rw,memory
27 24 0:24 / /sys/fs/cgroup/pids rw,nosuid shared:11 - cgroup cgroup rw,pids
"""
ESCAPED = "41 31 0:38 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n"


@pytest.mark.parametrize(
    ("text", "mode", "v1", "unified"),
    [
        (
            HYBRID,
            "hybrid",
            {c: f"/sys/fs/cgroup/{c}" for c in ("cpu", "cpuacct", "memory", "pids")},
            "/sys/fs/cgroup/unified",
        ),
        (UNIFIED, "v2", {}, "/sys/fs/cgroup"),
        (
            V1_COMOUNTED,
            "v1",
            {
                "cpu": "/sys/fs/cgroup/cpu,cpuacct",
                "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                "memory": "/sys/fs/cgroup/memory",
                "pids": "/sys/fs/cgroup/pids",
            },
            None,
        ),
        (ESCAPED, "v2", {}, "/mnt/my cgroup"),
        ("22 1 0:5 / /proc rw - proc proc rw\n", "none", {}, None),
    ],
    ids=["hybrid", "unified", "v1-comounted", "escaped-path", "none"],
)
def test_layout_is_read_from_mountinfo(text: str, mode: str, v1: dict[str, str], unified: str | None) -> None:
    layout = parse_mountinfo(text)
    assert layout.mode == mode
    assert {k: str(v) for k, v in layout.v1.items()} == v1
    assert (str(layout.unified) if layout.unified else None) == unified


def test_comounted_controllers_share_one_directory() -> None:
    group = Cgroup(parse_mountinfo(V1_COMOUNTED), "kubelite/pod1/c1")
    assert [str(p) for p in group.procs_files()] == [
        "/sys/fs/cgroup/cpu,cpuacct/kubelite/pod1/c1/cgroup.procs",
        "/sys/fs/cgroup/memory/kubelite/pod1/c1/cgroup.procs",
        "/sys/fs/cgroup/pids/kubelite/pod1/c1/cgroup.procs",
    ]


@pytest.mark.parametrize(
    ("request_millis", "shares"), [(None, 2), (0, 2), (1, 2), (100, 102), (250, 256), (1000, 1024), (10**6, 262144)]
)
def test_cpu_request_becomes_shares_as_the_kubelet_computes_them(request_millis: int | None, shares: int) -> None:
    assert cpu_shares(request_millis) == shares


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (102, 4), (1024, 39), (262144, 10000)])
def test_shares_map_to_cgroup_v2_weight(shares: int, weight: int) -> None:
    assert cpu_weight(shares) == weight


@pytest.mark.parametrize(("limit_millis", "quota"), [(1, 1000), (200, 20000), (1500, 150000)])
def test_cpu_limit_becomes_a_cfs_quota_of_at_least_one_millisecond(limit_millis: int, quota: int) -> None:
    assert cpu_quota(limit_millis) == quota


def fake_hierarchy(tmp_path: Path, layout: CgroupLayout, path: str, files: list[str]) -> Cgroup:
    group = Cgroup(layout, path)
    for directory in group.distinct_dirs():
        directory.mkdir(parents=True)
        for name in files:
            (directory / name).touch()
    return group


RESOURCES = Resources(cpu_request_millis=100, cpu_limit_millis=200, memory_limit_bytes=64 << 20, pids_limit=20)


def test_v1_limits_go_to_the_v1_files(tmp_path: Path) -> None:
    layout = CgroupLayout(mode="v1", v1={c: tmp_path / c for c in ("memory", "cpu", "cpuacct", "pids")})
    files = ["memory.limit_in_bytes", "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "pids.max"]
    group = fake_hierarchy(tmp_path, layout, "k/pod/c", files)
    assert group.apply(RESOURCES) == []
    read = {name: (group.dirs[name.split(".")[0]] / name).read_text() for name in files}
    assert read["memory.limit_in_bytes"] == str(64 << 20)
    assert (read["cpu.shares"], read["cpu.cfs_period_us"], read["cpu.cfs_quota_us"]) == ("102", "100000", "20000")
    assert read["pids.max"] == "20"


def test_v2_limits_go_to_the_unified_files(tmp_path: Path) -> None:
    layout = CgroupLayout(mode="v2", unified=tmp_path, v2_controllers=frozenset({"memory", "cpu", "pids"}))
    files = ["memory.max", "memory.swap.max", "memory.oom.group", "cpu.weight", "cpu.max", "pids.max"]
    group = fake_hierarchy(tmp_path, layout, "k/pod/c", files)
    assert group.apply(RESOURCES) == []
    read = {name: (group.dirs["unified"] / name).read_text() for name in files}
    assert read == {
        "memory.max": str(64 << 20),
        "memory.swap.max": "0",
        "memory.oom.group": "1",
        "cpu.weight": "4",
        "cpu.max": "20000 100000",
        "pids.max": "20",
    }


def test_missing_controllers_are_reported_not_fatal(tmp_path: Path) -> None:
    layout = CgroupLayout(mode="v1", v1={"cpu": tmp_path / "cpu"})
    group = fake_hierarchy(tmp_path, layout, "k/pod/c", ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"])
    assert group.apply(RESOURCES) == ["memory", "pids"]
    assert group.apply(Resources()) == []


def test_oom_kills_are_read_from_the_memory_controller(tmp_path: Path) -> None:
    v1 = fake_hierarchy(tmp_path / "a", CgroupLayout(mode="v1", v1={"memory": tmp_path / "a"}), "c", [])
    (v1.dirs["memory"] / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert v1.oom_kills() == 2
    layout = CgroupLayout(mode="v2", unified=tmp_path / "b", v2_controllers=frozenset({"memory"}))
    v2 = fake_hierarchy(tmp_path / "b", layout, "c", [])
    (v2.dirs["unified"] / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n")
    assert v2.oom_kills() == 1


def test_working_set_leaves_out_inactive_page_cache(tmp_path: Path) -> None:
    group = fake_hierarchy(tmp_path, CgroupLayout(mode="v1", v1={"memory": tmp_path}), "c", [])
    (group.dirs["memory"] / "memory.usage_in_bytes").write_text("10000\n")
    (group.dirs["memory"] / "memory.stat").write_text("cache 5000\ntotal_inactive_file 3000\n")
    assert group.memory_usage() == (10000, 7000)
