"""The printer registry and the `meta.k8s.io` Table wire form.

A printer is a fixed column list plus a pure function from one object to its cells.  Cells are
always computed "wide", as the real API server does (`GenerateOptions{Wide: true}`): kubectl itself
hides priority-1 columns unless run with `-o wide`.  Resources without a printer get the apiserver's
default table (Name, and "Created At" as an RFC 3339 string); custom resources get their CRD's
printer columns through `printer_columns`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubelite.apiserver.tables import cluster, config, networking, pods, storage, workloads
from kubelite.apiserver.tables import descriptions as doc
from kubelite.apiserver.tables.custom import custom_resource_cells, custom_resource_columns
from kubelite.apiserver.tables.format import NAME, column, get, name, parse_timestamp
from kubelite.machinery import errors

TABLE_API_VERSIONS = ("meta.k8s.io/v1", "meta.k8s.io/v1beta1")
INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")

Cells = Callable[[Mapping[str, Any], datetime], list]


@dataclass(frozen=True)
class Printer:
    columns: list[dict]
    cells: Cells
    conditions: Callable[[Mapping[str, Any]], list[dict] | None] | None = None


DEFAULT_COLUMNS = [NAME, column("Created At", "date", doc.CREATION_TIMESTAMP)]

_ADMISSION = "admissionregistration.k8s.io"
_RBAC = "rbac.authorization.k8s.io"
PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "pods"): Printer(pods.POD_COLUMNS, pods.pod_cells, pods.pod_conditions),
    ("", "podtemplates"): Printer(pods.POD_TEMPLATE_COLUMNS, pods.pod_template_cells),
    ("", "replicationcontrollers"): Printer(
        workloads.REPLICATION_CONTROLLER_COLUMNS, workloads.replication_controller_cells
    ),
    ("apps", "replicasets"): Printer(workloads.REPLICA_SET_COLUMNS, workloads.replica_set_cells),
    ("apps", "deployments"): Printer(workloads.DEPLOYMENT_COLUMNS, workloads.deployment_cells),
    ("apps", "statefulsets"): Printer(workloads.STATEFUL_SET_COLUMNS, workloads.stateful_set_cells),
    ("apps", "daemonsets"): Printer(workloads.DAEMON_SET_COLUMNS, workloads.daemon_set_cells),
    ("apps", "controllerrevisions"): Printer(
        workloads.CONTROLLER_REVISION_COLUMNS, workloads.controller_revision_cells
    ),
    ("batch", "jobs"): Printer(workloads.JOB_COLUMNS, workloads.job_cells),
    ("batch", "cronjobs"): Printer(workloads.CRON_JOB_COLUMNS, workloads.cron_job_cells),
    ("autoscaling", "horizontalpodautoscalers"): Printer(workloads.HPA_COLUMNS, workloads.hpa_cells),
    ("policy", "poddisruptionbudgets"): Printer(workloads.PDB_COLUMNS, workloads.pdb_cells),
    ("", "services"): Printer(networking.SERVICE_COLUMNS, networking.service_cells),
    ("", "endpoints"): Printer(networking.ENDPOINTS_COLUMNS, networking.endpoints_cells),
    ("discovery.k8s.io", "endpointslices"): Printer(
        networking.ENDPOINT_SLICE_COLUMNS, networking.endpoint_slice_cells
    ),
    ("networking.k8s.io", "ingresses"): Printer(networking.INGRESS_COLUMNS, networking.ingress_cells),
    ("networking.k8s.io", "ingressclasses"): Printer(
        networking.INGRESS_CLASS_COLUMNS, networking.ingress_class_cells
    ),
    ("networking.k8s.io", "networkpolicies"): Printer(
        networking.NETWORK_POLICY_COLUMNS, networking.network_policy_cells
    ),
    ("", "nodes"): Printer(cluster.NODE_COLUMNS, cluster.node_cells),
    ("", "namespaces"): Printer(cluster.NAMESPACE_COLUMNS, cluster.namespace_cells),
    ("", "events"): Printer(cluster.EVENT_COLUMNS, cluster.event_cells),
    ("events.k8s.io", "events"): Printer(cluster.EVENT_COLUMNS, cluster.event_cells),
    ("", "componentstatuses"): Printer(cluster.COMPONENT_STATUS_COLUMNS, cluster.component_status_cells),
    ("coordination.k8s.io", "leases"): Printer(cluster.LEASE_COLUMNS, cluster.lease_cells),
    ("scheduling.k8s.io", "priorityclasses"): Printer(
        cluster.PRIORITY_CLASS_COLUMNS, cluster.priority_class_cells
    ),
    ("node.k8s.io", "runtimeclasses"): Printer(cluster.RUNTIME_CLASS_COLUMNS, cluster.runtime_class_cells),
    ("certificates.k8s.io", "certificatesigningrequests"): Printer(cluster.CSR_COLUMNS, cluster.csr_cells),
    ("apiregistration.k8s.io", "apiservices"): Printer(
        cluster.API_SERVICE_COLUMNS, cluster.api_service_cells
    ),
    (_ADMISSION, "mutatingwebhookconfigurations"): Printer(cluster.WEBHOOK_COLUMNS, cluster.webhook_cells),
    (_ADMISSION, "validatingwebhookconfigurations"): Printer(cluster.WEBHOOK_COLUMNS, cluster.webhook_cells),
    (_ADMISSION, "validatingadmissionpolicies"): Printer(
        cluster.VALIDATING_ADMISSION_POLICY_COLUMNS, cluster.validating_admission_policy_cells
    ),
    (_ADMISSION, "validatingadmissionpolicybindings"): Printer(
        cluster.VALIDATING_ADMISSION_POLICY_BINDING_COLUMNS, cluster.validating_admission_policy_binding_cells
    ),
    ("", "configmaps"): Printer(config.CONFIG_MAP_COLUMNS, config.config_map_cells),
    ("", "secrets"): Printer(config.SECRET_COLUMNS, config.secret_cells),
    ("", "serviceaccounts"): Printer(config.SERVICE_ACCOUNT_COLUMNS, config.service_account_cells),
    ("", "resourcequotas"): Printer(config.RESOURCE_QUOTA_COLUMNS, config.resource_quota_cells),
    (_RBAC, "rolebindings"): Printer(config.ROLE_BINDING_COLUMNS, config.binding_cells),
    (_RBAC, "clusterrolebindings"): Printer(config.CLUSTER_ROLE_BINDING_COLUMNS, config.binding_cells),
    ("", "persistentvolumes"): Printer(storage.PERSISTENT_VOLUME_COLUMNS, storage.persistent_volume_cells),
    ("", "persistentvolumeclaims"): Printer(
        storage.PERSISTENT_VOLUME_CLAIM_COLUMNS, storage.persistent_volume_claim_cells
    ),
    ("storage.k8s.io", "storageclasses"): Printer(storage.STORAGE_CLASS_COLUMNS, storage.storage_class_cells),
    ("storage.k8s.io", "csidrivers"): Printer(storage.CSI_DRIVER_COLUMNS, storage.csi_driver_cells),
    ("storage.k8s.io", "csinodes"): Printer(storage.CSI_NODE_COLUMNS, storage.csi_node_cells),
    ("storage.k8s.io", "volumeattachments"): Printer(
        storage.VOLUME_ATTACHMENT_COLUMNS, storage.volume_attachment_cells
    ),
}
"""Upstream registers the default convertor (no printer) for limitranges, roles, clusterroles,
customresourcedefinitions and csistoragecapacities, so they are deliberately absent."""


def _default_cells(obj: Mapping[str, Any], now: datetime) -> list:
    """`rest.NewDefaultTableConvertor`: the creation time in RFC 3339, Go's zero time when unset."""
    created = parse_timestamp(get(obj, "metadata", "creationTimestamp"))
    return [name(obj), created.strftime("%Y-%m-%dT%H:%M:%SZ") if created else "0001-01-01T00:00:00Z"]


