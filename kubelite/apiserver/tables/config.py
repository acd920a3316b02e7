"""Configuration and access: config maps, secrets, service accounts, resource quotas and RBAC bindings."""

from __future__ import annotations

from datetime import datetime

from kubelite.apiserver.tables import descriptions as doc
from kubelite.apiserver.tables.format import (
    AGE,
    NAME,
    Obj,
    age,
    as_dict,
    as_list,
    column,
    get,
    name,
    quantity,
)

CONFIG_MAP_COLUMNS = [NAME, column("Data", description=doc.CM_DATA), AGE]
SECRET_COLUMNS = [
    NAME,
    column("Type", description=doc.SECRET_TYPE),
    column("Data", description=doc.SECRET_DATA),
    AGE,
]
SERVICE_ACCOUNT_COLUMNS = [NAME, column("Secrets", description=doc.SA_SECRETS), AGE]
RESOURCE_QUOTA_COLUMNS = [
    NAME,
    column(
        "Request",
        description="Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    column(
        "Limit",
        description="Limits control the maximum amount of cpu/memory that a container may use independent of "
        "contention on the node.",
    ),
    AGE,
]


def _binding_columns(kind: str, role_ref_doc: str) -> list[dict]:
    return [
        NAME,
        column("Role", description=role_ref_doc),
        AGE,
        column("Users", priority=1, description=f"Users in the {kind}"),
        column("Groups", priority=1, description=f"Groups in the {kind}"),
        column("ServiceAccounts", priority=1, description=f"ServiceAccounts in the {kind}"),
    ]


ROLE_BINDING_COLUMNS = _binding_columns("roleBinding", doc.RB_ROLE_REF)
CLUSTER_ROLE_BINDING_COLUMNS = _binding_columns("clusterRoleBinding", doc.CRB_ROLE_REF)


def config_map_cells(obj: Obj, now: datetime) -> list:
    return [name(obj), len(as_dict(obj.get("data"))) + len(as_dict(obj.get("binaryData"))), age(obj, now)]


def secret_cells(obj: Obj, now: datetime) -> list:
    return [name(obj), str(obj.get("type") or ""), len(as_dict(obj.get("data"))), age(obj, now)]


def service_account_cells(obj: Obj, now: datetime) -> list:
    return [name(obj), len(as_list(obj.get("secrets"))), age(obj, now)]


def resource_quota_cells(obj: Obj, now: datetime) -> list:
    """`printResourceQuota`: "resource: used/hard" pairs sorted by name; `limits.*` go to LIMIT."""
    hard = as_dict(get(obj, "status", "hard"))
    used = as_dict(get(obj, "status", "used"))
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        pieces = resource.split(".")
        target = limits if len(pieces) > 1 and pieces[0] == "limits" else requests
        target.append(f"{resource}: {quantity(used.get(resource))}/{quantity(hard[resource])}")
    return [name(obj), ", ".join(requests), ", ".join(limits), age(obj, now)]


def binding_cells(obj: Obj, now: datetime) -> list:
    """Role and cluster role bindings: "Kind/name" plus subjects by kind (`rbac.SubjectsStrings`)."""
    users, groups, service_accounts = [], [], []
    for subject in as_list(obj.get("subjects")):
        kind, subject_name = get(subject, "kind"), str(get(subject, "name") or "")
        if kind == "ServiceAccount":
            service_accounts.append(f"{get(subject, 'namespace') or ''}/{subject_name}")
        elif kind == "User":
            users.append(subject_name)
        elif kind == "Group":
            groups.append(subject_name)
    role = f"{get(obj, 'roleRef', 'kind') or ''}/{get(obj, 'roleRef', 'name') or ''}"
    return [name(obj), role, age(obj, now), ", ".join(users), ", ".join(groups), ", ".join(service_accounts)]
