"""The scheduling framework's vocabulary: `Status`, the plugin protocols, and (re-exported) the
cluster view plugins read (`PodInfo`, `NodeInfo`, `Snapshot`) and pod resource accounting.

Modelled on kube-scheduler's framework/interface.go, reduced to what a pure scheduler needs:

* Expected outcomes are `Status` values, never exceptions.  A filter that rejects a node returns
  `Unschedulable` (preemption might help) or `UnschedulableAndUnresolvable` (it cannot), with
  upstream's reason strings; `Error` means the plugin itself failed.
* Plugins are small classes with a `NAME` and pure methods.  They see a `PodInfo` (the pod dict
  plus what is derived from it once) and a `NodeInfo`; they never do I/O and never mutate either.
* Extension points: `pre_filter` (once per pod: narrow the nodes, or Skip the plugin's filter),
  `filter` (per node), `pre_score` (once: Skip the plugin's scoring), `score` (per feasible node,
  0–100) and `normalize_scores` (once, over all feasible nodes).  A plugin implements only the
  ones it needs; the algorithm checks which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from kubelite.scheduler.nodeinfo import HostPortInfo, NodeInfo, PodInfo, Snapshot, as_pod_info, pod_key, pod_priority
from kubelite.scheduler.resources import Resource, pod_non_zero_request, pod_requests, pod_resource_request

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0


class Code(StrEnum):
    """framework.Code; the values are upstream's String() forms."""

    SUCCESS = "Success"
    ERROR = "Error"
    UNSCHEDULABLE = "Unschedulable"
    UNSCHEDULABLE_AND_UNRESOLVABLE = "UnschedulableAndUnresolvable"
    SKIP = "Skip"


@dataclass(frozen=True, slots=True)
class Status:
    """The outcome of running a plugin: a code, the reasons users see, and the plugin's name."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE, reasons, plugin)

    @classmethod
    def unresolvable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)

    @classmethod
    def error(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.ERROR, reasons, plugin)

    @property
    def is_success(self) -> bool:
        return self.code is Code.SUCCESS

    @property
    def is_skip(self) -> bool:
        return self.code is Code.SKIP

    @property
    def is_rejected(self) -> bool:
        """Unschedulable or UnschedulableAndUnresolvable (upstream's IsRejected)."""
        return self.code is Code.UNSCHEDULABLE or self.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE

    def message(self) -> str:
        return ", ".join(self.reasons)

    def with_plugin(self, plugin: str) -> Status:
        return self if self.plugin == plugin else Status(self.code, self.reasons, plugin)


SUCCESS = Status()
SKIP = Status(Code.SKIP)


@dataclass(frozen=True, slots=True)
class PreFilterResult:
    """What `pre_filter` returns: `node_names` None means every node is still eligible; a set
    restricts the nodes filters run on.  A Skip status skips this plugin's `filter` for the pod."""

    node_names: frozenset[str] | None = None
    status: Status = SUCCESS


PRE_FILTER_OK = PreFilterResult()
PRE_FILTER_SKIP = PreFilterResult(status=SKIP)


@runtime_checkable
class FilterPlugin(Protocol):
    """Decides whether the pod can run on one node."""

    @property
    def NAME(self) -> str: ...

    def filter(self, pod: PodInfo, node_info: NodeInfo) -> Status: ...


@runtime_checkable
class PreFilterPlugin(Protocol):
    """Runs once per scheduling attempt, before any filter; only filter plugins may have one."""

    @property
    def NAME(self) -> str: ...

    def pre_filter(self, pod: PodInfo, snapshot: Snapshot) -> PreFilterResult: ...


@runtime_checkable
class ScorePlugin(Protocol):
    """Ranks a feasible node, MIN_NODE_SCORE..MAX_NODE_SCORE (before normalisation and weight)."""

    @property
    def NAME(self) -> str: ...

    def score(self, pod: PodInfo, node_info: NodeInfo) -> int: ...


@runtime_checkable
class PreScorePlugin(Protocol):
    """Runs once before a score plugin scores the feasible nodes; Skip means it has nothing to say
    about this pod (all its scores count as 0)."""

    @property
    def NAME(self) -> str: ...

    def pre_score(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status: ...


@runtime_checkable
class NormalizeScorePlugin(Protocol):
    """A score plugin whose raw scores need rescaling across all feasible nodes (in place)."""

    @property
    def NAME(self) -> str: ...

    def normalize_scores(self, pod: PodInfo, scores: list[int]) -> None: ...


def run_filter_plugins(
    filters: Sequence[FilterPlugin], pod: PodInfo, node_info: NodeInfo, *, skip: frozenset[str] = frozenset()
) -> Status:
    """RunFilterPlugins: stop at the first plugin that does not succeed, and return its status
    labelled with the plugin's name.  Only that plugin's reasons reach the user."""
    for plugin in filters:
        if plugin.NAME in skip:
            continue
        status = plugin.filter(pod, node_info)
        if status.code is not Code.SUCCESS:
            return status.with_plugin(plugin.NAME)
    return SUCCESS


__all__ = [
    "MAX_NODE_SCORE",
    "MIN_NODE_SCORE",
    "PRE_FILTER_OK",
    "PRE_FILTER_SKIP",
    "SKIP",
    "SUCCESS",
    "Code",
    "FilterPlugin",
    "HostPortInfo",
    "NodeInfo",
    "NormalizeScorePlugin",
    "PodInfo",
    "PreFilterPlugin",
    "PreFilterResult",
    "PreScorePlugin",
    "Resource",
    "ScorePlugin",
    "Snapshot",
    "Status",
    "as_pod_info",
    "pod_key",
    "pod_non_zero_request",
    "pod_priority",
    "pod_requests",
    "pod_resource_request",
    "run_filter_plugins",
]
