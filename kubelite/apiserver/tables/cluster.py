"""Cluster-level kinds: nodes, namespaces, events, leases, scheduling and node classes, component
statuses, certificate signing requests, API services and admission configuration.

Events of both groups print through one printer, as upstream converts events.k8s.io/v1 objects to
the internal core Event first; `core_event_view` does that field mapping.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kubelite.apiserver.tables import descriptions as doc
from kubelite.apiserver.tables.format import (
    AGE,
    NAME,
    Obj,
    as_int,
    as_list,
    column,
    get,
    human_duration,
    name,
    parse_timestamp,
    since,
)
from kubelite.apiserver.tables.format import age as _age

NODE_COLUMNS = [
    NAME,
    column("Status", description="The status of the node"),
    column("Roles", description="The roles of the node"),
    AGE,
    column("Version", description=doc.NODE_KUBELET_VERSION),
    column("Internal-IP", priority=1, description=doc.NODE_ADDRESSES),
    column("External-IP", priority=1, description=doc.NODE_ADDRESSES),
    column("OS-Image", priority=1, description=doc.NODE_OS_IMAGE),
    column("Kernel-Version", priority=1, description=doc.NODE_KERNEL_VERSION),
    column("Container-Runtime", priority=1, description=doc.NODE_CONTAINER_RUNTIME),
]
NAMESPACE_COLUMNS = [NAME, column("Status", description="The status of the namespace"), AGE]
EVENT_COLUMNS = [
    column("Last Seen", description=doc.EVENT_LAST_TIMESTAMP),
    column("Type", description=doc.EVENT_TYPE),
    column("Reason", description=doc.EVENT_REASON),
    column("Object", description=doc.EVENT_INVOLVED_OBJECT),
    column("Subobject", priority=1, description=doc.OBJREF_FIELD_PATH),
    column("Source", priority=1, description=doc.EVENT_SOURCE),
    column("Message", description=doc.EVENT_MESSAGE),
    column("First Seen", priority=1, description=doc.EVENT_FIRST_TIMESTAMP),
    column("Count", priority=1, description=doc.EVENT_COUNT),
    column("Name", priority=1, fmt="name", description=doc.NAME),
]
LEASE_COLUMNS = [NAME, column("Holder", description=doc.LEASE_HOLDER), AGE]
PRIORITY_CLASS_COLUMNS = [
    NAME,
    column("Value", "integer", doc.PC_VALUE),
    column("Global-Default", "boolean", doc.PC_GLOBAL_DEFAULT),
    AGE,
    column("PreemptionPolicy", description=doc.PC_PREEMPTION),
]
# Upstream quotes ObjectMeta's doc for "handler", which has none.
RUNTIME_CLASS_COLUMNS = [NAME, column("Handler"), AGE]
COMPONENT_STATUS_COLUMNS = [
    NAME,
    column("Status", description="Status of the component conditions"),
    column("Message", description="Message of the component conditions"),
    column("Error", description="Error of the component conditions"),
]
CSR_COLUMNS = [
    NAME,
    AGE,
    column("SignerName", description=doc.CSR_SIGNER_NAME),
    column("Requestor", description=doc.CSR_REQUEST),
    column("RequestedDuration", description=doc.CSR_EXPIRATION),
    column("Condition", description=doc.CSR_CONDITIONS),
]
API_SERVICE_COLUMNS = [
    NAME,
    column("Service", description="The reference to the service that hosts this API endpoint."),
    column("Available", description="Whether this service is available."),
    AGE,
]
WEBHOOK_COLUMNS = [
    NAME,
    column(
        "Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration"
    ),
    AGE,
]
_PARAM_KIND = "ParamKind specifies the kind of resources used to parameterize this policy"
VALIDATING_ADMISSION_POLICY_COLUMNS = [
    NAME,
    column(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    column("ParamKind", description=_PARAM_KIND),
    AGE,
]
VALIDATING_ADMISSION_POLICY_BINDING_COLUMNS = [
    NAME,
    column(
        "PolicyName",
        description="PolicyName indicates the policy definition which the policy binding binded to",
    ),
    column("ParamRef", description="ParamRef indicates the param resource which sets the configration param"),
    AGE,
]

NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
NODE_ROLE_LABEL = "kubernetes.io/role"


def node_roles(node: Obj) -> str:
    """`findNodeRoles`: `node-role.kubernetes.io/<role>` keys and `kubernetes.io/role` values, sorted."""
    roles = set()
    for key, value in (get(node, "metadata", "labels") or {}).items():
        if key.startswith(NODE_ROLE_PREFIX) and key[len(NODE_ROLE_PREFIX) :]:
            roles.add(key[len(NODE_ROLE_PREFIX) :])
        elif key == NODE_ROLE_LABEL and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or "<none>"


def node_status(node: Obj) -> str:
    """Ready, NotReady or Unknown from the Ready condition, plus ",SchedulingDisabled" when cordoned."""
    status = []
    ready = [c for c in as_list(get(node, "status", "conditions")) if get(c, "type") == "Ready"]
    if ready:  # upstream keeps the last condition of the type
        status.append("Ready" if get(ready[-1], "status") == "True" else "NotReady")
    else:
        status.append("Unknown")
    if get(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    return ",".join(status)


def _node_address(node: Obj, kind: str) -> str:
    for address in as_list(get(node, "status", "addresses")):
        if get(address, "type") == kind:
            return str(get(address, "address") or "")
    return "<none>"


def node_cells(node: Obj, now: datetime) -> list:
    info = get(node, "status", "nodeInfo") or {}
    return [
        name(node),
        node_status(node),
        node_roles(node),
        _age(node, now),
        str(info.get("kubeletVersion") or ""),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        str(info.get("osImage") or "<unknown>"),
        str(info.get("kernelVersion") or "<unknown>"),
        str(info.get("containerRuntimeVersion") or "<unknown>"),
    ]


def namespace_cells(obj: Obj, now: datetime) -> list:
    return [name(obj), str(get(obj, "status", "phase") or ""), _age(obj, now)]


def core_event_view(event: Obj) -> dict[str, Any]:
    """An events.k8s.io/v1 Event under its core/v1 field names (core events pass through unchanged)."""
    if not str(event.get("apiVersion") or "").startswith("events.k8s.io/") and "regarding" not in event:
        return dict(event)
    return {
        "metadata": event.get("metadata") or {},
        "involvedObject": event.get("regarding") or {},
        "message": event.get("note"),
        "reason": event.get("reason"),
        "type": event.get("type"),
        "source": event.get("deprecatedSource") or {},
        "firstTimestamp": event.get("deprecatedFirstTimestamp"),
        "lastTimestamp": event.get("deprecatedLastTimestamp"),
        "count": event.get("deprecatedCount"),
        "eventTime": event.get("eventTime"),
        "series": event.get("series"),
        "reportingComponent": event.get("reportingController"),
        "reportingInstance": event.get("reportingInstance"),
    }


def _event_source(event: Obj) -> str:
    """`formatEventSource`: component (or reporting controller), then ", host" (or reporting instance)."""
    component = get(event, "source", "component") or event.get("reportingComponent") or ""
    host = get(event, "source", "host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else str(component)


def event_cells(obj: Obj, now: datetime) -> list:
    event = core_event_view(obj)
    first = since(event.get("firstTimestamp"), now)
    if parse_timestamp(event.get("firstTimestamp")) is None:
        first = since(event.get("eventTime"), now)
    last = since(event.get("lastTimestamp"), now)
    if parse_timestamp(event.get("lastTimestamp")) is None:
        last = first
    count = as_int(event.get("count"))
    series = event.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = as_int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events carry no count in the new API
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [
        last,
        str(event.get("type") or ""),
        str(event.get("reason") or ""),
        target,
        str(involved.get("fieldPath") or ""),
        _event_source(event),
        str(event.get("message") or "").strip(),
        first,
        count,
        name(event),
    ]


def lease_cells(obj: Obj, now: datetime) -> list:
    return [name(obj), str(get(obj, "spec", "holderIdentity") or ""), _age(obj, now)]


def priority_class_cells(obj: Obj, now: datetime) -> list:
    return [
        name(obj),
        as_int(obj.get("value")),
        obj.get("globalDefault") is True,
        _age(obj, now),
        str(obj.get("preemptionPolicy") or ""),
    ]


def runtime_class_cells(obj: Obj, now: datetime) -> list:
    return [name(obj), str(obj.get("handler") or ""), _age(obj, now)]


def component_status_cells(obj: Obj, now: datetime) -> list:
    status, message, error = "Unknown", "", ""
    for condition in as_list(obj.get("conditions")):
        if get(condition, "type") == "Healthy":
            status = "Healthy" if get(condition, "status") == "True" else "Unhealthy"
            message, error = str(get(condition, "message") or ""), str(get(condition, "error") or "")
            break
    return [name(obj), status, message, error]


def csr_condition(obj: Obj) -> str:
    """`extractCSRStatus`: Denied beats Approved beats Pending; then ",Failed" and ",Issued"."""
    types = {get(c, "type") for c in as_list(get(obj, "status", "conditions"))}
    status = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        status += ",Failed"
    if get(obj, "status", "certificate"):
        status += ",Issued"
    return status


def csr_cells(obj: Obj, now: datetime) -> list:
    seconds = get(obj, "spec", "expirationSeconds")
    duration = "<none>"
    if seconds is not None:
        duration = human_duration(timedelta(seconds=as_int(seconds)))
    return [
        name(obj),
        _age(obj, now),
        str(get(obj, "spec", "signerName") or "<none>"),
        str(get(obj, "spec", "username") or ""),
        duration,
        csr_condition(obj),
    ]


def api_service_cells(obj: Obj, now: datetime) -> list:
    """kube-aggregator's table: "Local" or "ns/name", and the Available condition with its reason."""
    service = get(obj, "spec", "service")
    target = f"{get(service, 'namespace') or ''}/{get(service, 'name') or ''}" if service else "Local"
    available = "Unknown"
    for condition in as_list(get(obj, "status", "conditions")):
        if get(condition, "type") == "Available":
            status, reason = str(get(condition, "status") or ""), get(condition, "reason")
            available = f"{status} ({reason})" if status != "True" and reason else status
            break
    return [name(obj), target, available, _age(obj, now)]


