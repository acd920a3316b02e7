"""Server-side printing: upstream's cell logic, table-driven, then the real kubectl 1.32 reading our Tables.

The last part starts a tiny aiohttp API server (version, legacy discovery and list/watch endpoints that
answer `as=Table` with `build_table`) and runs /usr/bin/kubectl against it, so the column layout is
checked by the client that matters rather than by our own reading of it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import orjson
import pytest
from aiohttp import web

from kubelite.apiserver.tables import (
    PRINTERS,
    build_table,
    column_definitions,
    custom_resource_cells,
    custom_resource_columns,
    human_duration,
    row_cells,
)
from kubelite.apiserver.tables.format import format_label_selector
from kubelite.machinery.errors import ApiError

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def ts(delta: timedelta, now: datetime = NOW) -> str:
    """A wire timestamp `delta` before `now`."""
    return (now - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "x", *, age: timedelta = timedelta(minutes=5), **extra: Any) -> dict:
    return {"name": name, "namespace": "default", "creationTimestamp": ts(age), **extra}


# --- ages -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=-5), "<invalid>"),
        (timedelta(seconds=-2), "<invalid>"),
        (timedelta(seconds=-1.5), "0s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=5), "5s"),
        (timedelta(seconds=119.9), "119s"),
        (timedelta(minutes=2), "2m"),
        (timedelta(seconds=200), "3m20s"),
        (timedelta(minutes=9, seconds=59), "9m59s"),
        (timedelta(minutes=10, seconds=30), "10m"),
        (timedelta(minutes=179), "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=30), "3h30m"),
        (timedelta(hours=7, minutes=59), "7h59m"),
        (timedelta(hours=8, minutes=30), "8h"),
        (timedelta(hours=47, minutes=59), "47h"),
        (timedelta(days=2), "2d"),
        (timedelta(days=2, hours=3), "2d3h"),
        (timedelta(days=7, hours=23), "7d23h"),
        (timedelta(days=8, hours=5), "8d"),
        (timedelta(days=729), "729d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=800), "2y70d"),
        (timedelta(days=365 * 8), "8y"),
        (timedelta(days=365 * 20 + 100), "20y"),
    ],
)
def test_human_duration_matches_upstream_rounding(delta: timedelta, expected: str) -> None:
    assert human_duration(delta) == expected


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (None, "<unknown>"),
        ("", "<unknown>"),
        ("2026-03-01T11:59:55Z", "5s"),
        ("2026-03-01T11:59:55.123456Z", "4s"),
        ("2026-03-01T13:59:55+02:00", "5s"),
        ("2026-03-01T12:00:10Z", "<invalid>"),
    ],
)
def test_age_cell_parses_wire_timestamps(created: str | None, expected: str) -> None:
    obj = {"metadata": {"name": "cm", "creationTimestamp": created}}
    assert row_cells("", "configmaps", obj, now=NOW)[2] == expected


# --- pods -----------------------------------------------------------------------------------------


def running(name: str = "app", *, restarts: int = 0, last_finished: timedelta | None = None) -> dict:
    status: dict[str, Any] = {"name": name, "ready": True, "restartCount": restarts, "state": {"running": {}}}
    if last_finished is not None:
        status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ts(last_finished)}}
    return status


def waiting(
    reason: str, name: str = "app", *, restarts: int = 0, last_finished: timedelta | None = None
) -> dict:
    status = running(name, restarts=restarts, last_finished=last_finished)
    status.update(ready=False, state={"waiting": {"reason": reason}})
    return status


def terminated(name: str = "app", *, reason: str = "", exit_code: int = 0, signal: int = 0) -> dict:
    state: dict[str, Any] = {"exitCode": exit_code}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": state}}


def pod(
    statuses: Sequence[dict] = (),
    *,
    phase: str = "Running",
    init: list[dict] | None = None,
    init_spec: list[dict] | None = None,
    reason: str = "",
    conditions: list[dict] | None = None,
    deleting: bool = False,
) -> dict:
    """A pod with one spec container per status (or one, "app"), and init containers likewise."""
    names = [s["name"] for s in statuses] or ["app"]
    spec: dict[str, Any] = {"containers": [{"name": n} for n in names]}
    status: dict[str, Any] = {"phase": phase, "containerStatuses": list(statuses)}
    if init is not None:
        spec["initContainers"] = init_spec or [{"name": s["name"]} for s in init]
        status["initContainerStatuses"] = init
    if reason:
        status["reason"] = reason
    if conditions is not None:
        status["conditions"] = conditions
    metadata = meta("p")
    if deleting:
        metadata["deletionTimestamp"] = ts(timedelta(seconds=10))
    return {"metadata": metadata, "spec": spec, "status": status}


READY_TRUE = {"type": "Ready", "status": "True"}
INITIALIZED = {"type": "Initialized", "status": "True"}


@pytest.mark.parametrize(
    ("case", "obj", "ready", "status", "restarts"),
    [
        ("all running", pod([running("a"), running("b")]), "2/2", "Running", "0"),
        ("unscheduled", pod([], phase="Pending"), "0/1", "Pending", "0"),
        ("creating", pod([waiting("ContainerCreating")], phase="Pending"), "0/1", "ContainerCreating", "0"),
        (
            "crash loop with time suffix",
            pod([waiting("CrashLoopBackOff", restarts=4, last_finished=timedelta(minutes=10, seconds=30))]),
            "0/1",
            "CrashLoopBackOff",
            "4 (10m ago)",
        ),
        ("restarts without a last termination", pod([running(restarts=3)]), "1/1", "Running", "3"),
        (
            "first container in spec order wins",
            pod([waiting("ImagePullBackOff", "a"), waiting("ContainerCreating", "b")], phase="Pending"),
            "0/2",
            "ImagePullBackOff",
            "0",
        ),
        (
            "init progress",
            pod([waiting("PodInitializing")], phase="Pending", init=[terminated("i1"), running("i2")]),
            "0/1",
            "Init:1/2",
            "0",
        ),
        (
            "init crash loop counts only init restarts",
            pod(
                [waiting("PodInitializing", restarts=5)],
                phase="Pending",
                init=[waiting("CrashLoopBackOff", "i1", restarts=2, last_finished=timedelta(minutes=5))],
            ),
            "0/1",
            "Init:CrashLoopBackOff",
            "2 (5m ago)",
        ),
        (
            "init error",
            pod([], phase="Pending", init=[terminated("i1", reason="Error", exit_code=1)]),
            "0/1",
            "Init:Error",
            "0",
        ),
        (
            "init exit code",
            pod([], phase="Pending", init=[terminated("i1", exit_code=3)]),
            "0/1",
            "Init:ExitCode:3",
            "0",
        ),
        (
            "init signal",
            pod([], phase="Pending", init=[terminated("i1", exit_code=137, signal=9)]),
            "0/1",
            "Init:Signal:9",
            "0",
        ),
        ("completed", pod([terminated(reason="Completed")], phase="Succeeded"), "0/1", "Completed", "0"),
        ("error", pod([terminated(reason="Error", exit_code=1)], phase="Failed"), "0/1", "Error", "0"),
        ("exit code", pod([terminated(exit_code=137)], phase="Failed"), "0/1", "ExitCode:137", "0"),
        ("signal", pod([terminated(exit_code=137, signal=9)], phase="Failed"), "0/1", "Signal:9", "0"),
        ("evicted", pod([], phase="Failed", reason="Evicted"), "0/1", "Evicted", "0"),
        ("terminating", pod([running()], deleting=True), "1/1", "Terminating", "0"),
        (
            "finished pods are not terminating",
            pod([terminated(reason="Completed")], phase="Succeeded", deleting=True),
            "0/1",
            "Completed",
            "0",
        ),
        (
            "node lost while deleting",
            pod([running()], reason="NodeLost", deleting=True),
            "1/1",
            "Unknown",
            "0",
        ),
        ("node lost", pod([running()], reason="NodeLost"), "1/1", "NodeLost", "0"),
        (
            "completed beside a running container, pod ready",
            pod([terminated("a", reason="Completed"), running("b")], conditions=[READY_TRUE]),
            "1/2",
            "Running",
            "0",
        ),
        (
            "completed beside a running container, pod not ready",
            pod([terminated("a", reason="Completed"), running("b")], conditions=[]),
            "1/2",
            "NotReady",
            "0",
        ),
        (
            "scheduling gated",
            pod(
                [],
                phase="Pending",
                conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
            ),
            "0/1",
            "SchedulingGated",
            "0",
        ),
        (
            "sidecar counts as a container and its restarts count",
            pod(
                [running("app")],
                init=[running("sidecar", restarts=1, last_finished=timedelta(hours=3)) | {"started": True}],
                init_spec=[{"name": "sidecar", "restartPolicy": "Always"}],
                conditions=[INITIALIZED, READY_TRUE],
            ),
            "2/2",
            "Running",
            "1 (3h ago)",
        ),
    ],
)
def test_pod_ready_status_and_restarts(case: str, obj: dict, ready: str, status: str, restarts: str) -> None:
    cells = row_cells("", "pods", obj, now=NOW)
    assert cells[1:4] == [ready, status, restarts], case


@pytest.mark.parametrize(
    ("status", "spec", "expected"),
    [
        ({}, {}, ["<none>", "<none>", "<none>", "<none>"]),
        ({"podIP": "10.0.0.1"}, {"nodeName": "n1"}, ["10.0.0.1", "n1", "<none>", "<none>"]),
        (
            {"podIPs": [{"ip": "fd00::1"}, {"ip": "10.0.0.1"}], "nominatedNodeName": "n2"},
            {},
            ["fd00::1", "<none>", "n2", "<none>"],
        ),
        (
            {"conditions": [{"type": "g1", "status": "True"}, {"type": "g2", "status": "False"}]},
            {"readinessGates": [{"conditionType": "g1"}, {"conditionType": "g2"}, {"conditionType": "g3"}]},
            ["<none>", "<none>", "<none>", "1/3"],
        ),
    ],
)
def test_pod_wide_columns(status: dict, spec: dict, expected: list[str]) -> None:
    obj = {"metadata": meta("p"), "spec": {"containers": [{"name": "a"}], **spec}, "status": status}
    assert row_cells("", "pods", obj, now=NOW)[5:] == expected


def test_pod_columns_are_upstreams() -> None:
    columns = column_definitions("", "pods")
    assert [(c["name"], c["type"], c["format"], c["priority"]) for c in columns] == [
        ("Name", "string", "name", 0),
        ("Ready", "string", "", 0),
        ("Status", "string", "", 0),
        ("Restarts", "string", "", 0),
        ("Age", "string", "", 0),
        ("IP", "string", "", 1),
        ("Node", "string", "", 1),
        ("Nominated Node", "string", "", 1),
        ("Readiness Gates", "string", "", 1),
    ]
    assert columns[0]["description"].startswith("Name must be unique within a namespace.")
    assert list(columns[0]) == ["name", "type", "format", "description", "priority"]


# --- services, nodes, workloads -------------------------------------------------------------------


def service(spec: dict, status: dict | None = None) -> dict:
    return {"metadata": meta("svc"), "spec": spec, "status": status or {}}


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        (
            {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.1",
                "clusterIPs": ["10.96.0.1"],
                "ports": [{"port": 443, "protocol": "TCP"}],
            },
            None,
            ["ClusterIP", "10.96.0.1", "<none>", "443/TCP"],
        ),
        (
            {"type": "ClusterIP", "clusterIP": "None", "selector": {"app": "db"}},
            None,
            ["ClusterIP", "None", "<none>", "<none>"],
        ),
        (
            {
                "type": "NodePort",
                "clusterIPs": ["10.96.1.2"],
                "externalIPs": ["1.2.3.4"],
                "ports": [
                    {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                    {"port": 53, "protocol": "UDP"},
                ],
            },
            None,
            ["NodePort", "10.96.1.2", "1.2.3.4", "80:30080/TCP,53/UDP"],
        ),
        (
            {"type": "LoadBalancer", "clusterIPs": ["10.96.1.3"], "ports": [{"port": 80, "nodePort": 31000}]},
            None,
            ["LoadBalancer", "10.96.1.3", "<pending>", "80:31000/TCP"],
        ),
        (
            {"type": "LoadBalancer", "clusterIPs": ["10.96.1.3"]},
            {
                "loadBalancer": {
                    "ingress": [{"ip": "203.0.113.9"}, {"hostname": "a-very-long-hostname.example.com"}]
                }
            },
            ["LoadBalancer", "10.96.1.3", "203.0.113.9,a-very-long-hostname.example.com", "<none>"],
        ),
        (
            {"type": "LoadBalancer", "clusterIPs": ["10.96.1.3"], "externalIPs": ["5.6.7.8"]},
            {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}},
            ["LoadBalancer", "10.96.1.3", "203.0.113.9,5.6.7.8", "<none>"],
        ),
        (
            {"type": "ExternalName", "externalName": "db.example.com"},
            None,
            ["ExternalName", "<none>", "db.example.com", "<none>"],
        ),
    ],
)
def test_service_cells(spec: dict, status: dict | None, expected: list[str]) -> None:
    cells = row_cells("", "services", service(spec, status), now=NOW)
    assert cells[1:5] == expected
    assert cells[6] == ("app=db" if spec.get("selector") else "<none>")


def node(*, labels: dict | None = None, ready: str | None = "True", unschedulable: bool = False) -> dict:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {
        "metadata": {"name": "node-1", "labels": labels or {}, "creationTimestamp": ts(timedelta(days=3))},
        "spec": {"unschedulable": unschedulable} if unschedulable else {},
        "status": {
            "conditions": conditions,
            "addresses": [
                {"type": "Hostname", "address": "node-1"},
                {"type": "InternalIP", "address": "10.0.0.7"},
            ],
            "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian GNU/Linux 12 (bookworm)"},
        },
    }


@pytest.mark.parametrize(
    ("obj", "status", "roles"),
    [
        (node(), "Ready", "<none>"),
        (node(ready="False"), "NotReady", "<none>"),
        (node(ready="Unknown"), "NotReady", "<none>"),
        (node(ready=None), "Unknown", "<none>"),
        (node(unschedulable=True), "Ready,SchedulingDisabled", "<none>"),
        (
            node(
                labels={"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true"}
            ),
            "Ready",
            "control-plane,etcd",
        ),
        (node(labels={"kubernetes.io/role": "worker", "node-role.kubernetes.io/": ""}), "Ready", "worker"),
    ],
)
def test_node_status_and_roles(obj: dict, status: str, roles: str) -> None:
    assert row_cells("", "nodes", obj, now=NOW) == [
        "node-1",
        status,
        roles,
        "3d",
        "v1.32.4",
        "10.0.0.7",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "<unknown>",
        "<unknown>",
    ]


def test_deployment_cells() -> None:
    obj = {
        "metadata": meta("web", age=timedelta(days=2, hours=3)),
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}],
            },
            "template": {
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.27"},
                        {"name": "log", "image": "busybox"},
                    ]
                }
            },
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert row_cells("apps", "deployments", obj, now=NOW) == [
        "web",
        "2/3",
        3,
        2,
        "2d3h",
        "nginx,log",
        "nginx:1.27,busybox",
        "app=web,tier in (be,fe)",
    ]
    fresh = {"metadata": meta("new"), "spec": {}}
    assert row_cells("apps", "deployments", fresh, now=NOW)[1:4] == ["0/1", 0, 0]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, "<none>"),
        ({}, "<none>"),
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        (
            {
                "matchExpressions": [
                    {"key": "x", "operator": "Exists"},
                    {"key": "w", "operator": "DoesNotExist"},
                    {"key": "v", "operator": "NotIn", "values": ["b", "a"]},
                ]
            },
            "v notin (a,b),!w,x",
        ),
        ({"matchExpressions": [{"key": "x", "operator": "In", "values": []}]}, "<error>"),
    ],
)
def test_label_selector_formatting(selector: dict | None, expected: str) -> None:
    assert format_label_selector(selector) == expected


def job(conditions: Sequence[dict] = (), **spec: Any) -> dict:
    return {
        "metadata": meta("j", age=timedelta(minutes=30)),
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}, **spec},
        "status": {"conditions": list(conditions), "succeeded": 1},
    }


def cond(kind: str, status: str = "True") -> dict:
    return {"type": kind, "status": status}


@pytest.mark.parametrize(
    ("obj", "status", "completions"),
    [
        (job(completions=3), "Running", "1/3"),
        (job([cond("Complete")], completions=1), "Complete", "1/1"),
        (job([cond("Failed")]), "Failed", "1/1"),
        (job([cond("Suspended")], parallelism=4), "Suspended", "1/1 of 4"),
        (job([cond("Suspended", "False")]), "Running", "1/1"),
        (job([cond("FailureTarget")]), "FailureTarget", "1/1"),
        (job([cond("SuccessCriteriaMet"), cond("Complete")]), "Complete", "1/1"),
    ],
)
def test_job_status_and_completions(obj: dict, status: str, completions: str) -> None:
    assert row_cells("batch", "jobs", obj, now=NOW)[1:3] == [status, completions]


def test_job_duration_runs_until_completion() -> None:
    running_job = job()
    running_job["status"]["startTime"] = ts(timedelta(minutes=4, seconds=10))
    assert row_cells("batch", "jobs", running_job, now=NOW)[3] == "4m10s"
    running_job["status"]["completionTime"] = ts(timedelta(minutes=3))
    assert row_cells("batch", "jobs", running_job, now=NOW)[3] == "70s"
    assert row_cells("batch", "jobs", job(), now=NOW)[3] == ""


def test_cron_job_cells() -> None:
    obj = {
        "metadata": meta("nightly", age=timedelta(days=10)),
        "spec": {
            "schedule": "0 3 * * *",
            "suspend": False,
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}},
        },
        "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ts(timedelta(hours=9))},
    }
    cells = row_cells("batch", "cronjobs", obj, now=NOW)
    assert cells[:7] == ["nightly", "0 3 * * *", "<none>", "False", 1, "9h", "10d"]
    assert cells[7:] == ["c", "i", "<none>"]


def resource_metric(name: str, **target: Any) -> dict:
    return {"type": "Resource", "resource": {"name": name, "target": target}}


def cpu_usage(percent: int) -> dict:
    return {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": percent}}}


CPU_80 = resource_metric("cpu", type="Utilization", averageUtilization=80)
MEMORY_500MI = resource_metric("memory", type="AverageValue", averageValue="500Mi")
QPS_10 = {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"averageValue": "10"}}}
QUEUE_3 = {"type": "External", "external": {"metric": {"name": "q"}, "target": {"value": "3"}}}


@pytest.mark.parametrize(
    ("spec", "status", "targets"),
    [
        ({}, {}, "<none>"),
        ({"metrics": [CPU_80]}, {}, "cpu: <unknown>/80%"),
        ({"metrics": [CPU_80]}, {"currentMetrics": [cpu_usage(35)]}, "cpu: 35%/80%"),
        (
            {"metrics": [MEMORY_500MI, QPS_10, QUEUE_3]},
            {},
            "memory: <unknown>/500Mi, <unknown>/10 + 1 more...",
        ),
        ({"targetCPUUtilizationPercentage": 50}, {"currentCPUUtilizationPercentage": 20}, "cpu: 20%/50%"),
    ],
)
def test_hpa_targets(spec: dict, status: dict, targets: str) -> None:
    obj = {
        "metadata": meta("hpa"),
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, **spec},
        "status": {"currentReplicas": 2, **status},
    }
    cells = row_cells("autoscaling", "horizontalpodautoscalers", obj, now=NOW)
    assert cells == ["hpa", "Deployment/web", targets, "<unset>", 5, 2, "5m"]


# --- events, config, storage ----------------------------------------------------------------------


def test_core_event_cells() -> None:
    obj = {
        "metadata": meta("web.17a"),
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled",
        "type": "Normal",
        "message": "Container image pulled\n",
        "count": 3,
        "firstTimestamp": ts(timedelta(minutes=20)),
        "lastTimestamp": ts(timedelta(seconds=30)),
        "source": {"component": "kubelet", "host": "node-1"},
    }
    cells = row_cells("", "events", obj, now=NOW)
    assert cells[:5] == ["30s", "Normal", "Pulled", "pod/web", "spec.containers{nginx}"]
    assert cells[5:] == ["kubelet, node-1", "Container image pulled", "20m", 3, "web.17a"]
    names = [c["name"] for c in column_definitions("", "events")]
    assert names[:4] == ["Last Seen", "Type", "Reason", "Object"]


def test_events_k8s_io_event_prints_like_a_core_event() -> None:
    obj = {
        "apiVersion": "events.k8s.io/v1",
        "metadata": meta("e1"),
        "eventTime": "2026-03-01T11:58:00.000000Z",
        "regarding": {"kind": "Node", "name": "node-1"},
        "note": "Node is ready",
        "reason": "NodeReady",
        "type": "Normal",
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "series": {"count": 4, "lastObservedTime": "2026-03-01T11:59:30.000000Z"},
    }
    cells = row_cells("events.k8s.io", "events", obj, now=NOW)
    assert cells[:5] == ["30s", "Normal", "NodeReady", "node/node-1", ""]
    assert cells[5:] == ["kubelet, node-1", "Node is ready", "2m", 4, "e1"]
    assert column_definitions("events.k8s.io", "events") == column_definitions("", "events")


@pytest.mark.parametrize(
    ("group", "plural", "obj", "expected"),
    [
        ("", "configmaps", {"data": {"a": "1"}, "binaryData": {"b": "AA=="}}, ["cm", 2, "5m"]),
        ("", "secrets", {"type": "Opaque", "data": {"a": "MQ=="}}, ["cm", "Opaque", 1, "5m"]),
        ("", "serviceaccounts", {"secrets": [{"name": "t"}]}, ["cm", 1, "5m"]),
        ("", "namespaces", {"status": {"phase": "Terminating"}}, ["cm", "Terminating", "5m"]),
        (
            "policy",
            "poddisruptionbudgets",
            {"spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}},
            ["cm", "50%", "N/A", 1, "5m"],
        ),
        (
            "",
            "resourcequotas",
            {
                "status": {
                    "hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
                    "used": {"pods": "3", "requests.cpu": "500m"},
                }
            },
            ["cm", "pods: 3/10, requests.cpu: 500m/1", "limits.cpu: 0/2", "5m"],
        ),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            {
                "roleRef": {"kind": "ClusterRole", "name": "view"},
                "subjects": [
                    {"kind": "User", "name": "ann"},
                    {"kind": "ServiceAccount", "namespace": "ci", "name": "bot"},
                    {"kind": "Group", "name": "devs"},
                    {"kind": "User", "name": "bob"},
                ],
            },
            ["cm", "ClusterRole/view", "5m", "ann, bob", "devs", "ci/bot"],
        ),
        (
            "",
            "persistentvolumeclaims",
            {
                "spec": {"volumeName": "pv-1", "storageClassName": "standard"},
                "status": {
                    "phase": "Bound",
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                },
            },
            ["cm", "Bound", "pv-1", "1Gi", "RWO,RWX", "standard", "<unset>", "5m", "<unset>"],
        ),
        (
            "storage.k8s.io",
            "storageclasses",
            {
                "metadata": {"annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "rancher.io/local-path",
            },
            ["cm (default)", "rancher.io/local-path", "Delete", "Immediate", False, "5m"],
        ),
        (
            "",
            "endpoints",
            {
                "subsets": [
                    {
                        "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                        "ports": [{"port": 80}, {"port": 443}],
                    }
                ]
            },
            ["cm", "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...", "5m"],
        ),
        (
            "networking.k8s.io",
            "ingresses",
            {"spec": {"rules": [{"host": "a.example"}, {}], "tls": [{}]}},
            ["cm", "<none>", "a.example", "", "80, 443", "5m"],
        ),
        (
            "apps",
            "controllerrevisions",
            {
                "metadata": {
                    "ownerReferences": [
                        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": True}
                    ]
                },
                "revision": 2,
            },
            ["cm", "statefulset.apps/db", 2, "5m"],
        ),
        (
            "apiregistration.k8s.io",
            "apiservices",
            {
                "status": {
                    "conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]
                },
                "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
            },
            ["cm", "kube-system/metrics-server", "False (MissingEndpoints)", "5m"],
        ),
        ("", "limitranges", {}, ["cm", "2026-03-01T11:55:00Z"]),
        ("example.com", "widgets", {}, ["cm", "2026-03-01T11:55:00Z"]),
    ],
)
def test_cells_of_other_kinds(group: str, plural: str, obj: dict, expected: list) -> None:
    obj = {**obj, "metadata": {**meta("cm"), **obj.get("metadata", {})}}
    assert row_cells(group, plural, obj, now=NOW) == expected


@pytest.mark.parametrize(("group", "plural"), sorted(PRINTERS))
def test_every_printer_yields_one_cell_per_column(group: str, plural: str) -> None:
    for obj in ({}, {"metadata": meta("x"), "spec": {}, "status": {}}):
        cells = row_cells(group, plural, obj, now=NOW)
        assert len(cells) == len(column_definitions(group, plural))
        orjson.dumps(cells)  # JSON-serialisable


def test_unknown_resources_get_the_default_table() -> None:
    columns = column_definitions("example.com", "widgets")
    assert [(c["name"], c["type"], c["format"]) for c in columns] == [
        ("Name", "string", "name"),
        ("Created At", "date", ""),
    ]
    cells = row_cells("example.com", "widgets", {"metadata": {"name": "w"}}, now=NOW)
    assert cells == ["w", "0001-01-01T00:00:00Z"]


def test_custom_resource_printer_columns() -> None:
    printer_columns = [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Labels", "type": "string", "jsonPath": ".metadata.labels", "priority": 1},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "Started", "type": "date", "jsonPath": ".status.startedAt"},
    ]
    obj = {
        "metadata": {"name": "w1", "labels": {"b": "2", "a": "1"}},
        "spec": {"replicas": 3},
        "status": {
            "conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}],
            "startedAt": ts(timedelta(hours=4)),
        },
    }
    assert custom_resource_cells(printer_columns, obj, NOW) == ["w1", 3, "True", "map[a:1 b:2]", None, "4h"]
    columns = custom_resource_columns(printer_columns)
    assert [c["name"] for c in columns] == ["Name", "Replicas", "Ready", "Labels", "Missing", "Started"]
    assert columns[3]["priority"] == 1
    assert (
        columns[1]["description"] == "Custom resource definition column (in JSONPath format): .spec.replicas"
    )
    assert [c["name"] for c in custom_resource_columns([])] == ["Name", "Age"]
    assert custom_resource_cells([], {"metadata": meta("w")}, NOW) == ["w", "5m"]


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (3, "3"),
        (3.0, "3"),
        (1.5, "1.5"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (0.00001, "1e-05"),
        (True, "true"),
        (None, None),
        (["a", 1], "[a 1]"),
        ({"b": 1, "a": {"c": "d"}}, "map[a:map[c:d] b:1]"),
    ],
)
def test_string_printer_columns_print_like_go(value: Any, printed: str | None) -> None:
    printer_columns = [{"name": "V", "type": "string", "jsonPath": ".spec.v"}]
    assert (
        custom_resource_cells(printer_columns, {"metadata": {"name": "w"}, "spec": {"v": value}}, NOW)[1]
        == printed
    )


def test_custom_resource_table_uses_printer_columns() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta("w"), "spec": {"size": 2}}
    printer_columns = [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]
    table = build_table(
        "example.com",
        "widgets",
        [obj],
        include_object="Metadata",
        resource_version="3",
        continue_token=None,
        now=NOW,
        printer_columns=printer_columns,
    )
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size"]
    assert table["rows"][0]["cells"] == ["w", 2]


# --- the Table wire form --------------------------------------------------------------------------


def test_table_with_metadata_rows() -> None:
    obj = pod([terminated(reason="Completed")], phase="Succeeded")
    obj["metadata"]["labels"] = {"app": "x"}
    table = build_table(
        "", "pods", [obj], include_object="", resource_version="42", continue_token="tok", now=NOW
    )
    assert list(table) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert table["metadata"] == {"resourceVersion": "42", "continue": "tok"}
    [row] = table["rows"]
    assert list(row) == ["cells", "conditions", "object"]
    assert row["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


@pytest.mark.parametrize(
    ("include_object", "expected"),
    [("None", None), ("Object", "full"), ("Metadata", "partial")],
)
def test_table_include_object(include_object: str, expected: str | None) -> None:
    obj = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta("cm"), "data": {}}
    table = build_table(
        "",
        "configmaps",
        [obj],
        include_object=include_object,
        resource_version="7",
        continue_token=None,
        now=NOW,
        api_version="meta.k8s.io/v1beta1",
        with_columns=False,
    )
    assert table["apiVersion"] == "meta.k8s.io/v1beta1"
    assert table["columnDefinitions"] is None
    assert table["metadata"] == {"resourceVersion": "7"}
    row_object = table["rows"][0]["object"]
    if expected is None:
        assert row_object is None
    elif expected == "full":
        assert row_object is obj
    else:
        assert row_object["apiVersion"] == "meta.k8s.io/v1beta1"


def test_unrecognized_include_object_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as caught:
        build_table("", "pods", [], include_object="All", resource_version="1", continue_token=None, now=NOW)
    assert (caught.value.code, caught.value.message) == (400, 'unrecognized includeObject value: "All"')


# --- the real kubectl ---------------------------------------------------------------------------------

KUBECTL = "/usr/bin/kubectl"
needs_kubectl = pytest.mark.skipif(not os.access(KUBECTL, os.X_OK), reason="kubectl is not installed")

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4+kubelite",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def api_resource(name: str, kind: str, short: str, *, namespaced: bool = True) -> dict:
    """An APIResourceList entry; namespaced kinds here are all in the "all" category."""
    out = {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind}
    out |= {"verbs": ALL_VERBS, "shortNames": [short]}
    return out | ({"categories": ["all"]} if namespaced else {})


RESOURCES = {
    ("", "v1"): [
        api_resource("pods", "Pod", "po"),
        api_resource("services", "Service", "svc"),
        api_resource("nodes", "Node", "no", namespaced=False),
    ],
    ("apps", "v1"): [api_resource("deployments", "Deployment", "deploy")],
}
KINDS = {"pods": "Pod", "services": "Service", "nodes": "Node", "deployments": "Deployment"}

# Ages chosen away from rounding boundaries: kubectl's request lands a second or two after "now".
TWO_DAYS = timedelta(days=2, hours=3, minutes=20)
THREE_HOURS = timedelta(hours=3, minutes=10, seconds=20)
FORTY_FIVE_MINUTES = timedelta(minutes=45, seconds=20)


def sample_objects(now: datetime) -> dict[tuple[str, str], list[dict]]:
    def m(name: str, age: timedelta, namespace: str | None = "default", **extra: Any) -> dict:
        out = {"name": name, "uid": f"uid-{name}", "resourceVersion": "11", "creationTimestamp": ts(age, now)}
        if namespace:
            out["namespace"] = namespace
        return {**out, **extra}

    def ready(name: str) -> dict:
        return {"name": name, "ready": True, "restartCount": 0, "state": {"running": {}}}

    crash = {
        "name": "api",
        "ready": False,
        "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {
            "terminated": {"exitCode": 1, "finishedAt": ts(timedelta(minutes=10, seconds=30), now)}
        },
    }
    pods = [
        {
            "metadata": m("web-7d4b9c-abcde", TWO_DAYS, labels={"app": "web", "pod-template-hash": "7d4b9c"}),
            "spec": {"nodeName": "node-1", "containers": [{"name": "nginx"}, {"name": "log"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.244.0.5",
                "podIPs": [{"ip": "10.244.0.5"}],
                "containerStatuses": [ready("nginx"), ready("log")],
            },
        },
        {
            "metadata": m("api-0", FORTY_FIVE_MINUTES),
            "spec": {"nodeName": "node-2", "containers": [{"name": "api"}]},
            "status": {"phase": "Running", "podIP": "10.244.1.9", "containerStatuses": [crash]},
        },
        {
            "metadata": m("migrate", THREE_HOURS, labels={"job": "migrate"}),
            "spec": {
                "nodeName": "node-1",
                "initContainers": [{"name": "wait"}, {"name": "schema"}],
                "containers": [{"name": "app"}],
            },
            "status": {
                "phase": "Pending",
                "initContainerStatuses": [
                    {
                        "name": "wait",
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                    },
                    ready("schema"),
                ],
                "containerStatuses": [
                    {"name": "app", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
                ],
            },
        },
        {
            "metadata": m(
                "coredns-5d78c9869d-x2x7z", TWO_DAYS, namespace="kube-system", labels={"k8s-app": "dns"}
            ),
            "spec": {"nodeName": "node-1", "containers": [{"name": "coredns"}]},
            "status": {"phase": "Running", "podIP": "10.244.0.2", "containerStatuses": [ready("coredns")]},
        },
    ]
    deployments = [
        {
            "metadata": m("web", TWO_DAYS),
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}},
            },
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        },
    ]
    services = [
        {
            "metadata": m("kubernetes", TWO_DAYS),
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.1",
                "clusterIPs": ["10.96.0.1"],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            },
        },
        {
            "metadata": m("web", FORTY_FIVE_MINUTES),
            "spec": {
                "type": "NodePort",
                "clusterIP": "10.96.12.34",
                "clusterIPs": ["10.96.12.34"],
                "selector": {"app": "web"},
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP", "targetPort": 80}],
            },
        },
        {
            "metadata": m("edge", THREE_HOURS),
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "10.96.55.1",
                "clusterIPs": ["10.96.55.1"],
                "ports": [
                    {"port": 80, "nodePort": 31380, "protocol": "TCP"},
                    {"port": 443, "nodePort": 31443, "protocol": "TCP"},
                ],
            },
            "status": {"loadBalancer": {}},
        },
    ]
    nodes = [
        {
            "metadata": m(
                "node-1", TWO_DAYS, namespace=None, labels={"node-role.kubernetes.io/control-plane": ""}
            ),
            "spec": {},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}],
                "nodeInfo": {
                    "kubeletVersion": "v1.32.4+kubelite",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "kernelVersion": "6.8.0",
                    "containerRuntimeVersion": "containerd://1.7.24",
                },
            },
        },
        {
            "metadata": m("node-2", THREE_HOURS, namespace=None),
            "spec": {"unschedulable": True},
            "status": {
                "conditions": [{"type": "Ready", "status": "False"}],
                "nodeInfo": {"kubeletVersion": "v1.32.4+kubelite"},
            },
        },
    ]
    for group_version, kind, items in [
        ("v1", "Pod", pods),
        ("apps/v1", "Deployment", deployments),
        ("v1", "Service", services),
        ("v1", "Node", nodes),
    ]:
        for item in items:
            item.update({"kind": kind, "apiVersion": group_version})
    return {
        ("", "pods"): pods,
        ("apps", "deployments"): deployments,
        ("", "services"): services,
        ("", "nodes"): nodes,
    }


@dataclass
class FakeApiServer:
    """Version, legacy discovery and list/watch over fixed objects, answering Tables when asked."""

    objects: dict[tuple[str, str], list[dict]]
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (path?query, accept, includeObject)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/version", self.version)
        app.router.add_get("/api", self.core_versions)
        app.router.add_get("/apis", self.groups)
        app.router.add_get("/api/v1", self.resource_list)
        app.router.add_get("/apis/{group}/{version}", self.resource_list)
        app.router.add_get("/api/v1/namespaces/{namespace}/{plural}", self.collection)
        app.router.add_get("/api/v1/{plural}", self.collection)
        app.router.add_get("/apis/{group}/{version}/namespaces/{namespace}/{plural}", self.collection)
        app.router.add_get("/apis/{group}/{version}/{plural}", self.collection)
        return app

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response(VERSION)

    async def core_versions(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}],
            }
        )

    async def groups(self, request: web.Request) -> web.Response:
        version = {"groupVersion": "apps/v1", "version": "v1"}
        return web.json_response(
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [{"name": "apps", "versions": [version], "preferredVersion": version}],
            }
        )

    async def resource_list(self, request: web.Request) -> web.Response:
        group, version = request.match_info.get("group", ""), request.match_info.get("version", "v1")
        if (group, version) not in RESOURCES:
            raise web.HTTPNotFound()
        group_version = f"{group}/{version}" if group else version
        return web.json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": RESOURCES[(group, version)],
            }
        )

    async def collection(self, request: web.Request) -> web.StreamResponse:
        group, plural = request.match_info.get("group", ""), request.match_info["plural"]
        namespace = request.match_info.get("namespace")
        accept = request.headers.get("Accept", "")
        include_object = request.query.get("includeObject", "")
        self.requests.append((request.path_qs, accept, include_object))
        if (group, plural) not in self.objects:
            raise web.HTTPNotFound()
        items = [
            o
            for o in self.objects[(group, plural)]
            if namespace is None or o["metadata"].get("namespace") == namespace
        ]
        now = datetime.now(UTC)
        as_table = "as=Table" in accept
        if request.query.get("watch") in ("true", "1"):
            return await self.watch(request, group, plural, items, include_object, now)
        if not as_table:
            kind = KINDS[plural] + "List"
            return web.json_response(
                {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "11"}, "items": items}
            )
        table = build_table(
            group,
            plural,
            items,
            include_object=include_object,
            resource_version="11",
            continue_token=None,
            now=now,
        )
        return web.Response(body=orjson.dumps(table), content_type="application/json")

    async def watch(
        self,
        request: web.Request,
        group: str,
        plural: str,
        items: list[dict],
        include_object: str,
        now: datetime,
    ) -> web.StreamResponse:
        """Two events (the second without column definitions, as upstream), then the stream ends."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        updated = orjson.loads(orjson.dumps(items[0]))
        updated["metadata"]["resourceVersion"] = "12"
        updated["metadata"]["deletionTimestamp"] = ts(timedelta(0), now)
        for index, obj in enumerate([updated, updated]):
            table = build_table(
                group,
                plural,
                [obj],
                include_object=include_object,
                resource_version="12",
                continue_token=None,
                now=now,
                with_columns=index == 0,
            )
            await response.write(orjson.dumps({"type": "MODIFIED", "object": table}) + b"\n")
        await response.write_eof()
        return response


