"""Scheduler plugins and the accounting under them: pod requests, NodeInfo, each default plugin's
filter reasons (upstream's exact strings) and score formulas (kube-scheduler 1.32)."""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.scheduler.framework import Code, NodeInfo, PodInfo, Snapshot, Status
from kubelite.scheduler.plugins.balanced_allocation import NodeResourcesBalancedAllocation, balanced_resource_score
from kubelite.scheduler.plugins.helper import default_normalize_score, tolerates_taint
from kubelite.scheduler.plugins.nodeaffinity import NodeAffinity
from kubelite.scheduler.plugins.nodename import NodeName
from kubelite.scheduler.plugins.nodeports import NodePorts
from kubelite.scheduler.plugins.noderesources_fit import NodeResourcesFit, least_requested_score
from kubelite.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from kubelite.scheduler.plugins.tainttoleration import TaintToleration
from kubelite.scheduler.resources import is_extended_resource_name, is_scalar_resource_name, pod_requests

MI = 1024 * 1024
GI = 1024 * MI


def container(cpu: str | None = None, memory: str | None = None, **extra: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    out: dict[str, Any] = {"name": "c", "image": "x", "resources": {"requests": requests}}
    out.update(extra)
    return out


def make_pod(
    name: str = "p",
    *,
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": containers if containers is not None else [container("100m", "100Mi")]}
    if init:
        body["initContainers"] = init
    body.update(spec)
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"}, "spec": body}


def make_node(
    name: str = "n1",
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec, "status": {"allocatable": alloc}}


def node_info(node: dict[str, Any] | None = None, *pods: dict[str, Any]) -> NodeInfo:
    return NodeInfo.from_node(node or make_node(), pods)


def outcome(status: Status) -> tuple[Code, tuple[str, ...]]:
    """What a filter decided, ignoring which plugin it says it came from."""
    return status.code, status.reasons


def cpu_milli(pod: dict[str, Any], **kwargs: Any) -> int:
    quantity = pod_requests(pod, **kwargs).get("cpu")
    return quantity.milli_value() if quantity else 0


# --- pod requests -----------------------------------------------------------------------------------


SIDECAR = {"restartPolicy": "Always"}


@pytest.mark.parametrize(
    ("containers", "init", "overhead", "expected_milli"),
    [
        ([container("1"), container("2")], [], None, 3000),
        ([container("1"), container("2")], [container("2")], None, 3000),
        ([container("1")], [container("5"), container("2")], None, 5000),
        # a sidecar adds to the regular containers
        ([container("1")], [container("1", **SIDECAR)], None, 2000),
        # an init container after a sidecar runs next to it: 1 + 3 > 1 + 1
        ([container("1")], [container("1", **SIDECAR), container("3")], None, 4000),
        # an init container before the sidecar does not
        ([container("1")], [container("3"), container("1", **SIDECAR)], None, 3000),
        # two sidecars accumulate for later init containers
        ([container("500m")], [container("1", **SIDECAR), container("1", **SIDECAR), container("1")], None, 3000),
        ([container("1")], [], {"cpu": "250m"}, 1250),
        ([container("1")], [container("2")], {"cpu": "250m"}, 2250),
        ([container("0.5m"), container("0.5m")], [], None, 1),  # exact sum first, then round up
        ([container(None, "1Gi")], [], None, 0),
    ],
)
def test_pod_cpu_request_follows_upstream_pod_requests(
    containers: list[dict[str, Any]], init: list[dict[str, Any]], overhead: dict[str, str] | None, expected_milli: int
) -> None:
    extra: dict[str, Any] = {"overhead": overhead} if overhead else {}
    pod = make_pod(containers=containers, init=init, **extra)
    assert cpu_milli(pod) == expected_milli


def test_scoring_defaults_apply_to_unstated_requests_only() -> None:
    info = PodInfo(make_pod(containers=[container(None, None), container("0", "0"), container("300m", None)]))
    assert info.requests.milli_cpu == 300
    assert info.requests.memory == 0
    assert (info.non_zero_milli_cpu, info.non_zero_memory) == (100 + 0 + 300, 200 * MI + 0 + 200 * MI)


def test_extended_resources_are_counted_as_scalars() -> None:
    pod = make_pod(containers=[container("1")])
    pod["spec"]["containers"][0]["resources"]["requests"].update({"example.com/gpu": "2", "hugepages-2Mi": "4Mi"})
    info = PodInfo(pod)
    assert info.requests.scalar == {"example.com/gpu": 2, "hugepages-2Mi": 4 * MI}


@pytest.mark.parametrize(
    ("name", "scalar", "extended"),
    [
        ("cpu", False, False),
        ("pods", False, False),
        ("example.com/gpu", True, True),
        ("nvidia.com/gpu", True, True),
        ("kubernetes.io/something", True, False),
        ("hugepages-1Gi", True, False),
        ("attachable-volumes-aws-ebs", True, False),
        ("requests.example.com/x", False, False),
        ("example.com/bad name", False, False),
    ],
)
def test_scalar_and_extended_resource_names(name: str, scalar: bool, extended: bool) -> None:
    assert is_scalar_resource_name(name) is scalar
    assert is_extended_resource_name(name) is extended


# --- NodeInfo ---------------------------------------------------------------------------------------


def test_node_info_tracks_requests_ports_and_count_incrementally() -> None:
    web = make_pod("web", containers=[container("500m", "1Gi", ports=[{"containerPort": 80, "hostPort": 8080}])])
    idle = make_pod("idle", containers=[container()])
    info = node_info(make_node(), web, idle)
    assert info.allocatable.milli_cpu == 4000 and info.allocatable.memory == 8 * GI
    assert info.allocatable.allowed_pod_number == 110
    assert (info.requested.milli_cpu, info.requested.memory) == (500, GI)
    assert (info.non_zero_requested.milli_cpu, info.non_zero_requested.memory) == (600, GI + 200 * MI)
    assert info.pod_count == 2
    assert info.used_ports.conflicts("", "TCP", 8080)

    assert info.remove_pod(web)
    assert not info.remove_pod(web)
    assert (info.requested.milli_cpu, info.requested.memory) == (0, 0)
    assert (info.non_zero_requested.milli_cpu, info.non_zero_requested.memory) == (100, 200 * MI)
    assert not info.used_ports
    assert info.pod_count == 1


def test_adding_a_pod_twice_replaces_it() -> None:
    info = node_info(make_node(), make_pod("a", containers=[container("1")]))
    info.add_pod(make_pod("a", containers=[container("2")]))
    assert info.requested.milli_cpu == 2000 and info.pod_count == 1


def test_snapshot_from_objects_skips_terminal_and_unbound_pods() -> None:
    bound = make_pod("bound", nodeName="n1")
    done = make_pod("done", nodeName="n1") | {"status": {"phase": "Succeeded"}}
    pending = make_pod("pending")
    snapshot = Snapshot.from_objects([make_node("n1"), make_node("n2")], [bound, done, pending])
    assert [n.name for n in snapshot] == ["n1", "n2"]
    assert list(snapshot.get("n1").pods) == ["uid-bound"]  # type: ignore[union-attr]
    assert snapshot.get("n2").pod_count == 0  # type: ignore[union-attr]


# --- NodeName, NodeUnschedulable ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "ok"),
    [("", True), ("n1", True), ("other", False)],
)
def test_node_name_filter(requested: str, ok: bool) -> None:
    extra: dict[str, Any] = {"nodeName": requested} if requested else {}
    pod = PodInfo(make_pod(**extra))
    status = NodeName().filter(pod, node_info(make_node("n1")))
    expected = (
        Status()
        if ok
        else Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, ("node(s) didn't match the requested node name",))
    )
    assert outcome(status) == outcome(expected)


