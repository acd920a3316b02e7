"""Field defaults of built-in kinds: upstream's `SetDefaults_*` and `SetObjectDefaults_*`, on JSON.

`apply_defaults(group, version, kind, obj)` fills in, in place, what the API server adds to every
object it decodes, so stored objects have upstream's wire shape (`kubectl get -o yaml` shows the
same fields as on a real cluster).  It mutates the dict it is given: the caller passes its own
copy, never an object from a cache.  It is idempotent and runs on every create and update, so it
only ever fills what is missing.

Besides the `SetDefaults_*` functions this adds three things upstream produces elsewhere, because
they are part of the wire shape too:

* zero values Go always serializes: `resources: {}` on containers, `metadata.creationTimestamp:
  null` in templates, `status: {}` (or its non-omitempty counters) on kinds with a status struct;
* what conversion does: Secret `stringData` merged into `data`; StatefulSet volumeClaimTemplates
  get `apiVersion: v1, kind: PersistentVolumeClaim` (upstream's apps/v1 conversion);
* what admission does on every pod: `priority: 0` and `preemptionPolicy: PreemptLowerPriority`
  when no priority class is named (the Priority plugin; a named class is resolved by admission),
  and Service IP families (the service REST storage): `ipFamilyPolicy`, `ipFamilies`.

`apply_create_defaults` holds what upstream sets only on create (it must not come back on later
updates): the `kubernetes` finalizer of a new Namespace.

Not here: clusterIP and nodePort allocation, service account and token volume injection, default
tolerations, Job selector generation, Node status zero values, LimitRange/PriorityClass lookups.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

from kubelite.apiserver.registry.defaults.pods import (
    PRIORITY_DEFAULT_POLICY,
    Obj,
    child,
    claim_spec,
    image_tag,
    items_of,
    pod,
    pod_template,
    pod_template_object,
    status_zero,
    template_meta,
    volume_source,
)

__all__ = ["apply_create_defaults", "apply_defaults", "image_tag"]

DEFAULT_CLIENT_IP_TIMEOUT = 10800
DEFAULT_CPU_UTILIZATION = 80


def apply_defaults(group: str, version: str, kind: str, obj: Obj) -> None:
    """Fill in upstream's defaults for `kind` in `group/version`; mutates `obj` (the caller's copy)."""
    defaulter = _DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj, version)


def apply_create_defaults(group: str, version: str, kind: str, obj: Obj) -> None:
    """Values upstream sets only when an object is created (its strategy's PrepareForCreate)."""
    if (group, kind) == ("", "Namespace"):
        finalizers = child(obj, "spec").setdefault("finalizers", [])
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")


# -- workloads -------------------------------------------------------------------------------------


def _deployment(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = child(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = child(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    pod_template(child(spec, "template"))
    status_zero(obj)


def _replica_set(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    spec.setdefault("replicas", 1)
    pod_template(child(spec, "template"))
    status_zero(obj, replicas=0)


def _stateful_set(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = child(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        child(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), dict):
        strategy["rollingUpdate"].setdefault("partition", 0)
    retention = child(spec, "persistentVolumeClaimRetentionPolicy")
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    pod_template(child(spec, "template"))
    for claim in items_of(spec, "volumeClaimTemplates"):
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        template_meta(claim)
        claim_spec(child(claim, "spec"))
        status_zero(claim, phase="Pending")
    status_zero(obj, availableReplicas=0, replicas=0)


def _daemon_set(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    strategy = child(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = child(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    pod_template(child(spec, "template"))
    status_zero(obj, currentNumberScheduled=0, desiredNumberScheduled=0, numberMisscheduled=0, numberReady=0)


def _replication_controller(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    template = spec.get("template")
    labels = ((template or {}).get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    if labels is not None:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = child(obj, "metadata")
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    spec.setdefault("replicas", 1)
    if isinstance(template, dict):
        pod_template(template)
    status_zero(obj, replicas=0)


def _job(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2**31 - 1 if spec.get("backoffLimitPerIndex") is not None else 6
    template = child(spec, "template")
    labels = (template.get("metadata") or {}).get("labels")
    meta = child(obj, "metadata")
    if labels is not None and not meta.get("labels"):
        meta["labels"] = dict(labels)
    _job_spec_common(spec)
    status_zero(obj)


def _job_spec_common(spec: Obj) -> None:
    """The rest of `SetDefaults_Job`: completion mode, suspend, pod failure and replacement policies."""
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    failure_policy = spec.get("podFailurePolicy")
    if isinstance(failure_policy, dict):
        for rule in items_of(failure_policy, "rules"):
            for pattern in items_of(rule, "onPodConditions"):
                if not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if isinstance(failure_policy, dict) else "TerminatingOrFailed"
    # As upstream, a Job's template gets restartPolicy Always too; Job validation then rejects it
    # with `Required value: valid values: "OnFailure", "Never"`, so it is never stored.
    pod_template(child(spec, "template"))


def _cron_job(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_template = child(spec, "jobTemplate")
    template_meta(job_template)
    # SetDefaults_Job needs a Job: a CronJob's job template gets only the pod template defaults
    pod_template(child(child(job_template, "spec"), "template"))
    status_zero(obj)


# -- core ------------------------------------------------------------------------------------------


def _service(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = child(child(spec, "sessionAffinityConfig"), "clientIP")
        if client_ip.get("timeoutSeconds") is None:
            client_ip["timeoutSeconds"] = DEFAULT_CLIENT_IP_TIMEOUT
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    kind = spec["type"]
    for port in items_of(spec, "ports"):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if kind in ("NodePort", "LoadBalancer") and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if kind in ("ClusterIP", "NodePort", "LoadBalancer") and spec.get("internalTrafficPolicy") is None:
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if kind != "ExternalName":
        headless_without_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
        if spec.get("ipFamilyPolicy") is None:
            spec["ipFamilyPolicy"] = "RequireDualStack" if headless_without_selector else "SingleStack"
        if not spec.get("ipFamilies"):
            spec["ipFamilies"] = ["IPv4"]
    child(child(obj, "status"), "loadBalancer")


def _namespace(obj: Obj, version: str) -> None:
    name = (obj.get("metadata") or {}).get("name")
    if name:
        child(child(obj, "metadata"), "labels")["kubernetes.io/metadata.name"] = name
    child(obj, "spec")
    status = child(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def _node(obj: Obj, version: str) -> None:
    child(obj, "spec")
    status = obj.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def _persistent_volume_claim(obj: Obj, version: str) -> None:
    claim_spec(child(obj, "spec"))
    status_zero(obj)
    if not obj["status"].get("phase"):
        obj["status"]["phase"] = "Pending"


def _persistent_volume(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    volume_source(spec)
    status_zero(obj)
    if not obj["status"].get("phase"):
        obj["status"]["phase"] = "Pending"


def _secret(obj: Obj, version: str) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = child(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _endpoints(obj: Obj, version: str) -> None:
    for subset in items_of(obj, "subsets"):
        for port in items_of(subset, "ports"):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def _limit_range(obj: Obj, version: str) -> None:
    for item in items_of(child(obj, "spec"), "limits"):
        if item.get("type") != "Container":
            continue
        default, default_request = child(item, "default"), child(item, "defaultRequest")
        for name, value in (item.get("max") or {}).items():
            default.setdefault(name, value)
        for name, value in default.items():
            default_request.setdefault(name, value)
        for name, value in (item.get("min") or {}).items():
            default_request.setdefault(name, value)


# -- other groups ----------------------------------------------------------------------------------


def _hpa(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    spec.setdefault("minReplicas", 1)
    if version == "v1":
        status_zero(obj, currentReplicas=0, desiredReplicas=0)
        return
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION},
                },
            }
        ]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), _SCALE_DOWN)
    status_zero(obj, desiredReplicas=0)


# GenerateHPAScaleUpRules / GenerateHPAScaleDownRules: what the HPA did before `behavior` existed.
_SCALE_UP: Obj = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
_SCALE_DOWN: Obj = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _scaling_rules(given: Any, defaults: Obj) -> Obj:
    """`copyHPAScalingRules`: the user's non-null fields over a copy of the defaults."""
    rules = copy.deepcopy(defaults)
    if isinstance(given, dict):
        rules.update({key: value for key, value in given.items() if value is not None})
    return rules


def _pdb(obj: Obj, version: str) -> None:
    child(obj, "spec")
    status_zero(obj, currentHealthy=0, desiredHealthy=0, disruptionsAllowed=0, expectedPods=0)


def _binding(obj: Obj, version: str) -> None:
    ref = child(obj, "roleRef")
    if not ref.get("apiGroup"):
        ref["apiGroup"] = "rbac.authorization.k8s.io"
    for subject in items_of(obj, "subjects"):
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = "rbac.authorization.k8s.io"


def _endpoint_slice(obj: Obj, version: str) -> None:
    for port in items_of(obj, "ports"):
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


def _network_policy(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    for rules in ("ingress", "egress"):
        for rule in items_of(spec, rules):
            for port in items_of(rule, "ports"):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _ingress(obj: Obj, version: str) -> None:
    child(obj, "spec")
    child(child(obj, "status"), "loadBalancer")


def _storage_class(obj: Obj, version: str) -> None:
    if obj.get("reclaimPolicy") is None:
        obj["reclaimPolicy"] = "Delete"
    if obj.get("volumeBindingMode") is None:
        obj["volumeBindingMode"] = "Immediate"


def _csi_driver(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    for key, value in (
        ("attachRequired", True),
        ("podInfoOnMount", False),
        ("storageCapacity", False),
        ("fsGroupPolicy", "ReadWriteOnceWithFSType"),
        ("requiresRepublish", False),
        ("seLinuxMount", False),
    ):
        if spec.get(key) is None:
            spec[key] = value
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]


def _priority_class(obj: Obj, version: str) -> None:
    if obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = PRIORITY_DEFAULT_POLICY


def _crd(obj: Obj, version: str) -> None:
    spec = child(obj, "spec")
    names = child(spec, "names")
    if not names.get("singular") and names.get("kind"):
        names["singular"] = str(names["kind"]).lower()
    if not names.get("listKind") and names.get("kind"):
        names["listKind"] = f"{names['kind']}List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}


_DEFAULTERS: dict[tuple[str, str], Callable[[Obj, str], None]] = {
    ("", "Pod"): pod,
    ("", "PodTemplate"): pod_template_object,
    ("", "ReplicationController"): _replication_controller,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("", "Node"): _node,
    ("", "PersistentVolumeClaim"): _persistent_volume_claim,
    ("", "PersistentVolume"): _persistent_volume,
    ("", "Secret"): _secret,
    ("", "Endpoints"): _endpoints,
    ("", "LimitRange"): _limit_range,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replica_set,
    ("apps", "StatefulSet"): _stateful_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cron_job,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("policy", "PodDisruptionBudget"): _pdb,
    ("rbac.authorization.k8s.io", "RoleBinding"): _binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _binding,
    ("discovery.k8s.io", "EndpointSlice"): _endpoint_slice,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("storage.k8s.io", "StorageClass"): _storage_class,
    ("storage.k8s.io", "CSIDriver"): _csi_driver,
    ("scheduling.k8s.io", "PriorityClass"): _priority_class,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}
