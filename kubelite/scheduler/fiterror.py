"""Why a pod fits nowhere, and the message users read in the pod's PodScheduled condition and in
its FailedScheduling event (upstream's framework.FitError, Diagnosis and NodeToStatus, 1.32).

The message is byte-for-byte upstream's `FitError.Error()`::

    0/<all nodes> nodes are available:[ <pre-filter message>.][ <histogram>.][ <post-filter message>]

* The histogram counts each reason once per node that gave it, formats each as "<count> <reason>"
  and sorts those strings (Go's sort.Strings: byte order, so "10 x" sorts before "2 y"), joined by
  ", ".  It is left out when a pre-filter plugin rejected the pod (every node would repeat it).
* Nodes without an explicit status (cut out by a pre-filter result) count with the absent status's
  reasons.
* The post-filter (preemption) message is appended after one space and carries its own final
  period — 1.30+ no longer doubles it.
* With no nodes at all there is no FitError upstream but `ErrNoNodesAvailable`; `message()`
  returns its text, "no nodes available to schedule pods".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kubelite.scheduler.framework import Code, Status

NO_NODES_AVAILABLE_MSG = "no nodes available to schedule pods"
NO_NODE_AVAILABLE_FMT = "0/{} nodes are available"

DEFAULT_ABSENT_STATUS = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE)


@dataclass(frozen=True)
class NodeToStatus:
    """Per-node filter statuses; a node not listed has `absent` (UnschedulableAndUnresolvable)."""

    statuses: Mapping[str, Status] = field(default_factory=dict)
    absent: Status = DEFAULT_ABSENT_STATUS

    def get(self, node_name: str) -> Status:
        return self.statuses.get(node_name, self.absent)

    def __len__(self) -> int:
        return len(self.statuses)

    def nodes_with_code(self, code: Code, node_names: Iterable[str]) -> list[str]:
        """NodesForStatusCode: which of `node_names` have exactly `code` (absent ones included)."""
        return [name for name in node_names if self.get(name).code is code]


@dataclass(frozen=True)
class Diagnosis:
    """What the filters found: statuses, the plugins that rejected, and the extension-point messages."""

    node_to_status: NodeToStatus = field(default_factory=NodeToStatus)
    unschedulable_plugins: frozenset[str] = frozenset()
    pre_filter_msg: str = ""
    post_filter_msg: str = ""


def reason_histogram(node_to_status: NodeToStatus, num_all_nodes: int) -> list[str]:
    """The sorted "<count> <reason>" strings of FitError.Error()."""
    counts: Counter[str] = Counter()
    for status in node_to_status.statuses.values():
        counts.update(status.reasons)
    absent_nodes = num_all_nodes - len(node_to_status.statuses)
    if absent_nodes > 0:
        for reason in node_to_status.absent.reasons:
            counts[reason] += absent_nodes
    return sorted(f"{count} {reason}" for reason, count in counts.items())


@dataclass(frozen=True)
class FitError:
    """The pod fits on none of `num_all_nodes` nodes (a value, not an exception).

    `preemption_candidates` names nodes where evicting lower-priority pods would make room; upstream
    would preempt there (and then shows no post-filter message).  kubelite does not preempt yet, so
    the shell may use them later; they do not change the message.
    """

    num_all_nodes: int
    diagnosis: Diagnosis = field(default_factory=Diagnosis)
    preemption_candidates: tuple[str, ...] = ()

    def message(self) -> str:
        if self.num_all_nodes == 0:
            return NO_NODES_AVAILABLE_MSG
        diagnosis = self.diagnosis
        text = NO_NODE_AVAILABLE_FMT.format(self.num_all_nodes) + ":"
        if diagnosis.pre_filter_msg:
            text += f" {diagnosis.pre_filter_msg}."
        else:
            histogram = reason_histogram(diagnosis.node_to_status, self.num_all_nodes)
            if histogram:
                text += " " + ", ".join(histogram) + "."
        if diagnosis.post_filter_msg:
            text += f" {diagnosis.post_filter_msg}"
        return text

    __str__ = message


__all__ = [
    "DEFAULT_ABSENT_STATUS",
    "NO_NODES_AVAILABLE_MSG",
    "NO_NODE_AVAILABLE_FMT",
    "Diagnosis",
    "FitError",
    "NodeToStatus",
    "reason_histogram",
]