UNSCHEDULABLE_TOLERATION = {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("cordoned", "tolerations", "ok"),
    [
        (False, [], True),
        (True, [], False),
        (True, [UNSCHEDULABLE_TOLERATION], True),
        (True, [{"operator": "Exists"}], True),
        (True, [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}], False),
        (True, [{"key": "other", "operator": "Exists"}], False),
    ],
)
def test_node_unschedulable_filter(cordoned: bool, tolerations: list[dict[str, str]], ok: bool) -> None:
    pod = PodInfo(make_pod(tolerations=tolerations))
    status = NodeUnschedulable().filter(pod, node_info(make_node(unschedulable=cordoned)))
    assert status.is_success is ok
    if not ok:
        assert outcome(status) == (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, ("node(s) were unschedulable",))


# --- TaintToleration ------------------------------------------------------------------------------


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> dict[str, str]:
    return {"key": key, "value": value, "effect": effect} if value else {"key": key, "effect": effect}


@pytest.mark.parametrize(
    ("toleration", "the_taint", "tolerated"),
    [
        ({"key": "a", "operator": "Equal", "value": "1", "effect": "NoSchedule"}, taint("a", "1"), True),
        ({"key": "a", "value": "1"}, taint("a", "1"), True),  # empty operator means Equal, empty effect all
        ({"key": "a", "value": "2"}, taint("a", "1"), False),
        ({"key": "a", "operator": "Exists"}, taint("a", "anything", "NoExecute"), True),
        ({"operator": "Exists"}, taint("whatever", "v"), True),
        ({"key": "a", "operator": "Exists", "effect": "NoExecute"}, taint("a"), False),
        ({"key": "b", "operator": "Exists"}, taint("a"), False),
        ({"key": "a", "operator": "Bogus"}, taint("a"), False),
    ],
)
def test_toleration_matching(toleration: dict[str, str], the_taint: dict[str, str], tolerated: bool) -> None:
    assert tolerates_taint(toleration, the_taint) is tolerated