DEFAULT_PRINTER = Printer(DEFAULT_COLUMNS, _default_cells)


def printer_for(group: str, plural: str) -> Printer:
    return PRINTERS.get((group, plural), DEFAULT_PRINTER)


def column_definitions(group: str, plural: str) -> list[dict]:
    """The Table columns for a resource (a fresh copy each call: callers may change it)."""
    return [dict(c) for c in printer_for(group, plural).columns]


def row_cells(group: str, plural: str, obj: Mapping[str, Any], *, now: datetime) -> list:
    """One object's cells, one per column of `column_definitions`, including priority-1 ones."""
    return printer_for(group, plural).cells(obj, now)


def _row_object(obj: Mapping[str, Any], include_object: str, api_version: str) -> Any:
    if include_object == "Object":
        return obj
    if include_object == "Metadata":
        return {
            "kind": "PartialObjectMetadata",
            "apiVersion": api_version,
            "metadata": obj.get("metadata") or {},
        }
    return None


def build_table(
    group: str,
    plural: str,
    objects: list[dict],
    *,
    include_object: str,
    resource_version: str,
    continue_token: str | None,
    now: datetime,
    api_version: str = "meta.k8s.io/v1",
    with_columns: bool = True,
    remaining_item_count: int | None = None,
    printer_columns: list[dict] | None = None,
) -> dict:
    """A complete `Table` for a list, a single object (pass one), or one watch event.

    `include_object` is the `includeObject` query parameter ("" means the default, Metadata); rows then
    carry a `PartialObjectMetadata` in `api_version`, the full object, or `null`.  `with_columns=False`
    gives `"columnDefinitions": null`, which is what upstream sends on every watch event after the
    first.  `printer_columns` (a CRD version's `additionalPrinterColumns`, possibly empty) switches to
    the custom-resource convertor; None means a built-in resource.  An unknown `include_object` is a
    400, as upstream.
    """
    include_object = include_object or "Metadata"
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise errors.bad_request(f'unrecognized includeObject value: "{include_object}"')
    if printer_columns is not None:
        columns = custom_resource_columns(printer_columns)
        printer = Printer(columns, lambda obj, at: custom_resource_cells(printer_columns, obj, at))
    else:
        printer = printer_for(group, plural)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer.cells(obj, now)}
        conditions = printer.conditions(obj) if printer.conditions else None
        if conditions:
            row["conditions"] = conditions
        row["object"] = _row_object(obj, include_object, api_version)
        rows.append(row)
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    if remaining_item_count is not None:
        metadata["remainingItemCount"] = remaining_item_count
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": metadata,
        "columnDefinitions": [dict(c) for c in printer.columns] if with_columns else None,
        "rows": rows,
    }
