"""SchedulerCache: NodeInfos follow informer events incrementally; assumed pods count at once."""

from __future__ import annotations

from typing import Any

from kubelite.scheduler.cache import SchedulerCache
from kubelite.scheduler.nodeinfo import PodInfo


def node(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"}}}


def pod(name: str, node_name: str = "", *, cpu: str = "1", phase: str = "Running") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
    if node_name:
        spec["nodeName"] = node_name
    meta = {"name": name, "namespace": "ns", "uid": f"uid-{name}"}
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def cpu_on(cache: SchedulerCache, name: str) -> int:
    info = cache.snapshot.get(name)
    assert info is not None
    return info.requested.milli_cpu


def test_bound_pods_count_on_their_node_and_leave_on_delete() -> None:
    cache = SchedulerCache()
    cache.add_node(node("n1"))
    cache.add_pod(pod("a", "n1"))
    cache.add_pod(pod("b", "n1", cpu="500m"))
    assert cpu_on(cache, "n1") == 1500
    cache.remove_pod(pod("a", "n1"))
    assert cpu_on(cache, "n1") == 500


def test_pod_seen_before_its_node_counts_once_the_node_appears() -> None:
    cache = SchedulerCache()
    cache.add_pod(pod("a", "n1"))
    assert cache.snapshot.get("n1") is None
    cache.add_node(node("n1"))
    assert cpu_on(cache, "n1") == 1000


def test_deleted_node_keeps_its_pods_aside_until_it_returns() -> None:
    cache = SchedulerCache()
    cache.add_node(node("n1"))
    cache.add_pod(pod("a", "n1"))
    cache.remove_node("n1")
    assert len(cache.snapshot) == 0
    cache.add_node(node("n1"))
    assert cpu_on(cache, "n1") == 1000


def test_node_update_keeps_pods() -> None:
    cache = SchedulerCache()
    cache.add_node(node("n1"))
    cache.add_pod(pod("a", "n1"))
    cache.update_node({**node("n1"), "spec": {"unschedulable": True}})
    info = cache.snapshot.get("n1")
    assert info is not None and info.unschedulable and info.requested.milli_cpu == 1000


def test_assumed_pod_counts_until_forgotten() -> None:
    cache = SchedulerCache()
    cache.add_node(node("n1"))
    info = PodInfo(pod("a"))
    cache.assume(info, "n1")
    assert cache.is_assumed(info.key) and cpu_on(cache, "n1") == 1000
    cache.forget(info)
    assert not cache.is_assumed(info.key) and cpu_on(cache, "n1") == 0


def test_informer_confirmation_moves_an_assumed_pod_to_where_it_was_bound() -> None:
    cache = SchedulerCache()
    cache.add_node(node("n1"))
    cache.add_node(node("n2"))
    cache.assume(PodInfo(pod("a")), "n1")
    cache.add_pod(pod("a", "n2"))  # someone else bound it to n2
    assert (cpu_on(cache, "n1"), cpu_on(cache, "n2")) == (0, 1000)
    assert not cache.is_assumed("uid-a")
    cache.forget(pod("a"))  # a late binding failure does not undo the confirmed pod
    assert cpu_on(cache, "n2") == 1000


def test_terminal_pods_stop_counting() -> None:
    cache = SchedulerCache()
    cache.add_node(node("n1"))
    cache.add_pod(pod("a", "n1"))
    cache.update_pod(pod("a", "n1", phase="Succeeded"))
    assert cpu_on(cache, "n1") == 0
    assert cache.pod_count == 0
