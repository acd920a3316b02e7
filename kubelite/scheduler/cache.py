"""The scheduler's cache: NodeInfos kept in step with the node and pod informers, plus assumed pods
(kube-scheduler's internal/cache, reduced).

Contracts:

* `snapshot` is one live `Snapshot`, updated incrementally by every call here — never rebuilt from
  all pods — so a scheduling cycle costs nothing to set up.  Scheduling reads it synchronously
  between two awaits, so it never sees a half-applied change.
* A pod counts on at most one node.  Pods are keyed as `nodeinfo.pod_key` (the UID).  A bound pod
  whose node is not known yet waits aside and counts once the node appears; a deleted node's pods
  wait the same way (upstream keeps an "imaginary" NodeInfo for them).
* `assume(pod, node)` counts a pod the scheduler has just placed, before its binding is visible;
  the informer's bound version `confirm`s it (through `add_pod`/`update_pod`), a failed binding
  `forget`s it.  Assumed pods do not expire (upstream 1.32's default, durationToExpireAssumedPod 0).
* Terminal pods (Succeeded/Failed) do not count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubelite.scheduler.nodeinfo import NodeInfo, PodInfo, Snapshot, is_terminal, pod_key


def assigned_node(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


class SchedulerCache:
    """See the module docstring.  Not thread-safe: one owner on one event loop."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self._where: dict[str, str] = {}  # pod key → node name it counts on (or waits for)
        self._waiting: dict[str, dict[str, PodInfo]] = {}  # node name → pods bound to an unknown node
        self._assumed: set[str] = set()

    # -- nodes --------------------------------------------------------------------------------------

    def add_node(self, node: Mapping[str, Any]) -> NodeInfo:
        """A node appeared or changed; its NodeInfo keeps the pods already counted on it."""
        name = str((node.get("metadata") or {}).get("name") or "")
        info = self.snapshot.get(name)
        if info is not None:
            info.set_node(node)
            return info
        info = NodeInfo(node)
        for pod in self._waiting.pop(name, {}).values():
            info.add_pod(pod)
        self.snapshot.add_node(info)
        return info

    update_node = add_node

    def remove_node(self, name: str) -> None:
        """The node is gone; pods still bound to it wait aside until they are deleted too."""
        info = self.snapshot.remove_node(name)
        if info is not None and info.pods:
            self._waiting[name] = dict(info.pods)

    # -- pods ---------------------------------------------------------------------------------------

    def add_pod(self, pod: Mapping[str, Any]) -> None:
        """A bound pod as the informer shows it (also confirms an assumed pod)."""
        key = pod_key(pod)
        node = assigned_node(pod)
        self._assumed.discard(key)
        if not node or is_terminal(pod):
            self._remove(key)
            return
        if self._where.get(key, node) != node:
            self._remove(key)  # assumed elsewhere, or moved: count it where the API says
        self._place(PodInfo(pod), node)

    update_pod = add_pod

    def remove_pod(self, pod: Mapping[str, Any]) -> None:
        key = pod_key(pod)
        self._assumed.discard(key)
        self._remove(key)

    def assume(self, pod: PodInfo, node: str) -> None:
        """Count `pod` on `node` now (the binding is on its way).  KeyError if `node` is unknown."""
        if self.snapshot.get(node) is None:
            raise KeyError(node)
        self._remove(pod.key)
        self._place(pod, node)
        self._assumed.add(pod.key)

    def forget(self, pod: PodInfo | Mapping[str, Any]) -> None:
        """Undo `assume` (the binding failed); a pod the informer already confirmed stays."""
        key = pod.key if isinstance(pod, PodInfo) else pod_key(pod)
        if key in self._assumed:
            self._assumed.discard(key)
            self._remove(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def node_of(self, key: str) -> str | None:
        return self._where.get(key)

    @property
    def pod_count(self) -> int:
        return len(self._where)

    # -- internals ----------------------------------------------------------------------------------

    def _place(self, pod: PodInfo, node: str) -> None:
        self._where[pod.key] = node
        info = self.snapshot.get(node)
        if info is not None:
            info.add_pod(pod)
        else:
            self._waiting.setdefault(node, {})[pod.key] = pod

    def _remove(self, key: str) -> None:
        node = self._where.pop(key, None)
        if node is None:
            return
        info = self.snapshot.get(node)
        if info is not None:
            found = info.pods.get(key)
            if found is not None:
                info.remove_pod(found)
            return
        waiting = self._waiting.get(node)
        if waiting is not None:
            waiting.pop(key, None)
            if not waiting:
                del self._waiting[node]


__all__ = ["SchedulerCache", "assigned_node"]