@pytest.fixture
async def api_server(tmp_path: Path) -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer(sample_objects(datetime.now(UTC)))
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


async def kubectl(server: FakeApiServer, tmp_path: Path, *args: str) -> str:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters: [{{name: t, cluster: {{server: '{server.url}'}}}}]\n"
        "users: [{name: t, user: {}}]\n"
        "contexts: [{name: t, context: {cluster: t, user: t, namespace: default}}]\n"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(kubeconfig),
        "--cache-dir",
        str(tmp_path / "cache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert stderr.decode() == ""
    return stdout.decode()


def lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


@needs_kubectl
async def test_kubectl_get_pods(api_server: FakeApiServer, tmp_path: Path) -> None:
    out = await kubectl(api_server, tmp_path, "get", "pods")
    assert out == dedent(
        """\
        NAME               READY   STATUS             RESTARTS      AGE
        web-7d4b9c-abcde   2/2     Running            0             2d3h
        api-0              0/1     CrashLoopBackOff   4 (10m ago)   45m
        migrate            0/1     Init:1/2           0             3h10m
        """
    )
    path, accept, include_object = api_server.requests[-1]
    assert path == "/api/v1/namespaces/default/pods?limit=500"
    assert accept.startswith("application/json;as=Table;v=v1;g=meta.k8s.io")
    assert include_object == ""


@needs_kubectl
async def test_kubectl_get_pods_wide(api_server: FakeApiServer, tmp_path: Path) -> None:
    out = await kubectl(api_server, tmp_path, "get", "pods", "-o", "wide")
    assert out == dedent(
        """\
        NAME               READY   STATUS             RESTARTS      AGE     IP           NODE     NOMINATED NODE   READINESS GATES
        web-7d4b9c-abcde   2/2     Running            0             2d3h    10.244.0.5   node-1   <none>           <none>
        api-0              0/1     CrashLoopBackOff   4 (10m ago)   45m     10.244.1.9   node-2   <none>           <none>
        migrate            0/1     Init:1/2           0             3h10m   <none>       node-1   <none>           <none>
        """  # noqa: E501
    )


@needs_kubectl
async def test_kubectl_get_pods_all_namespaces_and_labels(api_server: FakeApiServer, tmp_path: Path) -> None:
    out = await kubectl(api_server, tmp_path, "get", "pods", "-A", "--show-labels")
    assert out == dedent(
        """\
        NAMESPACE     NAME                       READY   STATUS             RESTARTS      AGE     LABELS
        default       web-7d4b9c-abcde           2/2     Running            0             2d3h    app=web,pod-template-hash=7d4b9c
        default       api-0                      0/1     CrashLoopBackOff   4 (10m ago)   45m     <none>
        default       migrate                    0/1     Init:1/2           0             3h10m   job=migrate
        kube-system   coredns-5d78c9869d-x2x7z   1/1     Running            0             2d3h    k8s-app=dns
        """  # noqa: E501
    )
    assert api_server.requests[-1][0] == "/api/v1/pods?limit=500"


@needs_kubectl
async def test_kubectl_sort_by_reads_full_objects(api_server: FakeApiServer, tmp_path: Path) -> None:
    out = await kubectl(api_server, tmp_path, "get", "pods", "--sort-by=.metadata.name", "-o", "name")
    assert lines(out) == ["pod/api-0", "pod/migrate", "pod/web-7d4b9c-abcde"]
    out = await kubectl(api_server, tmp_path, "get", "pods", "--sort-by=.metadata.name")
    assert [line.split()[0] for line in lines(out)] == ["NAME", "api-0", "migrate", "web-7d4b9c-abcde"]
    assert api_server.requests[-1][2] == "Object"


@needs_kubectl
async def test_kubectl_get_deployments(api_server: FakeApiServer, tmp_path: Path) -> None:
    out = await kubectl(api_server, tmp_path, "get", "deploy")
    assert out == dedent(
        """\
        NAME   READY   UP-TO-DATE   AVAILABLE   AGE
        web    2/3     3            2           2d3h
        """
    )
    out = await kubectl(api_server, tmp_path, "get", "deploy", "-o", "wide")
    assert out == dedent(
        """\
        NAME   READY   UP-TO-DATE   AVAILABLE   AGE    CONTAINERS   IMAGES       SELECTOR
        web    2/3     3            2           2d3h   nginx        nginx:1.27   app=web
        """
    )


@needs_kubectl
async def test_kubectl_get_services(api_server: FakeApiServer, tmp_path: Path) -> None:
    out = await kubectl(api_server, tmp_path, "get", "svc")
    assert out == dedent(
        """\
        NAME         TYPE           CLUSTER-IP    EXTERNAL-IP   PORT(S)                      AGE
        kubernetes   ClusterIP      10.96.0.1     <none>        443/TCP                      2d3h
        web          NodePort       10.96.12.34   <none>        80:30080/TCP                 45m
        edge         LoadBalancer   10.96.55.1    <pending>     80:31380/TCP,443:31443/TCP   3h10m
        """
    )


@needs_kubectl
async def test_kubectl_get_nodes(api_server: FakeApiServer, tmp_path: Path) -> None:
    out = await kubectl(api_server, tmp_path, "get", "nodes")
    assert out == dedent(
        """\
        NAME     STATUS                        ROLES           AGE     VERSION
        node-1   Ready                         control-plane   2d3h    v1.32.4+kubelite
        node-2   NotReady,SchedulingDisabled   <none>          3h10m   v1.32.4+kubelite
        """
    )
    out = await kubectl(api_server, tmp_path, "get", "nodes", "-o", "wide")
    wide = dedent(
        """\
        NAME     STATUS                        ROLES           AGE     VERSION            INTERNAL-IP   EXTERNAL-IP   OS-IMAGE                         KERNEL-VERSION   CONTAINER-RUNTIME
        node-1   Ready                         control-plane   2d3h    v1.32.4+kubelite   172.18.0.2    <none>        Debian GNU/Linux 12 (bookworm)   6.8.0            containerd://1.7.24
        """  # noqa: E501
    )
    assert lines(out)[:2] == lines(wide)


@needs_kubectl
async def test_kubectl_watch_accepts_events_without_column_definitions(
    api_server: FakeApiServer, tmp_path: Path
) -> None:
    out = await kubectl(api_server, tmp_path, "get", "pods", "-w")
    assert out == dedent(
        """\
        NAME               READY   STATUS             RESTARTS      AGE
        web-7d4b9c-abcde   2/2     Running            0             2d3h
        api-0              0/1     CrashLoopBackOff   4 (10m ago)   45m
        migrate            0/1     Init:1/2           0             3h10m
        web-7d4b9c-abcde   2/2     Terminating        0             2d3h
        web-7d4b9c-abcde   2/2     Terminating        0             2d3h
        """
    )
    path = api_server.requests[-1][0]
    assert path.startswith("/api/v1/namespaces/default/pods?") and "watch=true" in path
    assert "resourceVersion=11" in path
