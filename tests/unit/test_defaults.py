"""Registry defaults: upstream's SetDefaults_* (and the wire-shape zero values) on JSON objects.

Expected shapes are what a Kubernetes 1.32 API server returns for the same input.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubelite.apiserver.registry.defaults import apply_create_defaults, apply_defaults, image_tag


def defaulted(group: str, version: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    apply_defaults(group, version, kind, out)
    return out


def at(obj: Any, path: str) -> Any:
    """`a.b[0].c` lookup; a missing step raises KeyError/IndexError so tests fail loudly."""
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            obj = obj[int(part[1:-1])]
        elif part:
            obj = obj[part]
    return obj


CONTAINER = {"name": "web", "image": "nginx:1.27"}
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [dict(CONTAINER)]}}
SELECTOR = {"matchLabels": {"app": "web"}}


def test_pod_gets_upstream_wire_shape() -> None:
    pod = defaulted("", "v1", "Pod", {"metadata": {"name": "p"}, "spec": {"containers": [dict(CONTAINER)]}})
    assert pod["spec"] == {
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.27",
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "resources": {},
            }
        ],
        "enableServiceLinks": True,
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler",
        "priority": 0,
        "preemptionPolicy": "PreemptLowerPriority",
    }


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry.example.com:5000/team/app", "Always"),
        ("registry.example.com:5000/team/app:v2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:1.27@sha256:" + "a" * 64, "IfNotPresent"),
        ("Nginx", "IfNotPresent"),  # not a valid reference: upstream ignores the parse error
        ("", "IfNotPresent"),
    ],
)
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    pod = defaulted("", "v1", "Pod", {"spec": {"containers": [{"name": "c", "image": image}]}})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_image_tag_of_references() -> None:
    assert image_tag("busybox") == "latest"
    assert image_tag("localhost:5000/busybox:1.36") == "1.36"
    assert image_tag("busybox@sha256:" + "0" * 64) == ""


POD_CASES = [
    # (description, container or spec fragment, path, expected)
    ("port protocol", {"ports": [{"containerPort": 80}]}, "spec.containers[0].ports[0].protocol", "TCP"),
    (
        "requests from limits",
        {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        "spec.containers[0].resources.requests",
        {"cpu": "1", "memory": "1Gi"},
    ),
    (
        "requests kept",
        {"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}}},
        "spec.containers[0].resources.requests",
        {"cpu": "500m"},
    ),
    (
        "probe numbers",
        {"livenessProbe": {"tcpSocket": {"port": 80}}},
        "spec.containers[0].livenessProbe",
        {
            "tcpSocket": {"port": 80},
            "timeoutSeconds": 1,
            "periodSeconds": 10,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
    ),
    (
        "probe httpGet",
        {"readinessProbe": {"httpGet": {"port": 8080}}},
        "spec.containers[0].readinessProbe.httpGet",
        {"port": 8080, "path": "/", "scheme": "HTTP"},
    ),
    (
        "lifecycle httpGet",
        {"lifecycle": {"preStop": {"httpGet": {"port": 80}}}},
        "spec.containers[0].lifecycle.preStop.httpGet",
        {"port": 80, "path": "/", "scheme": "HTTP"},
    ),
    (
        "fieldRef apiVersion",
        {"env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
        "spec.containers[0].env[0].valueFrom.fieldRef",
        {"fieldPath": "metadata.name", "apiVersion": "v1"},
    ),
]


@pytest.mark.parametrize(("container", "path", "expected"), [c[1:] for c in POD_CASES], ids=[c[0] for c in POD_CASES])
def test_container_defaults(container: dict[str, Any], path: str, expected: Any) -> None:
    pod = defaulted("", "v1", "Pod", {"spec": {"containers": [{**CONTAINER, **container}]}})
    assert at(pod, path) == expected


VOLUME_CASES = [
    ("no source", {"name": "v"}, {"name": "v", "emptyDir": {}}),
    (
        "secret",
        {"name": "v", "secret": {"secretName": "s"}},
        {"name": "v", "secret": {"secretName": "s", "defaultMode": 420}},
    ),
    (
        "configMap",
        {"name": "v", "configMap": {"name": "c"}},
        {"name": "v", "configMap": {"name": "c", "defaultMode": 420}},
    ),
    (
        "configMap mode kept",
        {"name": "v", "configMap": {"name": "c", "defaultMode": 256}},
        {"name": "v", "configMap": {"name": "c", "defaultMode": 256}},
    ),
    (
        "hostPath",
        {"name": "v", "hostPath": {"path": "/data"}},
        {"name": "v", "hostPath": {"path": "/data", "type": ""}},
    ),
    (
        "downwardAPI",
        {"name": "v", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {
            "name": "v",
            "downwardAPI": {
                "items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}],
                "defaultMode": 420,
            },
        },
    ),
    (
        "projected token",
        {"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
        {
            "name": "v",
            "projected": {
                "sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}],
                "defaultMode": 420,
            },
        },
    ),
    (
        "pvc untouched",
        {"name": "v", "persistentVolumeClaim": {"claimName": "c"}},
        {"name": "v", "persistentVolumeClaim": {"claimName": "c"}},
    ),
]


@pytest.mark.parametrize(("volume", "expected"), [c[1:] for c in VOLUME_CASES], ids=[c[0] for c in VOLUME_CASES])
def test_volume_defaults(volume: dict[str, Any], expected: dict[str, Any]) -> None:
    pod = defaulted("", "v1", "Pod", {"spec": {"containers": [dict(CONTAINER)], "volumes": [volume]}})
    assert pod["spec"]["volumes"] == [expected]


def test_pod_host_network_copies_container_ports_to_host_ports() -> None:
    pod = defaulted(
        "",
        "v1",
        "Pod",
        {"spec": {"hostNetwork": True, "containers": [{**CONTAINER, "ports": [{"containerPort": 8080}]}]}},
    )
    assert pod["spec"]["containers"][0]["ports"] == [{"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"}]


def test_pod_with_priority_class_leaves_priority_to_admission() -> None:
    pod = defaulted("", "v1", "Pod", {"spec": {"priorityClassName": "high", "containers": [dict(CONTAINER)]}})
    assert "priority" not in pod["spec"] and "preemptionPolicy" not in pod["spec"]


def test_pod_template_defaults_have_no_pod_only_fields() -> None:
    deployment = defaulted("apps", "v1", "Deployment", {"spec": {"selector": SELECTOR, "template": TEMPLATE}})
    spec = deployment["spec"]["template"]["spec"]
    assert "enableServiceLinks" not in spec and "priority" not in spec
    assert deployment["spec"]["template"]["metadata"] == {"labels": {"app": "web"}, "creationTimestamp": None}


WORKLOAD_CASES = [
    (
        "apps",
        "Deployment",
        {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
        {
            "spec.replicas": 1,
            "spec.strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "spec.revisionHistoryLimit": 10,
            "spec.progressDeadlineSeconds": 600,
            "spec.template.spec.restartPolicy": "Always",
            "status": {},
        },
    ),
    (
        "apps",
        "Deployment",
        {"spec": {"strategy": {"type": "Recreate"}, "template": TEMPLATE}},
        {
            "spec.strategy": {"type": "Recreate"},
        },
    ),
    (
        "apps",
        "ReplicaSet",
        {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
        {
            "spec.replicas": 1,
            "status": {"replicas": 0},
        },
    ),
    (
        "apps",
        "StatefulSet",
        {
            "spec": {
                "selector": SELECTOR,
                "template": TEMPLATE,
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                    }
                ],
            }
        },
        {
            "spec.replicas": 1,
            "spec.podManagementPolicy": "OrderedReady",
            "spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "spec.revisionHistoryLimit": 10,
            "spec.persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "spec.volumeClaimTemplates[0]": {
                "metadata": {"name": "data", "creationTimestamp": None},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                    "volumeMode": "Filesystem",
                },
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "status": {"phase": "Pending"},
            },
            "status": {"availableReplicas": 0, "replicas": 0},
        },
    ),
    (
        "apps",
        "StatefulSet",
        {"spec": {"updateStrategy": {"type": "OnDelete"}, "template": TEMPLATE}},
        {
            "spec.updateStrategy": {"type": "OnDelete"},
        },
    ),
    (
        "apps",
        "DaemonSet",
        {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
        {
            "spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "spec.revisionHistoryLimit": 10,
            "status": {
                "currentNumberScheduled": 0,
                "desiredNumberScheduled": 0,
                "numberMisscheduled": 0,
                "numberReady": 0,
            },
        },
    ),
    (
        "batch",
        "Job",
        {"spec": {"template": TEMPLATE}},
        {
            "spec.parallelism": 1,
            "spec.completions": 1,
            "spec.backoffLimit": 6,
            "spec.completionMode": "NonIndexed",
            "spec.suspend": False,
            "spec.podReplacementPolicy": "TerminatingOrFailed",
            "metadata.labels": {"app": "web"},
            "status": {},
        },
    ),
    (
        "batch",
        "Job",
        {"spec": {"parallelism": 3, "template": TEMPLATE}},
        {
            "spec.parallelism": 3,
            "spec.completions": None,
        },
    ),
    (
        "batch",
        "Job",
        {"spec": {"backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 3, "template": TEMPLATE}},
        {
            "spec.backoffLimit": 2147483647,
        },
    ),
    (
        "batch",
        "Job",
        {
            "spec": {
                "podFailurePolicy": {
                    "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
                },
                "template": TEMPLATE,
            }
        },
        {
            "spec.podReplacementPolicy": "Failed",
            "spec.podFailurePolicy.rules[0].onPodConditions[0]": {"type": "DisruptionTarget", "status": "True"},
        },
    ),
    (
        "batch",
        "CronJob",
        {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": TEMPLATE}}}},
        {
            "spec.concurrencyPolicy": "Allow",
            "spec.suspend": False,
            "spec.successfulJobsHistoryLimit": 3,
            "spec.failedJobsHistoryLimit": 1,
            "spec.jobTemplate.metadata": {"creationTimestamp": None},
            "spec.jobTemplate.spec.template.metadata.creationTimestamp": None,
            "status": {},
        },
    ),
    (
        "",
        "ReplicationController",
        {"spec": {"template": TEMPLATE}},
        {
            "spec.replicas": 1,
            "spec.selector": {"app": "web"},
            "metadata.labels": {"app": "web"},
            "status": {"replicas": 0},
        },
    ),
    (
        "",
        "PodTemplate",
        {"template": TEMPLATE},
        {
            "template.spec.dnsPolicy": "ClusterFirst",
            "template.metadata.creationTimestamp": None,
        },
    ),
]


@pytest.mark.parametrize(
    ("group", "kind", "obj", "expected"), WORKLOAD_CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(WORKLOAD_CASES)]
)
def test_workload_defaults(group: str, kind: str, obj: dict[str, Any], expected: dict[str, Any]) -> None:
    out = defaulted(group, "v1", kind, obj)
    for path, value in expected.items():
        if value is None and path.startswith("spec.") and path.count(".") == 1:
            assert path.split(".")[1] not in out["spec"], path
        else:
            assert at(out, path) == value, path


def test_job_cronjob_pod_templates_default_restart_policy_like_upstream() -> None:
    # upstream defaults Always, and Job validation then rejects it: the object is never stored
    job = defaulted("batch", "v1", "Job", {"spec": {"template": TEMPLATE}})
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    kept = defaulted(
        "batch",
        "v1",
        "Job",
        {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [dict(CONTAINER)]}}}},
    )
    assert kept["spec"]["template"]["spec"]["restartPolicy"] == "Never"


SERVICE_CASES = [
    (
        "cluster ip",
        {"ports": [{"port": 80}]},
        {
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": ["IPv4"],
        },
    ),
    (
        "named target port kept",
        {"ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}]},
        {
            "ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}],
        },
    ),
    (
        "node port",
        {"type": "NodePort", "ports": [{"port": 80}]},
        {
            "externalTrafficPolicy": "Cluster",
            "internalTrafficPolicy": "Cluster",
        },
    ),
    (
        "load balancer",
        {"type": "LoadBalancer", "ports": [{"port": 80}]},
        {
            "externalTrafficPolicy": "Cluster",
            "allocateLoadBalancerNodePorts": True,
        },
    ),
    (
        "client ip affinity",
        {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]},
        {
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        },
    ),
    (
        "headless without selector",
        {"clusterIP": "None", "ports": [{"port": 80}]},
        {
            "ipFamilyPolicy": "RequireDualStack",
            "ipFamilies": ["IPv4"],
        },
    ),
    (
        "headless with selector",
        {"clusterIP": "None", "selector": {"app": "web"}},
        {
            "ipFamilyPolicy": "SingleStack",
        },
    ),
]


@pytest.mark.parametrize(("spec", "expected"), [c[1:] for c in SERVICE_CASES], ids=[c[0] for c in SERVICE_CASES])
def test_service_defaults(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    service = defaulted("", "v1", "Service", {"spec": spec})
    for key, value in expected.items():
        assert service["spec"][key] == value, key
    assert service["status"] == {"loadBalancer": {}}


def test_external_name_service_gets_no_ip_families_or_traffic_policies() -> None:
    service = defaulted("", "v1", "Service", {"spec": {"type": "ExternalName", "externalName": "example.com"}})
    assert service["spec"] == {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}


def test_session_affinity_none_drops_its_config() -> None:
    service = defaulted("", "v1", "Service", {"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}})
    assert "sessionAffinityConfig" not in service["spec"]


CORE_CASES = [
    (
        "",
        "v1",
        "Namespace",
        {"metadata": {"name": "team-a"}},
        {
            "metadata.labels": {"kubernetes.io/metadata.name": "team-a"},
            "spec": {},
            "status": {"phase": "Active"},
        },
    ),
    ("", "v1", "Secret", {"stringData": {"user": "admin"}}, {"type": "Opaque", "data": {"user": "YWRtaW4="}}),
    (
        "",
        "v1",
        "Secret",
        {"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}},
        {"type": "kubernetes.io/tls"},
    ),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        {"spec": {"accessModes": ["ReadWriteOnce"]}},
        {
            "spec.volumeMode": "Filesystem",
            "spec.resources": {},
            "status": {"phase": "Pending"},
        },
    ),
    (
        "",
        "v1",
        "PersistentVolume",
        {"spec": {"hostPath": {"path": "/d"}}},
        {
            "spec.persistentVolumeReclaimPolicy": "Retain",
            "spec.volumeMode": "Filesystem",
            "spec.hostPath": {"path": "/d", "type": ""},
            "status": {"phase": "Pending"},
        },
    ),
    ("", "v1", "Endpoints", {"subsets": [{"ports": [{"port": 80}]}]}, {"subsets[0].ports[0].protocol": "TCP"}),
    ("", "v1", "Node", {"status": {"capacity": {"cpu": "4"}}}, {"status.allocatable": {"cpu": "4"}, "spec": {}}),
    (
        "",
        "v1",
        "LimitRange",
        {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}]}},
        {"spec.limits[0].default": {"cpu": "2"}, "spec.limits[0].defaultRequest": {"cpu": "2", "memory": "1Mi"}},
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        {"spec": {"maxReplicas": 3}},
        {
            "spec.minReplicas": 1,
            "spec.metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
            "status": {"desiredReplicas": 0},
        },
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        {"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}},
        {
            "spec.behavior.scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                ],
            },
            "spec.behavior.scaleDown": {
                "stabilizationWindowSeconds": 60,
                "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
            },
        },
    ),
    (
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        {"spec": {"maxReplicas": 3}},
        {
            "spec": {"maxReplicas": 3, "minReplicas": 1},
            "status": {"currentReplicas": 0, "desiredReplicas": 0},
        },
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        {"spec": {"minAvailable": 1}},
        {
            "spec": {"minAvailable": 1},
            "status": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0},
        },
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        {
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s", "namespace": "n"}],
        },
        {
            "roleRef.apiGroup": "rbac.authorization.k8s.io",
            "subjects": [
                {"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "ServiceAccount", "name": "s", "namespace": "n"},
            ],
        },
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        {"ports": [{"port": 80}]},
        {
            "ports": [{"port": 80, "name": "", "protocol": "TCP"}],
        },
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        {"spec": {"egress": [{"ports": [{"port": 53}]}]}},
        {
            "spec.policyTypes": ["Ingress", "Egress"],
            "spec.egress[0].ports[0].protocol": "TCP",
        },
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        {"spec": {"rules": [{"host": "a.example.com"}]}},
        {
            "spec.rules": [{"host": "a.example.com"}],
            "status": {"loadBalancer": {}},
        },
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        {"provisioner": "x.io/p"},
        {
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
    ),
    ("scheduling.k8s.io", "v1", "PriorityClass", {"value": 10}, {"preemptionPolicy": "PreemptLowerPriority"}),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        {"spec": {"names": {"kind": "Widget", "plural": "widgets"}}},
        {
            "spec.names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "spec.conversion": {"strategy": "None"},
        },
    ),
    ("", "v1", "ConfigMap", {"data": {"a": "b"}}, {"data": {"a": "b"}}),
    ("", "v1", "ServiceAccount", {"metadata": {"name": "s"}}, {"metadata": {"name": "s"}}),
]


@pytest.mark.parametrize(
    ("group", "version", "kind", "obj", "expected"), CORE_CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CORE_CASES)]
)
def test_kind_defaults(group: str, version: str, kind: str, obj: dict[str, Any], expected: dict[str, Any]) -> None:
    out = defaulted(group, version, kind, obj)
    for path, value in expected.items():
        assert at(out, path) == value, path


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("", "ConfigMap"),
        ("", "ServiceAccount"),
        ("rbac.authorization.k8s.io", "Role"),
        ("coordination.k8s.io", "Lease"),
    ],
)
def test_kinds_without_defaults_are_untouched(group: str, kind: str) -> None:
    obj = {"metadata": {"name": "x"}, "data": {"k": "v"}}
    assert defaulted(group, "v1", kind, obj) == obj


ALL_CASES = (
    [("", "v1", "Pod", {"spec": {"containers": [dict(CONTAINER)], "volumes": [{"name": "v"}]}})]
    + [(g, "v1", k, o) for g, k, o, _ in WORKLOAD_CASES]
    + [(g, v, k, o) for g, v, k, o, _ in CORE_CASES]
    + [("", "v1", "Service", {"spec": s}) for _, s, _ in SERVICE_CASES]
)


@pytest.mark.parametrize(
    ("group", "version", "kind", "obj"), ALL_CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(ALL_CASES)]
)
def test_defaults_are_idempotent(group: str, version: str, kind: str, obj: dict[str, Any]) -> None:
    once = defaulted(group, version, kind, obj)
    assert defaulted(group, version, kind, once) == once


def test_defaults_never_override_given_values() -> None:
    deployment = {
        "spec": {
            "replicas": 0,
            "revisionHistoryLimit": 2,
            "progressDeadlineSeconds": 30,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}},
            "template": {
                "spec": {
                    "dnsPolicy": "Default",
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{**CONTAINER, "imagePullPolicy": "Never"}],
                }
            },
        }
    }
    out = defaulted("apps", "v1", "Deployment", deployment)
    assert out["spec"]["replicas"] == 0
    assert out["spec"]["revisionHistoryLimit"] == 2
    assert out["spec"]["progressDeadlineSeconds"] == 30
    assert out["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": "25%"}
    assert out["spec"]["template"]["spec"]["dnsPolicy"] == "Default"
    assert out["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 0
    assert out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_unknown_kinds_are_left_alone() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}}
    assert defaulted("example.com", "v1", "Widget", obj) == obj


def test_namespace_create_defaults_add_the_kubernetes_finalizer_once() -> None:
    namespace: dict[str, Any] = {"metadata": {"name": "n"}}
    apply_create_defaults("", "v1", "Namespace", namespace)
    apply_create_defaults("", "v1", "Namespace", namespace)
    assert namespace["spec"]["finalizers"] == ["kubernetes"]
    custom: dict[str, Any] = {"metadata": {"name": "n"}, "spec": {"finalizers": ["example.com/cleanup"]}}
    apply_create_defaults("", "v1", "Namespace", custom)
    assert custom["spec"]["finalizers"] == ["example.com/cleanup", "kubernetes"]


def test_namespace_update_defaults_do_not_resurrect_the_finalizer() -> None:
    finalized = {"metadata": {"name": "n"}, "spec": {}, "status": {"phase": "Terminating"}}
    out = defaulted("", "v1", "Namespace", finalized)
    assert out["spec"] == {}
    assert out["status"] == {"phase": "Terminating"}
