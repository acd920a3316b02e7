"""Field validation of built-in kinds: upstream's `pkg/apis/*/validation`, on JSON dicts.

`validate_object(group, kind, obj, old=...)` returns `Cause`s (reason, message, field) whose
messages are `field.Error.ErrorBody()` exactly: `Required value`, `Invalid value: "Foo_Bar": a
lowercase RFC 1123 subdomain must consist of ...`, `Unsupported value: "Sometimes": supported
values: "Always", "OnFailure", "Never"`, `Invalid value: -1: must be greater than or equal to 0`,
`Invalid value: v1.LabelSelector{...}: field is immutable`.  An empty list means valid.  The
object is validated as stored: after defaulting (`defaults.apply_defaults`), so a field the
defaults fill in is reported as missing only when defaulting did not run.

Contract: pure, no I/O, never mutates its arguments.  Causes come in upstream's order, except that
map keys (labels, annotations, data) are walked sorted where upstream walks Go maps randomly.

Covered, per family (module):

* every kind (`meta`): name rules per kind (DNS-1123 subdomain for most; DNS-1123 label for
  namespaces; DNS-1035 label for services; URL path segments for RBAC), generateName, namespace
  required/forbidden, label and annotation syntax, the 256 KiB annotation budget, finalizer names,
  ownerReferences; on update: name, namespace, uid, creationTimestamp, deletionTimestamp and
  deletionGracePeriodSeconds immutable, generation not decremented, no new finalizers while
  deleting.
* pods and templates (`pods`, `containers`): containers required, names (DNS-1123 labels, unique
  across regular/init/ephemeral), image, ports (ranges, names, protocol, host port conflicts),
  env (relaxed names, valueFrom sources, downward API paths), envFrom, volume mounts (volume
  exists, unique mount paths, subPath), resources (standard names, requests <= limits),
  probes and lifecycle handlers, init-container restartPolicy rules, volumes (name, one source,
  required source fields, modes), restartPolicy, dnsPolicy (+ dnsConfig for None), nodeSelector,
  tolerations, hostname/subdomain, activeDeadlineSeconds, hostNetwork ports, preemptionPolicy;
  pod updates: only images, activeDeadlineSeconds (decrease), toleration additions, scheduling
  gate removals, the -1 -> 1 grace period, with upstream's `pod updates may not change fields
  other than ...` message.
* workloads (`workloads`, `batch`, `cron`): selectors required, valid, non-empty and matching the
  template; replicas and other counters >= 0; strategies (25%/int checks, 0/0); restartPolicy
  Always for controllers and OnFailure/Never for Jobs; StatefulSet update allow-list; selector
  immutability (Deployment, ReplicaSet, DaemonSet, Job); Job template/completions/mode
  immutability (scheduling directives mutable while suspended); CronJob schedule syntax (robfig
  messages), timeZone, concurrencyPolicy, 52-character names, job template selector rules.
* core (`core`): Service ports/types/affinity/ExternalName/clusterIPs (primary IP may not change),
  ConfigMap/Secret keys and 1 MiB budgets, immutable ConfigMaps/Secrets, Secret type immutable and
  type-specific keys, Namespace finalizers, Node taints and podCIDRs/providerID set-once,
  PersistentVolume basics, PVC spec (access modes, storage request) and its update rules,
  Endpoints, core Event namespace agreement.
* others (`cluster`): Lease durations, RBAC rules/roleRef/subjects (roleRef immutable), HPA
  replica bounds and scaleTargetRef, PDB, Ingress rules/paths/backends, EndpointSlice,
  PriorityClass, StorageClass (immutable fields), CRD naming.

Not covered (upstream checks with no rule here): security contexts (pod and container), affinity,
topology spread constraints, DNS config details, host aliases, readiness/scheduling gate syntax,
resize policy, resource claims, OS-specific rules, seccomp/AppArmor annotations and fields,
volume sources beyond their required fields (projected, CSI, ephemeral, cloud disks), volume
devices, quantity canonical forms in messages (the text as sent is shown), Job podFailurePolicy
and successPolicy rules, generated-selector labels on Jobs (the selector is the strategy's),
StatefulSet volumeClaimTemplates, Service IP family/policy combinations, node port ranges and
loadBalancer fields, HPA metrics and behavior, Ingress TLS and IngressClass, NetworkPolicy,
ResourceQuota, LimitRange, core and events.k8s.io Event field rules (other than the namespace),
CSI kinds, webhook configurations, APIService, CSR, RuntimeClass, CRD schemas and versions,
status subresource validation.  Values upstream prints as whole Go structs (`%#v` of a pod
template, a strategy, a taint) are rendered approximately; names, fields and reasons are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubelite.apiserver.registry.validation import batch, cluster, core, meta, names, pods, workloads
from kubelite.machinery.errors import Cause
from kubelite.machinery.resources import BUILTIN_RESOURCES

__all__ = ["validate_object"]

Create = Callable[[Mapping[str, Any]], list[Cause]]
Update = Callable[[Mapping[str, Any], Mapping[str, Any]], list[Cause]]

RULES: dict[tuple[str, str], tuple[Create, Update]] = {
    ("", "Pod"): (pods.validate_pod, pods.validate_pod_update),
    ("", "PodTemplate"): (workloads.validate_pod_template_object, workloads.validate_pod_template_object_update),
    ("", "ReplicationController"): (
        workloads.validate_replication_controller,
        workloads.validate_replication_controller_update,
    ),
    ("", "Service"): (core.validate_service, core.validate_service_update),
    ("", "ConfigMap"): (core.validate_config_map, core.validate_config_map_update),
    ("", "Secret"): (core.validate_secret, core.validate_secret_update),
    ("", "Namespace"): (core.validate_namespace, core.validate_namespace_update),
    ("", "Node"): (core.validate_node, core.validate_node_update),
    ("", "PersistentVolume"): (core.validate_persistent_volume, core.validate_persistent_volume_update),
    ("", "PersistentVolumeClaim"): (
        core.validate_persistent_volume_claim,
        core.validate_persistent_volume_claim_update,
    ),
    ("", "Endpoints"): (core.validate_endpoints, core.validate_endpoints_update),
    ("", "Event"): (core.validate_event, meta.validate_object_meta_update),
    ("apps", "Deployment"): (workloads.validate_deployment, workloads.validate_deployment_update),
    ("apps", "ReplicaSet"): (workloads.validate_replica_set, workloads.validate_replica_set_update),
    ("apps", "StatefulSet"): (workloads.validate_stateful_set, workloads.validate_stateful_set_update),
    ("apps", "DaemonSet"): (workloads.validate_daemon_set, workloads.validate_daemon_set_update),
    ("apps", "ControllerRevision"): (
        workloads.validate_controller_revision,
        workloads.validate_controller_revision_update,
    ),
    ("batch", "Job"): (batch.validate_job, batch.validate_job_update),
    ("batch", "CronJob"): (batch.validate_cron_job, batch.validate_cron_job_update),
    ("autoscaling", "HorizontalPodAutoscaler"): (cluster.validate_hpa, cluster.validate_hpa_update),
    ("coordination.k8s.io", "Lease"): (cluster.validate_lease, cluster.validate_lease_update),
    ("discovery.k8s.io", "EndpointSlice"): (cluster.validate_endpoint_slice, cluster.validate_endpoint_slice_update),
    ("networking.k8s.io", "Ingress"): (cluster.validate_ingress, cluster.validate_ingress_update),
    ("policy", "PodDisruptionBudget"): (cluster.validate_pdb, cluster.validate_pdb_update),
    ("rbac.authorization.k8s.io", "Role"): (cluster.validate_role, cluster.validate_role_update),
    ("rbac.authorization.k8s.io", "ClusterRole"): (cluster.validate_cluster_role, cluster.validate_role_update),
    ("rbac.authorization.k8s.io", "RoleBinding"): (cluster.validate_role_binding, cluster.validate_binding_update),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (
        cluster.validate_cluster_role_binding,
        cluster.validate_binding_update,
    ),
    ("scheduling.k8s.io", "PriorityClass"): (cluster.validate_priority_class, cluster.validate_priority_class_update),
    ("storage.k8s.io", "StorageClass"): (cluster.validate_storage_class, cluster.validate_storage_class_update),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (cluster.validate_crd, cluster.validate_crd_update),
}

# Kinds whose names are URL path segments rather than DNS names.
PATH_SEGMENT_NAMES = {
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("apiregistration.k8s.io", "APIService"),
}
_NAMESPACED = {(r.group, r.kind): r.namespaced for r in BUILTIN_RESOURCES}
_VIRTUAL = {(r.group, r.kind) for r in BUILTIN_RESOURCES if not r.stored}


def validate_object(
    group: str, kind: str, obj: Mapping[str, Any], *, old: Mapping[str, Any] | None = None, subresource: str = ""
) -> list[Cause]:
    """Causes that make `obj` invalid; `old` is the stored object on updates.

    A write through a subresource (`status`, `finalize`, ...) is checked only for the metadata
    rules of an update (and namespace finalizer names), as upstream's status strategies do.
    """
    if (group, kind) in _VIRTUAL:
        return []
    if old is not None and subresource:
        causes = meta.validate_object_meta_update(obj, old)
        if (group, kind) == ("", "Namespace"):
            causes += core.namespace_finalizers(obj)
        return causes
    rules = RULES.get((group, kind))
    if rules is not None:
        create, update = rules
        return create(obj) if old is None else update(obj, old)
    if old is not None:
        return meta.validate_object_meta_update(obj, old)
    return meta.validate_object_meta(obj, namespaced=_NAMESPACED.get((group, kind)), name_fn=_name_fn(group, kind))


def _name_fn(group: str, kind: str) -> names.NameFn:
    if (group, kind) in PATH_SEGMENT_NAMES:
        return names.name_is_path_segment
    return names.name_is_dns_subdomain