@pytest.mark.parametrize(
    ("taints", "tolerations", "reason"),
    [
        ([], [], None),
        ([taint("node-role.kubernetes.io/control-plane")], [], "{node-role.kubernetes.io/control-plane: }"),
        ([taint("dedicated", "gpu")], [], "{dedicated: gpu}"),
        ([taint("dedicated", "gpu", "NoExecute")], [], "{dedicated: gpu}"),
        ([taint("soft", "x", "PreferNoSchedule")], [], None),
        ([taint("a", "1"), taint("b", "2")], [{"key": "a", "value": "1"}], "{b: 2}"),
        ([taint("a", "1"), taint("b", "2")], [], "{a: 1}"),  # the first untolerated taint, in node order
        ([taint("a", "1")], [{"key": "a", "operator": "Exists", "effect": "NoSchedule"}], None),
    ],
)
def test_taint_toleration_filter_names_the_first_untolerated_taint(
    taints: list[dict[str, str]], tolerations: list[dict[str, str]], reason: str | None
) -> None:
    status = TaintToleration().filter(PodInfo(make_pod(tolerations=tolerations)), node_info(make_node(taints=taints)))
    if reason is None:
        assert status.is_success
    else:
        assert outcome(status) == (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (f"node(s) had untolerated taint {reason}",))


def test_taint_toleration_score_prefers_fewest_untolerated_prefer_no_schedule_taints() -> None:
    plugin = TaintToleration()
    pod = PodInfo(make_pod(tolerations=[{"key": "ok", "operator": "Exists", "effect": "PreferNoSchedule"}]))
    soft = [taint(k, "v", "PreferNoSchedule") for k in ("x", "y")]
    nodes = [
        make_node("clean"),
        make_node("one", taints=soft[:1]),
        make_node("two", taints=soft),
        make_node("tolerated", taints=[taint("ok", "v", "PreferNoSchedule"), taint("hard", "v")]),
    ]
    raw = [plugin.score(pod, node_info(n)) for n in nodes]
    assert raw == [0, 1, 2, 0]
    plugin.normalize_scores(pod, raw)
    assert raw == [100, 50, 0, 100]


# --- NodeAffinity ---------------------------------------------------------------------------------


def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        out["values"] = list(values)
    return out


