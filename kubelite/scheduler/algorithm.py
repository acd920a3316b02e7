"""One scheduling attempt as a pure function: a pod and a snapshot in, a node name or a FitError out
(kube-scheduler's schedulePod / findNodesThatFitPod / prioritizeNodes / selectHost, 1.32).

Order of work, as upstream:

1. No nodes at all: a FitError whose message is "no nodes available to schedule pods".
2. Pre-filters, once: they may Skip their own filter for this pod, narrow the nodes examined (nodes
   cut out report "node(s) didn't satisfy plugin(s) [<names>]"), or reject the pod outright.
3. Filters, node by node from `start_index` round the list, each node stopping at its first
   rejecting plugin.  Examination stops once enough feasible nodes are found
   (`num_feasible_nodes_to_find`: every node below 100 nodes, then an adaptive percentage).
4. None feasible: FitError with every node's status, plus DefaultPreemption's message (see
   preemption.py) unless `preemption=False`.  One feasible: chosen without scoring.
5. Several: each score plugin scores every feasible node, normalises if it can, and its scores are
   multiplied by its weight and summed; the highest total wins, ties broken uniformly at random
   by `rng` (inject a seeded `random.Random` for reproducible runs).

`schedule` reads the snapshot and never changes it; recording the decision (Snapshot.assume) and
binding are the caller's job.  `next_start_index` is where the following attempt should start, as
upstream rotates through nodes between attempts.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubelite.scheduler.fiterror import Diagnosis, FitError, NodeToStatus
from kubelite.scheduler.framework import (
    MAX_NODE_SCORE,
    MIN_NODE_SCORE,
    Code,
    FilterPlugin,
    NodeInfo,
    PodInfo,
    ScorePlugin,
    Snapshot,
    Status,
    as_pod_info,
)
from kubelite.scheduler.preemption import evaluate_preemption

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5

_DEFAULT_RNG = random.Random()


@dataclass(frozen=True)
class ScheduleResult:
    """The outcome of one attempt: exactly one of `suggested_host`, `fit_error` (the pod fits
    nowhere: the expected failure) and `error` (a plugin failed) is set."""

    suggested_host: str | None = None
    evaluated_nodes: int = 0
    feasible_nodes: int = 0
    fit_error: FitError | None = None
    error: Status | None = None
    next_start_index: int = 0
    scores: Mapping[str, int] = field(default_factory=dict)

    @property
    def scheduled(self) -> bool:
        return self.suggested_host is not None

    def message(self) -> str:
        """What the PodScheduled condition and FailedScheduling event say ("" on success)."""
        if self.fit_error is not None:
            return self.fit_error.message()
        if self.error is not None:
            return self.error.message()
        return ""


def num_feasible_nodes_to_find(percentage_of_nodes_to_score: int, num_all_nodes: int) -> int:
    """numFeasibleNodesToFind: all nodes below 100; else `percentage` of them (0 means adaptive:
    50% minus 1% per 125 nodes, at least 5%), never fewer than 100."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    percentage = percentage_of_nodes_to_score
    if percentage == 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def _go_list(names: Sequence[str]) -> str:
    return "[" + " ".join(names) + "]"


@dataclass
class _PreFilterOutcome:
    node_names: frozenset[str] | None = None
    skip: frozenset[str] = frozenset()
    rejection: Status | None = None
    plugins_with_nodes: frozenset[str] = frozenset()
    error: Status | None = None


