"""NodeAffinity: `spec.nodeSelector` and `spec.affinity.nodeAffinity` (plugins/nodeaffinity and
component-helpers nodeaffinity).

Filter: every nodeSelector label must match, and one of the required nodeSelectorTerms must match
(terms are ORed; within a term matchExpressions on labels and matchFields on `metadata.name` are
ANDed).  An empty term matches nothing; a term that does not parse never matches (upstream ignores
the parse error for backwards compatibility); an empty term list matches no node.
Pre-filter: required terms that all pin `metadata.name In [...]` restrict the nodes examined;
terms whose pinned names cancel out reject the pod with "pod affinity terms conflict".
Score: the sum of the weights of the preferred terms the node matches, normalised so the best node
scores 100.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from kubelite.machinery.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    label_value_errors,
    qualified_name_errors,
    selector_from_set,
)
from kubelite.scheduler.events import NODE, ActionType, ClusterEvent
from kubelite.scheduler.framework import (
    PRE_FILTER_OK,
    PRE_FILTER_SKIP,
    SKIP,
    SUCCESS,
    NodeInfo,
    PodInfo,
    PreFilterResult,
    Snapshot,
    Status,
)
from kubelite.scheduler.plugins.helper import default_normalize_score

NAME = "NodeAffinity"
ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"
ERR_REASON_CONFLICT = "pod affinity terms conflict"

OBJECT_NAME_FIELD = "metadata.name"
_REJECTED = Status.unresolvable(ERR_REASON_POD, plugin=NAME)

_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
    "Gt": Operator.GREATER_THAN,
    "Lt": Operator.LESS_THAN,
}


_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _is_int64(text: str) -> bool:
    """strconv.ParseInt(text, 10, 64) succeeds."""
    return _INT64_RE.fullmatch(text) is not None and -(2**63) <= int(text) < 2**63


def _requirement(expression: Mapping[str, Any]) -> Requirement | None:
    """labels.NewRequirement from a NodeSelectorRequirement, or None where upstream fails to parse."""
    operator = _OPERATORS.get(expression.get("operator", ""))
    key = expression.get("key", "")
    values = tuple(expression.get("values") or ())
    if operator is None or qualified_name_errors(key):
        return None
    if operator in (Operator.IN, Operator.NOT_IN):
        if not values:
            return None
    elif operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        if values:
            return None
    elif len(values) != 1 or not _is_int64(values[0]):
        return None
    if any(label_value_errors(value) for value in values):
        return None
    return Requirement(key, operator, values)


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """One parsed term: label requirements, field requirements (key, In/NotIn, value), validity."""

    labels: LabelSelector | None
    fields: tuple[tuple[str, bool, str], ...] | None  # (key, is In, value)
    valid: bool = True

    @classmethod
    def parse(cls, term: Mapping[str, Any]) -> NodeSelectorTerm:
        labels: LabelSelector | None = None
        fields: tuple[tuple[str, bool, str], ...] | None = None
        valid = True
        if expressions := term.get("matchExpressions"):
            requirements = [_requirement(e) for e in expressions]
            valid = all(r is not None for r in requirements)
            labels = LabelSelector(tuple(r for r in requirements if r is not None))
        if match_fields := term.get("matchFields"):
            parsed = []
            for f in match_fields:
                values: list[str] = f.get("values") or []
                if f.get("operator") not in ("In", "NotIn") or len(values) != 1:
                    valid = False
                    continue
                parsed.append((f.get("key", ""), f.get("operator") == "In", values[0]))
            fields = tuple(parsed)
        return cls(labels, fields, valid)

    def matches(self, node_info: NodeInfo) -> bool:
        if not self.valid:
            return False
        if self.labels is not None and not self.labels.matches(node_info.labels):
            return False
        if self.fields is not None and node_info.name:
            node_fields = {OBJECT_NAME_FIELD: node_info.name}
            for key, is_in, value in self.fields:
                if (node_fields.get(key, "") == value) != is_in:
                    return False
        return True


def _is_empty_term(term: Mapping[str, Any]) -> bool:
    return not term.get("matchExpressions") and not term.get("matchFields")


@dataclass(frozen=True, slots=True)
class RequiredNodeAffinity:
    """nodeaffinity.RequiredNodeAffinity: the nodeSelector and the required terms, parsed once."""

    selector: LabelSelector | None
    terms: tuple[NodeSelectorTerm, ...] | None  # None: no required node affinity at all

    @classmethod
    def of(cls, pod: PodInfo) -> RequiredNodeAffinity:
        spec = pod.spec
        node_selector = spec.get("nodeSelector")
        selector = selector_from_set(node_selector) if node_selector else None
        required = _node_affinity(spec).get("requiredDuringSchedulingIgnoredDuringExecution")
        terms = None
        if required is not None:
            terms = tuple(
                NodeSelectorTerm.parse(t) for t in required.get("nodeSelectorTerms") or () if not _is_empty_term(t)
            )
        return cls(selector, terms)

    def matches(self, node_info: NodeInfo) -> bool:
        if self.selector is not None and not self.selector.matches(node_info.labels):
            return False
        if self.terms is None:
            return True
        return any(term.matches(node_info) for term in self.terms)


@dataclass(frozen=True, slots=True)
class PreferredTerms:
    terms: tuple[tuple[NodeSelectorTerm, int], ...]

    @classmethod
    def of(cls, pod: PodInfo) -> PreferredTerms:
        preferred = _node_affinity(pod.spec).get("preferredDuringSchedulingIgnoredDuringExecution") or ()
        terms = []
        for entry in preferred:
            weight = entry.get("weight") or 0
            preference = entry.get("preference") or {}
            if weight and not _is_empty_term(preference):
                term = NodeSelectorTerm.parse(preference)
                if term.valid:
                    terms.append((term, weight))
        return cls(tuple(terms))

    def score(self, node_info: NodeInfo) -> int:
        return sum(weight for term, weight in self.terms if term.matches(node_info))


def _node_affinity(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return (spec.get("affinity") or {}).get("nodeAffinity") or {}


def required_node_affinity(pod: PodInfo) -> RequiredNodeAffinity:
    cached = pod.cache.get(NAME)
    if cached is None:
        cached = pod.cache[NAME] = RequiredNodeAffinity.of(pod)
    return cached


def preferred_terms(pod: PodInfo) -> PreferredTerms:
    key = NAME + "/preferred"
    cached = pod.cache.get(key)
    if cached is None:
        cached = pod.cache[key] = PreferredTerms.of(pod)
    return cached


def pinned_node_names(terms: Sequence[Mapping[str, Any]]) -> frozenset[str] | None:
    """The node names the required terms allow, when every term pins `metadata.name In`; None when
    some term leaves all nodes possible."""
    names: set[str] = set()
    for term in terms:
        term_names: set[str] | None = None
        for requirement in term.get("matchFields") or ():
            if requirement.get("key") == OBJECT_NAME_FIELD and requirement.get("operator") == "In":
                values = set(requirement.get("values") or ())
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None
        names |= term_names
    return frozenset(names)


class NodeAffinity:
    NAME: ClassVar[str] = NAME
    EVENTS: ClassVar[tuple[ClusterEvent, ...]] = (ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL),)

    def pre_filter(self, pod: PodInfo, snapshot: Snapshot) -> PreFilterResult:
        spec = pod.spec
        required = _node_affinity(spec).get("requiredDuringSchedulingIgnoredDuringExecution")
        if required is None and spec.get("nodeSelector") is None:
            return PRE_FILTER_SKIP
        terms = (required or {}).get("nodeSelectorTerms") or ()
        if not terms:
            return PRE_FILTER_OK
        names = pinned_node_names(terms)
        if names is None:
            return PRE_FILTER_OK
        if not names:
            return PreFilterResult(status=Status.unresolvable(ERR_REASON_CONFLICT))
        return PreFilterResult(node_names=names)

    def filter(self, pod: PodInfo, node_info: NodeInfo) -> Status:
        if required_node_affinity(pod).matches(node_info):
            return SUCCESS
        return _REJECTED

    def pre_score(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status:
        """Nothing to score without preferred terms."""
        return SUCCESS if preferred_terms(pod).terms else SKIP

    def score(self, pod: PodInfo, node_info: NodeInfo) -> int:
        return preferred_terms(pod).score(node_info)

    def normalize_scores(self, pod: PodInfo, scores: list[int]) -> None:
        default_normalize_score(scores, reverse=False)


__all__ = [
    "ERR_REASON_CONFLICT",
    "ERR_REASON_ENFORCED",
    "ERR_REASON_POD",
    "NAME",
    "NodeAffinity",
    "NodeSelectorTerm",
    "PreferredTerms",
    "RequiredNodeAffinity",
    "pinned_node_names",
    "preferred_terms",
    "required_node_affinity",
]