LABELS = {"zone": "a", "disk": "ssd", "cores": "8"}


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ({}, True),
        ({"nodeSelector": {"zone": "a"}}, True),
        ({"nodeSelector": {"zone": "a", "disk": "hdd"}}, False),
        ({"affinity": required({"matchExpressions": [expr("zone", "In", "a", "b")]})}, True),
        ({"affinity": required({"matchExpressions": [expr("zone", "In", "b")]})}, False),
        ({"affinity": required({"matchExpressions": [expr("gpu", "NotIn", "x")]})}, True),
        ({"affinity": required({"matchExpressions": [expr("zone", "NotIn", "a")]})}, False),
        ({"affinity": required({"matchExpressions": [expr("disk", "Exists")]})}, True),
        ({"affinity": required({"matchExpressions": [expr("disk", "DoesNotExist")]})}, False),
        ({"affinity": required({"matchExpressions": [expr("cores", "Gt", "4")]})}, True),
        ({"affinity": required({"matchExpressions": [expr("cores", "Lt", "4")]})}, False),
        ({"affinity": required({"matchExpressions": [expr("zone", "Gt", "4")]})}, False),  # not a number
        # terms are ORed, expressions within a term ANDed
        (
            {
                "affinity": required(
                    {"matchExpressions": [expr("zone", "In", "b")]}, {"matchExpressions": [expr("disk", "Exists")]}
                )
            },
            True,
        ),
        ({"affinity": required({"matchExpressions": [expr("zone", "In", "a"), expr("disk", "In", "hdd")]})}, False),
        ({"affinity": required()}, False),  # an empty term list matches nothing
        ({"affinity": required({})}, False),  # so does an empty term
        ({"affinity": required({"matchFields": [expr("metadata.name", "In", "n1")]})}, True),
        ({"affinity": required({"matchFields": [expr("metadata.name", "NotIn", "n1")]})}, False),
        ({"affinity": required({"matchExpressions": [expr("zone", "Bogus", "a")]})}, False),
        # nodeSelector and affinity must both match
        ({"nodeSelector": {"zone": "b"}, "affinity": required({"matchExpressions": [expr("disk", "Exists")]})}, False),
    ],
)
def test_node_affinity_filter(spec: dict[str, Any], ok: bool) -> None:
    status = NodeAffinity().filter(PodInfo(make_pod(**spec)), node_info(make_node("n1", labels=LABELS)))
    if ok:
        assert status.is_success
    else:
        assert outcome(status) == (
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            ("node(s) didn't match Pod's node affinity/selector",),
        )


@pytest.mark.parametrize(
    ("spec", "names", "code"),
    [
        ({}, None, Code.SKIP),
        ({"nodeSelector": {"zone": "a"}}, None, Code.SUCCESS),
        ({"affinity": required({"matchExpressions": [expr("zone", "In", "a")]})}, None, Code.SUCCESS),
        ({"affinity": required({"matchFields": [expr("metadata.name", "In", "n1")]})}, {"n1"}, Code.SUCCESS),
        (
            {
                "affinity": required(
                    {"matchFields": [expr("metadata.name", "In", "n1")]},
                    {"matchFields": [expr("metadata.name", "In", "n2")]},
                )
            },
            {"n1", "n2"},
            Code.SUCCESS,
        ),
        (
            {
                "affinity": required(
                    {"matchFields": [expr("metadata.name", "In", "n1"), expr("metadata.name", "In", "n2")]},
                )
            },
            None,
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
        ),
        # one term without a name pin leaves every node possible
        (
            {
                "affinity": required(
                    {"matchFields": [expr("metadata.name", "In", "n1")]},
                    {"matchExpressions": [expr("zone", "In", "a")]},
                )
            },
            None,
            Code.SUCCESS,
        ),
    ],
)
def test_node_affinity_pre_filter(spec: dict[str, Any], names: set[str] | None, code: Code) -> None:
    result = NodeAffinity().pre_filter(PodInfo(make_pod(**spec)), Snapshot())
    assert result.status.code is code
    assert result.node_names == (frozenset(names) if names is not None else None)
    if code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
        assert result.status.reasons == ("pod affinity terms conflict",)


def test_node_affinity_score_sums_matching_preferred_weights_then_normalizes() -> None:
    preferred = [
        {"weight": 10, "preference": {"matchExpressions": [expr("zone", "In", "a")]}},
        {"weight": 30, "preference": {"matchExpressions": [expr("disk", "In", "ssd")]}},
        {"weight": 0, "preference": {"matchExpressions": [expr("zone", "Exists")]}},  # weight 0: ignored
        {"weight": 50, "preference": {}},  # empty preference: ignored
    ]
    pod = PodInfo(make_pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}))
    plugin = NodeAffinity()
    nodes = [
        make_node("both", labels={"zone": "a", "disk": "ssd"}),
        make_node("disk", labels={"disk": "ssd"}),
        make_node("zone", labels={"zone": "a"}),
        make_node("none"),
    ]
    raw = [plugin.score(pod, node_info(n)) for n in nodes]
    assert raw == [40, 30, 10, 0]
    plugin.normalize_scores(pod, raw)
    assert raw == [100, 75, 25, 0]