def _run_pre_filters(pod: PodInfo, snapshot: Snapshot, filters: Sequence[FilterPlugin]) -> _PreFilterOutcome:
    """RunPreFilterPlugins: an UnschedulableAndUnresolvable rejection stops at once; an
    Unschedulable one is remembered while the rest still run; node-name results intersect."""
    skip: set[str] = set()
    with_nodes: set[str] = set()
    names: frozenset[str] | None = None
    rejection: Status | None = None
    for plugin in filters:
        pre_filter = getattr(plugin, "pre_filter", None)
        if pre_filter is None:
            continue
        result = pre_filter(pod, snapshot)
        status = result.status
        if status.is_skip:
            skip.add(plugin.NAME)
            continue
        if status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
            return _PreFilterOutcome(rejection=status.with_plugin(plugin.NAME))
        if status.code is Code.UNSCHEDULABLE:
            rejection = status.with_plugin(plugin.NAME)
            continue
        if not status.is_success:
            message = f'running PreFilter plugin "{plugin.NAME}": {status.message()}'
            return _PreFilterOutcome(error=Status.error(message, plugin=plugin.NAME))
        if result.node_names is not None:
            with_nodes.add(plugin.NAME)
            names = result.node_names if names is None else names & result.node_names
            if not names:
                plugins = sorted(with_nodes)
                if len(plugins) == 1:
                    message = "node(s) didn't satisfy plugin " + plugins[0]
                else:
                    message = f"node(s) didn't satisfy plugin(s) {_go_list(plugins)} simultaneously"
                return _PreFilterOutcome(
                    rejection=Status.unresolvable(message), plugins_with_nodes=frozenset(with_nodes)
                )
    return _PreFilterOutcome(names, frozenset(skip), rejection, frozenset(with_nodes))


def _fit_error(
    pod: PodInfo,
    snapshot: Snapshot,
    filters: Sequence[FilterPlugin],
    diagnosis: Diagnosis,
    *,
    skip: frozenset[str],
    preemption: bool,
) -> FitError:
    if not preemption:
        return FitError(len(snapshot), diagnosis)
    outcome = evaluate_preemption(pod, snapshot, filters, diagnosis.node_to_status, skip=skip)
    diagnosis = Diagnosis(
        diagnosis.node_to_status, diagnosis.unschedulable_plugins, diagnosis.pre_filter_msg, outcome.message
    )
    return FitError(len(snapshot), diagnosis, outcome.candidates)


def schedule(
    pod: PodInfo | Mapping[str, Any],
    snapshot: Snapshot,
    filters: Sequence[FilterPlugin],
    scores: Sequence[tuple[ScorePlugin, int]],
    *,
    rng: random.Random | None = None,
    percentage_of_nodes_to_score: int = 0,
    start_index: int = 0,
    preemption: bool = True,
) -> ScheduleResult:
    """Pick a node for `pod` (see the module docstring).  Pure apart from `rng`."""
    info = as_pod_info(pod)
    num_all = len(snapshot)
    if num_all == 0:
        return ScheduleResult(fit_error=FitError(0))

    pre = _run_pre_filters(info, snapshot, filters)
    if pre.error is not None:
        return ScheduleResult(error=pre.error, next_start_index=start_index)
    if pre.rejection is not None:
        plugins = pre.plugins_with_nodes | ({pre.rejection.plugin} if pre.rejection.plugin else set())
        diagnosis = Diagnosis(NodeToStatus({}, pre.rejection), frozenset(plugins), pre.rejection.message())
        fit_error = _fit_error(info, snapshot, filters, diagnosis, skip=pre.skip, preemption=preemption)
        return ScheduleResult(fit_error=fit_error, next_start_index=start_index)

    nodes: list[NodeInfo] = snapshot.node_infos
    absent = NodeToStatus().absent
    if pre.node_names is not None:
        nodes = [n for n in nodes if n.name in pre.node_names]
        absent = Status.unresolvable(f"node(s) didn't satisfy plugin(s) {_go_list(sorted(pre.plugins_with_nodes))}")

    active = [plugin for plugin in filters if plugin.NAME not in pre.skip]
    wanted = num_feasible_nodes_to_find(percentage_of_nodes_to_score, len(nodes))
    feasible, statuses, error = find_feasible_nodes(info, nodes, active, wanted=wanted, start_index=start_index)
    if error is not None:
        return ScheduleResult(error=error, next_start_index=start_index)
    rejecting = pre.plugins_with_nodes | {status.plugin for status in statuses.values()}

    evaluated = len(feasible) + len(statuses)
    next_start = (start_index + evaluated) % num_all
    if not feasible:
        diagnosis = Diagnosis(NodeToStatus(statuses, absent), rejecting)
        fit_error = _fit_error(info, snapshot, filters, diagnosis, skip=pre.skip, preemption=preemption)
        return ScheduleResult(evaluated_nodes=evaluated, fit_error=fit_error, next_start_index=next_start)
    if len(feasible) == 1:
        return ScheduleResult(feasible[0].name, evaluated, 1, next_start_index=next_start)

    totals, error = prioritize_nodes(info, feasible, scores)
    if error is not None:
        return ScheduleResult(error=error, evaluated_nodes=evaluated, next_start_index=next_start)
    best = max(totals)
    winners = [i for i, total in enumerate(totals) if total == best]
    chosen = winners[0] if len(winners) == 1 else (rng or _DEFAULT_RNG).choice(winners)
    return ScheduleResult(
        feasible[chosen].name,
        evaluated,
        len(feasible),
        next_start_index=next_start,
        scores={n.name: total for n, total in zip(feasible, totals, strict=True)},
    )


