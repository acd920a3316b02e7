"""Workload controllers: replication controllers, replica sets, deployments, stateful sets, daemon
sets, jobs, cron jobs, controller revisions, HPAs and disruption budgets.

Replica counts read as the defaulted internal type does: a v1 object without `spec.replicas` has 1.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubelite.apiserver.tables import descriptions as doc
from kubelite.apiserver.tables.format import (
    AGE,
    CONTAINERS,
    IMAGES,
    NAME,
    Obj,
    age,
    as_int,
    as_list,
    bool_ptr,
    column,
    format_label_selector,
    format_labels,
    get,
    human_duration,
    int_or_string,
    layout_containers,
    name,
    parse_timestamp,
    quantity_ptr,
    selector_string,
    since,
)

REPLICATION_CONTROLLER_COLUMNS = [
    NAME,
    column("Desired", "integer", doc.RC_SPEC_REPLICAS),
    column("Current", "integer", doc.RC_STATUS_REPLICAS),
    column("Ready", "integer", doc.RC_READY_REPLICAS),
    AGE,
    CONTAINERS,
    IMAGES,
    column("Selector", priority=1, description=doc.RC_SELECTOR),
]
REPLICA_SET_COLUMNS = [
    NAME,
    column("Desired", "integer", doc.RS_SPEC_REPLICAS),
    column("Current", "integer", doc.RS_STATUS_REPLICAS),
    column("Ready", "integer", doc.RS_READY_REPLICAS),
    AGE,
    CONTAINERS,
    IMAGES,
    column("Selector", priority=1, description=doc.RS_SELECTOR),
]
DEPLOYMENT_COLUMNS = [
    NAME,
    column("Ready", description="Number of the pod with ready state"),
    column("Up-to-date", description=doc.DEPLOY_UPDATED),
    column("Available", description=doc.DEPLOY_AVAILABLE),
    AGE,
    CONTAINERS,
    IMAGES,
    column("Selector", priority=1, description=doc.DEPLOY_SELECTOR),
]
STATEFUL_SET_COLUMNS = [
    NAME,
    column("Ready", description="Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
]
DAEMON_SET_COLUMNS = [
    NAME,
    column("Desired", "integer", doc.DS_DESIRED),
    column("Current", "integer", doc.DS_CURRENT),
    column("Ready", "integer", doc.DS_READY),
    column("Up-to-date", "integer", doc.DS_UPDATED),
    column("Available", "integer", doc.DS_AVAILABLE),
    column("Node Selector", description=doc.POD_NODE_SELECTOR),
    AGE,
    CONTAINERS,
    IMAGES,
    column("Selector", priority=1, description=doc.DS_SELECTOR),
]
JOB_COLUMNS = [
    NAME,
    column("Status", description="Status of the job."),
    column("Completions", description=doc.JOB_SUCCEEDED),
    column("Duration", description="Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    column("Selector", priority=1, description=doc.JOB_SELECTOR),
]
CRON_JOB_COLUMNS = [
    NAME,
    column("Schedule", description=doc.CJ_SCHEDULE),
    column("Timezone", description=doc.CJ_TIMEZONE),
    column("Suspend", "boolean", doc.CJ_SUSPEND),
    column("Active", "integer", doc.CJ_ACTIVE),
    column("Last Schedule", description=doc.CJ_LAST_SCHEDULE),
    AGE,
    CONTAINERS,
    IMAGES,
    column("Selector", priority=1, description=doc.JOB_SELECTOR),
]
CONTROLLER_REVISION_COLUMNS = [
    NAME,
    column("Controller", description="Controller of the object"),
    column("Revision", description=doc.CR_REVISION),
    AGE,
]
HPA_COLUMNS = [
    NAME,
    column("Reference", description=doc.HPA_SCALE_TARGET_REF),
    column("Targets", description=doc.HPA_METRICS),
    column("MinPods", description=doc.HPA_MIN_REPLICAS),
    column("MaxPods", description=doc.HPA_MAX_REPLICAS),
    column("Replicas", description=doc.HPA_CURRENT_REPLICAS),
    AGE,
]
PDB_COLUMNS = [
    NAME,
    column("Min Available", description="The minimum number of pods that must be available."),
    column("Max Unavailable", description="The maximum number of pods that may be unavailable."),
    column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    AGE,
]


def _replicas(obj: Obj) -> int:
    return as_int(get(obj, "spec", "replicas"), 1)


def replication_controller_cells(obj: Obj, now: datetime) -> list:
    names, images = layout_containers(get(obj, "spec", "template", "spec", "containers"))
    status = get(obj, "status") or {}
    return [
        name(obj),
        _replicas(obj),
        as_int(get(status, "replicas")),
        as_int(get(status, "readyReplicas")),
        age(obj, now),
        names,
        images,
        format_labels(get(obj, "spec", "selector")),
    ]


def replica_set_cells(obj: Obj, now: datetime) -> list:
    names, images = layout_containers(get(obj, "spec", "template", "spec", "containers"))
    status = get(obj, "status") or {}
    return [
        name(obj),
        _replicas(obj),
        as_int(get(status, "replicas")),
        as_int(get(status, "readyReplicas")),
        age(obj, now),
        names,
        images,
        format_label_selector(get(obj, "spec", "selector")),
    ]


def deployment_cells(obj: Obj, now: datetime) -> list:
    names, images = layout_containers(get(obj, "spec", "template", "spec", "containers"))
    selector = selector_string(get(obj, "spec", "selector"))
    status = get(obj, "status") or {}
    return [
        name(obj),
        f"{as_int(get(status, 'readyReplicas'))}/{_replicas(obj)}",
        as_int(get(status, "updatedReplicas")),
        as_int(get(status, "availableReplicas")),
        age(obj, now),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


def stateful_set_cells(obj: Obj, now: datetime) -> list:
    names, images = layout_containers(get(obj, "spec", "template", "spec", "containers"))
    ready = as_int(get(obj, "status", "readyReplicas"))
    return [name(obj), f"{ready}/{_replicas(obj)}", age(obj, now), names, images]


def daemon_set_cells(obj: Obj, now: datetime) -> list:
    names, images = layout_containers(get(obj, "spec", "template", "spec", "containers"))
    status = get(obj, "status") or {}
    counts = [
        as_int(get(status, field))
        for field in (
            "desiredNumberScheduled",
            "currentNumberScheduled",
            "numberReady",
            "updatedNumberScheduled",
            "numberAvailable",
        )
    ]
    node_selector = format_labels(get(obj, "spec", "template", "spec", "nodeSelector"))
    selector = format_label_selector(get(obj, "spec", "selector"))
    return [name(obj), *counts, node_selector, age(obj, now), names, images, selector]


def _job_condition(obj: Obj, condition_type: str) -> bool:
    """`hasJobCondition`: the first condition of the type decides."""
    for condition in as_list(get(obj, "status", "conditions")):
        if get(condition, "type") == condition_type:
            return get(condition, "status") == "True"
    return False


def job_status(obj: Obj) -> str:
    if _job_condition(obj, "Complete"):
        return "Complete"
    if _job_condition(obj, "Failed"):
        return "Failed"
    if get(obj, "metadata", "deletionTimestamp") is not None:
        return "Terminating"
    if _job_condition(obj, "Suspended"):
        return "Suspended"
    if _job_condition(obj, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def job_cells(obj: Obj, now: datetime) -> list:
    succeeded = as_int(get(obj, "status", "succeeded"))
    completions = get(obj, "spec", "completions")
    if completions is not None:
        completions_cell = f"{succeeded}/{as_int(completions)}"
    elif as_int(get(obj, "spec", "parallelism")) > 1:
        completions_cell = f"{succeeded}/1 of {as_int(get(obj, 'spec', 'parallelism'))}"
    else:
        completions_cell = f"{succeeded}/1"
    start = parse_timestamp(get(obj, "status", "startTime"))
    end = parse_timestamp(get(obj, "status", "completionTime"))
    duration = "" if start is None else human_duration((end or now) - start)
    names, images = layout_containers(get(obj, "spec", "template", "spec", "containers"))
    selector = format_label_selector(get(obj, "spec", "selector"))
    return [name(obj), job_status(obj), completions_cell, duration, age(obj, now), names, images, selector]


def cron_job_cells(obj: Obj, now: datetime) -> list:
    last = get(obj, "status", "lastScheduleTime")
    job_spec = get(obj, "spec", "jobTemplate", "spec")
    names, images = layout_containers(get(job_spec, "template", "spec", "containers"))
    return [
        name(obj),
        str(get(obj, "spec", "schedule") or ""),
        get(obj, "spec", "timeZone") if get(obj, "spec", "timeZone") is not None else "<none>",
        bool_ptr(get(obj, "spec", "suspend")),
        len(as_list(get(obj, "status", "active"))),
        "<none>" if last is None else since(last, now),
        age(obj, now),
        names,
        images,
        format_label_selector(get(job_spec, "selector")),
    ]


def _group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def controller_revision_cells(obj: Obj, now: datetime) -> list:
    controller = "<none>"
    for ref in as_list(get(obj, "metadata", "ownerReferences")):
        if get(ref, "controller") is True:
            kind, group = str(get(ref, "kind") or ""), _group_of(str(get(ref, "apiVersion") or ""))
            group_kind = f"{kind}.{group}" if group else kind
            controller = f"{group_kind.lower()}/{get(ref, 'name')}" if group_kind else str(get(ref, "name"))
            break
    return [name(obj), controller, as_int(get(obj, "revision")), age(obj, now)]


def _v1_hpa_metrics(obj: Obj) -> tuple[list, list]:
    """autoscaling/v1 carries one CPU target; convert it as upstream does into the internal (v2) form."""
    target = get(obj, "spec", "targetCPUUtilizationPercentage")
    current = get(obj, "status", "currentCPUUtilizationPercentage")
    specs, statuses = [], []
    if target is not None:
        specs.append(
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
            }
        )
    if current is not None:
        statuses.append(
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}
        )
    return specs, statuses


_METRIC_SOURCE_FIELDS = {
    "External": "external",
    "Pods": "pods",
    "Object": "object",
    "Resource": "resource",
    "ContainerResource": "containerResource",
}


def _metric(kind: str, spec: Any, status: Any) -> str:
    """One `formatHPAMetrics` entry: "current/target", "<unknown>" until the HPA has observed a value."""
    key = _METRIC_SOURCE_FIELDS[kind]
    source, observed = get(spec, key) or {}, get(status, key)
    target, current = get(source, "target") or {}, get(observed, "current") or {}
    unknown = observed is None
    if kind == "Pods":
        value = "<unknown>" if unknown else quantity_ptr(current.get("averageValue"))
        return f"{value}/{quantity_ptr(target.get('averageValue'))}"
    if kind in ("External", "Object"):
        if target.get("averageValue") is not None:
            average = current.get("averageValue")
            return f"{'<unknown>' if average is None else average}/{target['averageValue']} (avg)"
        value = "<unknown>" if unknown else quantity_ptr(current.get("value"))
        return f"{value}/{quantity_ptr(target.get('value'))}"
    resource = str(source.get("name") or "")
    if target.get("averageValue") is not None:
        value = "<unknown>" if unknown else quantity_ptr(current.get("averageValue"))
        return f"{resource}: {value}/{target['averageValue']}"
    utilization = current.get("averageUtilization")
    value = "<unknown>" if unknown or utilization is None else f"{as_int(utilization)}%"
    goal = target.get("averageUtilization")
    return f"{resource}: {value}/{'<auto>' if goal is None else f'{as_int(goal)}%'}"


def format_hpa_metrics(specs: list, statuses: list) -> str:
    """`formatHPAMetrics`: at most two targets, then "+ N more..."."""
    if not specs:
        return "<none>"
    entries = []
    for index, spec in enumerate(specs):
        status = statuses[index] if index < len(statuses) else None
        kind = get(spec, "type")
        if kind in _METRIC_SOURCE_FIELDS:
            entries.append(_metric(str(kind), spec, status))
        else:
            entries.append("<unknown type>")
    shown = ", ".join(entries[:2])
    return f"{shown} + {len(entries) - 2} more..." if len(entries) > 2 else shown


def hpa_cells(obj: Obj, now: datetime) -> list:
    if (
        "targetCPUUtilizationPercentage" in (get(obj, "spec") or {})
        or str(obj.get("apiVersion")) == "autoscaling/v1"
    ):
        specs, statuses = _v1_hpa_metrics(obj)
    else:
        specs, statuses = as_list(get(obj, "spec", "metrics")), as_list(get(obj, "status", "currentMetrics"))
    ref = get(obj, "spec", "scaleTargetRef") or {}
    min_replicas = get(obj, "spec", "minReplicas")
    return [
        name(obj),
        f"{ref.get('kind') or ''}/{ref.get('name') or ''}",
        format_hpa_metrics(specs, statuses),
        "<unset>" if min_replicas is None else str(as_int(min_replicas)),
        as_int(get(obj, "spec", "maxReplicas")),
        as_int(get(obj, "status", "currentReplicas")),
        age(obj, now),
    ]


def pdb_cells(obj: Obj, now: datetime) -> list:
    spec = get(obj, "spec") or {}
    min_available = "N/A" if spec.get("minAvailable") is None else int_or_string(spec["minAvailable"])
    max_unavailable = "N/A" if spec.get("maxUnavailable") is None else int_or_string(spec["maxUnavailable"])
    allowed = as_int(get(obj, "status", "disruptionsAllowed"))
    return [name(obj), min_available, max_unavailable, allowed, age(obj, now)]