@pytest.mark.parametrize(
    ("scores", "reverse", "expected"),
    [
        ([0, 0, 0], False, [0, 0, 0]),
        ([0, 0, 0], True, [100, 100, 100]),
        ([1, 2, 3], False, [33, 66, 100]),
        ([1, 2, 3], True, [67, 34, 0]),
        ([], True, []),
    ],
)
def test_default_normalize_score(scores: list[int], reverse: bool, expected: list[int]) -> None:
    default_normalize_score(scores, reverse=reverse)
    assert scores == expected


# --- NodePorts ------------------------------------------------------------------------------------


def port_pod(name: str, host_port: int, *, ip: str = "", protocol: str = "") -> dict[str, Any]:
    port: dict[str, Any] = {"containerPort": 80, "hostPort": host_port}
    if ip:
        port["hostIP"] = ip
    if protocol:
        port["protocol"] = protocol
    return make_pod(name, containers=[container("10m", ports=[port])])


@pytest.mark.parametrize(
    ("existing", "incoming", "ok"),
    [
        (port_pod("a", 8080), port_pod("b", 8081), True),
        (port_pod("a", 8080), port_pod("b", 8080), False),
        (port_pod("a", 8080), port_pod("b", 8080, protocol="UDP"), True),
        (port_pod("a", 8080, ip="10.0.0.1"), port_pod("b", 8080, ip="10.0.0.2"), True),
        (port_pod("a", 8080, ip="10.0.0.1"), port_pod("b", 8080), False),  # 0.0.0.0 clashes with any IP
        (port_pod("a", 8080), port_pod("b", 8080, ip="10.0.0.2"), False),
        (port_pod("a", 8080, protocol="TCP"), port_pod("b", 8080), False),  # TCP is the default
        (make_pod("a"), port_pod("b", 8080), True),
    ],
)
def test_node_ports_filter(existing: dict[str, Any], incoming: dict[str, Any], ok: bool) -> None:
    status = NodePorts().filter(PodInfo(incoming), node_info(make_node(), existing))
    if ok:
        assert status.is_success
    else:
        assert outcome(status) == (Code.UNSCHEDULABLE, ("node(s) didn't have free ports for the requested pod ports",))


def test_node_ports_pre_filter_skips_pods_without_host_ports() -> None:
    assert NodePorts().pre_filter(PodInfo(make_pod()), Snapshot()).status.is_skip
    assert NodePorts().pre_filter(PodInfo(port_pod("p", 80)), Snapshot()).status.is_success


# --- NodeResourcesFit -------------------------------------------------------------------------------


def requests_pod(name: str = "p", extra: dict[str, str] | None = None, **requests: str) -> dict[str, Any]:
    c = container()
    c["resources"]["requests"] = {k.replace("_", "-"): v for k, v in requests.items()} | (extra or {})
    return make_pod(name, containers=[c])


GPU = {"example.com/gpu": "1"}


@pytest.mark.parametrize(
    ("node", "existing", "pod", "reasons"),
    [
        (make_node(cpu="2"), [requests_pod("a", cpu="1")], requests_pod(cpu="1"), ()),
        (make_node(cpu="2"), [requests_pod("a", cpu="1500m")], requests_pod(cpu="1"), ("Insufficient cpu",)),
        (make_node(memory="1Gi"), [], requests_pod(memory="2Gi"), ("Insufficient memory",)),
        (
            make_node(extra={"ephemeral-storage": "1Gi"}),
            [],
            requests_pod(ephemeral_storage="2Gi"),
            ("Insufficient ephemeral-storage",),
        ),
        (make_node(pods="1"), [requests_pod("a")], requests_pod(), ("Too many pods",)),
        (make_node(pods="1"), [requests_pod("a")], make_pod(containers=[container()]), ("Too many pods",)),
        (make_node(), [], requests_pod(extra=GPU), ("Insufficient example.com/gpu",)),
        (make_node(extra={"example.com/gpu": "2"}), [requests_pod("a", GPU)], requests_pod(extra=GPU), ()),
        (
            make_node(cpu="1", memory="1Gi", pods="1"),
            [requests_pod("a", cpu="10m")],
            requests_pod(cpu="2", memory="2Gi", extra={"example.com/b": "1", "example.com/a": "1"}),
            (
                "Too many pods",
                "Insufficient cpu",
                "Insufficient memory",
                "Insufficient example.com/a",
                "Insufficient example.com/b",
            ),
        ),
        # a pod that requests nothing only needs a pod slot
        (make_node(cpu="0", memory="0"), [], make_pod(containers=[container()]), ()),
        # no pods entry in allocatable means no room
        (make_node(pods="0"), [], make_pod(containers=[container()]), ("Too many pods",)),
    ],
)
def test_node_resources_fit_filter_reports_every_shortfall(
    node: dict[str, Any], existing: list[dict[str, Any]], pod: dict[str, Any], reasons: tuple[str, ...]
) -> None:
    status = NodeResourcesFit().filter(PodInfo(pod), node_info(node, *existing))
    assert outcome(status) == ((Code.UNSCHEDULABLE, reasons) if reasons else (Code.SUCCESS, ()))