def find_feasible_nodes(
    pod: PodInfo, nodes: Sequence[NodeInfo], filters: Sequence[FilterPlugin], *, wanted: int, start_index: int = 0
) -> tuple[list[NodeInfo], dict[str, Status], Status | None]:
    """Run the filters on nodes from `start_index` round the list until `wanted` fit: (the feasible
    nodes, each rejected node's status labelled with its plugin, an Error status if a plugin
    failed).  Each node stops at its first rejection, as upstream's RunFilterPlugins."""
    feasible: list[NodeInfo] = []
    statuses: dict[str, Status] = {}
    count = len(nodes)
    for i in range(count):
        node_info = nodes[(start_index + i) % count]
        for plugin in filters:
            status = plugin.filter(pod, node_info)
            if status.code is not Code.SUCCESS:
                break
        else:
            feasible.append(node_info)
            if len(feasible) >= wanted:
                break
            continue
        if status.code is Code.ERROR:
            message = f'running "{plugin.NAME}" filter plugin: {status.message()}'
            return feasible, statuses, Status.error(message, plugin=plugin.NAME)
        statuses[node_info.name] = status.with_plugin(plugin.NAME)
    return feasible, statuses, None


def prioritize_nodes(
    pod: PodInfo, nodes: Sequence[NodeInfo], scores: Sequence[tuple[ScorePlugin, int]]
) -> tuple[list[int], Status | None]:
    """Weighted total score per node (same order as `nodes`), or an Error status when a plugin's
    normalised score leaves 0..100.  Without score plugins every node scores 1."""
    if not scores:
        return [1] * len(nodes), None
    totals = [0] * len(nodes)
    for plugin, weight in scores:
        pre_score = getattr(plugin, "pre_score", None)
        if pre_score is not None:
            status = pre_score(pod, nodes)
            if status.is_skip:
                continue
            if not status.is_success:
                return totals, Status.error(
                    f'running PreScore plugin "{plugin.NAME}": {status.message()}', plugin=plugin.NAME
                )
        raw = [plugin.score(pod, node_info) for node_info in nodes]
        normalize = getattr(plugin, "normalize_scores", None)
        if normalize is not None:
            normalize(pod, raw)
        for i, score in enumerate(raw):
            if not MIN_NODE_SCORE <= score <= MAX_NODE_SCORE:
                message = (
                    f'plugin "{plugin.NAME}" returns an invalid score {score}, it should in the range of '
                    f"[{MIN_NODE_SCORE}, {MAX_NODE_SCORE}] after normalizing"
                )
                return totals, Status.error(message, plugin=plugin.NAME)
            totals[i] += score * weight
    return totals, None


__all__ = [
    "MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND",
    "MIN_FEASIBLE_NODES_TO_FIND",
    "ScheduleResult",
    "find_feasible_nodes",
    "num_feasible_nodes_to_find",
    "prioritize_nodes",
    "schedule",
]