def webhook_cells(obj: Obj, now: datetime) -> list:
    return [name(obj), len(as_list(obj.get("webhooks"))), _age(obj, now)]


def validating_admission_policy_cells(obj: Obj, now: datetime) -> list:
    param_kind = get(obj, "spec", "paramKind")
    kind = "<unset>"
    if isinstance(param_kind, dict):
        kind = f"{param_kind.get('apiVersion') or ''}/{param_kind.get('kind') or ''}"
    return [name(obj), len(as_list(get(obj, "spec", "validations"))), kind, _age(obj, now)]


def _go_label_selector(selector: Any) -> str:
    """The generated `(*metav1.LabelSelector).String()`: a Go struct dump, which upstream prints as is."""
    labels = selector.get("matchLabels") or {}
    match_labels = "".join(f"{key}: {labels[key]}," for key in sorted(labels))
    expressions = "".join(
        f"LabelSelectorRequirement{{Key:{get(e, 'key') or ''},Operator:{get(e, 'operator') or ''},"
        f"Values:[{' '.join(str(v) for v in as_list(get(e, 'values')))}],}},"
        for e in as_list(selector.get("matchExpressions"))
    )
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{match_labels}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )


def validating_admission_policy_binding_cells(obj: Obj, now: datetime) -> list:
    ref = get(obj, "spec", "paramRef")
    param = "<unset>"
    if isinstance(ref, dict):
        if ref.get("name"):
            param = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else f"*/{ref['name']}"
        elif isinstance(ref.get("selector"), dict):
            param = _go_label_selector(ref["selector"])
    return [name(obj), str(get(obj, "spec", "policyName") or ""), param, _age(obj, now)]