def test_node_resources_fit_can_ignore_extended_resources() -> None:
    pod = PodInfo(requests_pod(extra=GPU))
    plugin = NodeResourcesFit(ignored_resource_groups=["example.com"])
    assert plugin.filter(pod, node_info()).is_success


@pytest.mark.parametrize(
    ("requested", "capacity", "score"),
    [(0, 4000, 100), (3000, 4000, 25), (4000, 4000, 0), (5000, 4000, 0), (1, 3, 66), (0, 0, 0)],
)
def test_least_requested_score(requested: int, capacity: int, score: int) -> None:
    assert least_requested_score(requested, capacity) == score


@pytest.mark.parametrize(
    ("node", "existing", "pod", "score"),
    [
        # cpu (4000-3000)*100/4000 = 25, memory (10000-5000)*100/10000 = 50 → 37
        (make_node(cpu="4", memory="10000"), [], requests_pod(cpu="3", memory="5000"), 37),
        (
            make_node(cpu="4", memory="10000"),
            [requests_pod("a", cpu="1", memory="5000")],
            requests_pod(cpu="1", memory="1000"),
            45,
        ),
        # unstated requests count as 100m and 200Mi: (4000-100)*100/4000 = 97, (8Gi-200Mi)*100/8Gi = 97
        (make_node(), [], make_pod(containers=[container()]), 97),
        # requests beyond capacity score 0 for that resource
        (make_node(cpu="1", memory="10000"), [], requests_pod(cpu="2", memory="0"), 50),
    ],
)
def test_least_allocated_score(
    node: dict[str, Any], existing: list[dict[str, Any]], pod: dict[str, Any], score: int
) -> None:
    assert NodeResourcesFit().score(PodInfo(pod), node_info(node, *existing)) == score


@pytest.mark.parametrize(
    ("fractions", "score"),
    [([0.5, 0.5], 100), ([0.75, 0.5], 87), ([1.0, 0.0], 50), ([0.25], 100), ([], 100), ([0.1, 0.2, 0.6], 78)],
)
def test_balanced_resource_score(fractions: list[float], score: int) -> None:
    assert balanced_resource_score(fractions) == score


@pytest.mark.parametrize(
    ("node", "existing", "pod", "score"),
    [
        # cpu 3000/4000 = 0.75, memory 5000/10000 = 0.5 → std 0.125 → 87
        (make_node(cpu="4", memory="10000"), [], requests_pod(cpu="3", memory="5000"), 87),
        (
            make_node(cpu="4", memory="10000"),
            [requests_pod("a", cpu="1", memory="2500")],
            requests_pod(cpu="1", memory="2500"),
            100,
        ),
        # fractions are capped at 1
        (make_node(cpu="1", memory="10000"), [], requests_pod(cpu="2", memory="0"), 50),
        # actual requests: a best-effort pod on an empty node is perfectly balanced (1.32 still scores it)
        (make_node(), [], make_pod(containers=[container()]), 100),
    ],
)
def test_balanced_allocation_score(
    node: dict[str, Any], existing: list[dict[str, Any]], pod: dict[str, Any], score: int
) -> None:
    assert NodeResourcesBalancedAllocation().score(PodInfo(pod), node_info(node, *existing)) == score
