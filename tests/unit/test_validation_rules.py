"""Registry validation: upstream's field errors (reason, field, message) for the commonly hit rules.

Objects are defaulted first, as the API server does before it validates.  Expected messages are
upstream's `field.Error.ErrorBody()` texts for Kubernetes 1.32.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kubelite.apiserver.registry.defaults import apply_defaults
from kubelite.apiserver.registry.validation import validate_object

SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
PORT_RANGE = "must be between 1 and 65535, inclusive"
SELECTOR_MISMATCH = "`selector` does not match template `labels`"

REQUIRED, INVALID, NOT_SUPPORTED = "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported"
DUPLICATE, FORBIDDEN, TOO_LONG, NOT_FOUND = (
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueTooLong",
    "FieldValueNotFound",
)

GROUPS = {
    "Deployment": "apps",
    "ReplicaSet": "apps",
    "StatefulSet": "apps",
    "DaemonSet": "apps",
    "Job": "batch",
    "CronJob": "batch",
    "HorizontalPodAutoscaler": "autoscaling",
    "Lease": "coordination.k8s.io",
    "EndpointSlice": "discovery.k8s.io",
    "Ingress": "networking.k8s.io",
    "PodDisruptionBudget": "policy",
    "Role": "rbac.authorization.k8s.io",
    "ClusterRole": "rbac.authorization.k8s.io",
    "RoleBinding": "rbac.authorization.k8s.io",
    "ClusterRoleBinding": "rbac.authorization.k8s.io",
    "StorageClass": "storage.k8s.io",
    "PriorityClass": "scheduling.k8s.io",
}
CLUSTER_SCOPED = {
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "PriorityClass",
}
VERSIONS = {"HorizontalPodAutoscaler": "v2"}

Change = Callable[[dict[str, Any]], Any]


def obj(kind: str, name: str = "web", **fields: Any) -> dict[str, Any]:
    """A defaulted object of `kind` (`metadata` may be given to replace the generated one)."""
    out: dict[str, Any] = {"metadata": {"name": name}, **fields}
    if kind not in CLUSTER_SCOPED:
        out["metadata"].setdefault("namespace", "default")
    apply_defaults(GROUPS.get(kind, ""), VERSIONS.get(kind, "v1"), kind, out)
    return out


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "web", "image": "nginx:1.27", **fields}


def template(labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "web"} if labels is None else labels},
        "spec": {"containers": [container()], **spec},
    }


def pod(**spec: Any) -> dict[str, Any]:
    return obj("Pod", spec={"containers": [container()], **spec})


def deployment(**spec: Any) -> dict[str, Any]:
    return obj("Deployment", spec={"selector": {"matchLabels": {"app": "web"}}, "template": template(), **spec})


def job(**spec: Any) -> dict[str, Any]:
    fields = {"template": template(restartPolicy="Never"), **spec}
    return obj("Job", spec=fields)


def cron_job(**spec: Any) -> dict[str, Any]:
    fields = {
        "schedule": "*/5 * * * *",
        "jobTemplate": {"spec": {"template": template(restartPolicy="OnFailure")}},
        **spec,
    }
    return obj("CronJob", spec=fields)


def service(**spec: Any) -> dict[str, Any]:
    return obj("Service", spec={"selector": {"app": "web"}, "ports": [{"port": 80}], **spec})


def causes_of(
    kind: str, target: dict[str, Any], *, old: dict[str, Any] | None = None, **kw: Any
) -> list[tuple[str, str, str]]:
    return [(c.field, c.reason, c.message) for c in validate_object(GROUPS.get(kind, ""), kind, target, old=old, **kw)]


def changed(base: dict[str, Any], change: Change) -> dict[str, Any]:
    out = copy.deepcopy(base)
    change(out)
    return out


# -- valid objects ---------------------------------------------------------------------------------

VALID = [
    ("Pod", pod()),
    (
        "Pod",
        pod(
            volumes=[{"name": "data"}],
            initContainers=[container(name="init")],
            containers=[
                container(
                    volumeMounts=[{"name": "data", "mountPath": "/data"}],
                    ports=[{"name": "http", "containerPort": 80}],
                    env=[{"name": "MY.VAR-1", "value": "x"}],
                    resources={"limits": {"cpu": "1", "memory": "1Gi"}},
                    livenessProbe={"httpGet": {"port": "http"}},
                )
            ],
        ),
    ),
    ("Deployment", deployment()),
    ("Deployment", deployment(strategy={"type": "Recreate"}, replicas=0)),
    ("ReplicaSet", obj("ReplicaSet", spec={"selector": {"matchLabels": {"app": "web"}}, "template": template()})),
    (
        "StatefulSet",
        obj(
            "StatefulSet",
            spec={
                "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                "serviceName": "web",
                "template": template(),
            },
        ),
    ),
    (
        # a volumeMount may name a volumeClaimTemplate: its pods get that claim as a volume
        "StatefulSet",
        obj(
            "StatefulSet",
            spec={
                "selector": {"matchLabels": {"app": "web"}},
                "serviceName": "web",
                "template": template(containers=[container(volumeMounts=[{"name": "www", "mountPath": "/data"}])]),
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
            },
        ),
    ),
    ("DaemonSet", obj("DaemonSet", spec={"selector": {"matchLabels": {"app": "web"}}, "template": template()})),
    ("ReplicationController", obj("ReplicationController", spec={"template": template()})),
    ("Job", job()),
    ("Job", job(selector={"matchLabels": {"app": "web"}}, manualSelector=True)),
    ("CronJob", cron_job()),
    ("CronJob", cron_job(schedule="@weekly", timeZone="Europe/Berlin")),
    ("CronJob", cron_job(schedule="0 9-17/2 * jan-mar MON-FRI")),
    ("Service", service()),
    ("Service", service(clusterIP="None", ports=[])),
    ("Service", obj("Service", spec={"type": "ExternalName", "externalName": "db.example.com."})),
    ("Service", service(ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443, "targetPort": "https"}])),
    ("ConfigMap", obj("ConfigMap", data={"app.properties": "a=b", "KEY_1": "v"})),
    ("Secret", obj("Secret", stringData={"password": "s3cret"})),
    ("Secret", obj("Secret", type="kubernetes.io/tls", data={"tls.crt": "", "tls.key": ""})),
    ("Namespace", obj("Namespace", name="team-a", spec={"finalizers": ["kubernetes", "example.com/x"]})),
    ("Node", obj("Node", name="node-1.example.com", spec={"taints": [{"key": "k", "effect": "NoSchedule"}]})),
    (
        "PersistentVolumeClaim",
        obj(
            "PersistentVolumeClaim",
            spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        ),
    ),
    ("Lease", obj("Lease", spec={"holderIdentity": "a", "leaseDurationSeconds": 15})),
    (
        "Role",
        obj("Role", name="system:controller:web", rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
    ),
    ("ClusterRole", obj("ClusterRole", rules=[{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}])),
    (
        "RoleBinding",
        obj(
            "RoleBinding",
            roleRef={"kind": "ClusterRole", "name": "view"},
            subjects=[{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default"}],
        ),
    ),
    (
        "HorizontalPodAutoscaler",
        obj(
            "HorizontalPodAutoscaler",
            spec={"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3},
        ),
    ),
    ("PodDisruptionBudget", obj("PodDisruptionBudget", spec={"minAvailable": "50%"})),
    (
        "Ingress",
        obj(
            "Ingress",
            spec={
                "rules": [
                    {
                        "host": "*.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        ),
    ),
    (
        "EndpointSlice",
        obj(
            "EndpointSlice",
            addressType="IPv4",
            endpoints=[{"addresses": ["10.0.0.1"]}],
            ports=[{"name": "http", "port": 80}],
        ),
    ),
    ("StorageClass", obj("StorageClass", provisioner="example.com/disk")),
]


@pytest.mark.parametrize(("kind", "target"), VALID, ids=[f"{k}-{i}" for i, (k, _) in enumerate(VALID)])
def test_valid_objects_have_no_causes(kind: str, target: dict[str, Any]) -> None:
    assert causes_of(kind, target) == []


# -- invalid objects on create ---------------------------------------------------------------------

CREATE = [
    # metadata
    (
        "name not a subdomain",
        "ConfigMap",
        obj("ConfigMap", name="Foo_Bar"),
        [("metadata.name", INVALID, f'Invalid value: "Foo_Bar": {SUBDOMAIN}')],
    ),
    (
        "name missing",
        "ConfigMap",
        obj("ConfigMap", name=""),
        [("metadata.name", REQUIRED, "Required value: name or generateName is required")],
    ),
    (
        "name too long",
        "ConfigMap",
        obj("ConfigMap", name="a" * 254),
        [("metadata.name", INVALID, f'Invalid value: "{"a" * 254}": must be no more than 253 characters')],
    ),
    (
        "namespace names are labels",
        "Namespace",
        obj("Namespace", name="team.a"),
        [("metadata.name", INVALID, 'Invalid value: "team.a": must not contain dots')],
    ),
    (
        "service names are DNS-1035 labels",
        "Service",
        changed(service(), lambda o: o["metadata"].update(name="1web")),
        [("metadata.name", INVALID, f'Invalid value: "1web": {DNS1035}')],
    ),
    (
        "generateName",
        "ConfigMap",
        obj(
            "ConfigMap",
            name="Web-abcde",
            metadata={"generateName": "Web-", "name": "Web-abcde", "namespace": "default"},
        ),
        [
            ("metadata.generateName", INVALID, f'Invalid value: "Web-": {SUBDOMAIN}'),
            ("metadata.name", INVALID, f'Invalid value: "Web-abcde": {SUBDOMAIN}'),
        ],
    ),
    (
        "rbac names are path segments",
        "Role",
        obj("Role", name="a/b%c"),
        [
            ("metadata.name", INVALID, "Invalid value: \"a/b%c\": may not contain '/'"),
            ("metadata.name", INVALID, "Invalid value: \"a/b%c\": may not contain '%'"),
        ],
    ),
    (
        "rbac name dot",
        "ClusterRole",
        obj("ClusterRole", name=".."),
        [("metadata.name", INVALID, "Invalid value: \"..\": may not be '..'")],
    ),
    (
        "namespace required",
        "ConfigMap",
        changed(obj("ConfigMap"), lambda o: o["metadata"].pop("namespace")),
        [("metadata.namespace", REQUIRED, "Required value")],
    ),
    (
        "namespace forbidden",
        "Namespace",
        obj("Namespace", metadata={"name": "n", "namespace": "default"}),
        [("metadata.namespace", FORBIDDEN, "Forbidden: not allowed on this type")],
    ),
    (
        "label key and value",
        "ConfigMap",
        obj("ConfigMap", metadata={"name": "c", "namespace": "default", "labels": {"-bad": "ok", "app": "has space"}}),
        [
            ("metadata.labels", INVALID, f'Invalid value: "-bad": {NAME_PART}'),
            ("metadata.labels", INVALID, f'Invalid value: "has space": {LABEL_VALUE}'),
        ],
    ),
    (
        "annotation budget",
        "ConfigMap",
        obj("ConfigMap", metadata={"name": "c", "namespace": "default", "annotations": {"big": "x" * (256 * 1024)}}),
        [("metadata.annotations", TOO_LONG, "Too long: must have at most 262144 bytes")],
    ),
    (
        "owner reference",
        "ConfigMap",
        obj(
            "ConfigMap",
            metadata={
                "name": "c",
                "namespace": "default",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs"}],
            },
        ),
        [("metadata.ownerReferences.uid", INVALID, 'Invalid value: "": uid must not be empty')],
    ),
    # pods
    ("no containers", "Pod", pod(containers=[]), [("spec.containers", REQUIRED, "Required value")]),
    (
        "container name and image",
        "Pod",
        pod(containers=[{"name": ""}]),
        [
            ("spec.containers[0].name", REQUIRED, "Required value"),
            ("spec.containers[0].image", REQUIRED, "Required value"),
        ],
    ),
    (
        "container name syntax",
        "Pod",
        pod(containers=[container(name="Web")]),
        [("spec.containers[0].name", INVALID, f'Invalid value: "Web": {LABEL}')],
    ),
    (
        "duplicate container names",
        "Pod",
        pod(initContainers=[container()]),
        [("spec.initContainers[0].name", DUPLICATE, 'Duplicate value: "web"')],
    ),
    (
        "container port range",
        "Pod",
        pod(containers=[container(ports=[{"containerPort": 70000}])]),
        [("spec.containers[0].ports[0].containerPort", INVALID, f"Invalid value: 70000: {PORT_RANGE}")],
    ),
    (
        "container port protocol",
        "Pod",
        pod(containers=[container(ports=[{"containerPort": 80, "protocol": "HTTP"}])]),
        [
            (
                "spec.containers[0].ports[0].protocol",
                NOT_SUPPORTED,
                'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
            )
        ],
    ),
    (
        "restart policy",
        "Pod",
        pod(restartPolicy="Sometimes"),
        [
            (
                "spec.restartPolicy",
                NOT_SUPPORTED,
                'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
            )
        ],
    ),
    (
        "mount of a missing volume",
        "Pod",
        pod(containers=[container(volumeMounts=[{"name": "data", "mountPath": "/d"}])]),
        [("spec.containers[0].volumeMounts[0].name", NOT_FOUND, 'Not found: "data"')],
    ),
    (
        "requests over limits",
        "Pod",
        pod(containers=[container(resources={"limits": {"cpu": "1"}, "requests": {"cpu": "2"}})]),
        [
            (
                "spec.containers[0].resources.requests[cpu]",
                INVALID,
                'Invalid value: "2": must be less than or equal to cpu limit of 1',
            )
        ],
    ),
    (
        "env name",
        "Pod",
        pod(containers=[container(env=[{"name": "", "value": "x"}, {"name": "A=B"}])]),
        [
            ("spec.containers[0].env[0].name", REQUIRED, "Required value"),
            (
                "spec.containers[0].env[0].name",
                INVALID,
                'Invalid value: "": environment variable name must be non-empty',
            ),
            (
                "spec.containers[0].env[1].name",
                INVALID,
                'Invalid value: "A=B": a valid environment variable name must '
                "consist only of printable ASCII characters other than '='",
            ),
        ],
    ),
    (
        "toleration effect",
        "Pod",
        pod(tolerations=[{"key": "k", "operator": "Exists", "effect": "Never"}]),
        [
            (
                "spec.tolerations[0].effect",
                NOT_SUPPORTED,
                'Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
            )
        ],
    ),
    (
        "volume name",
        "Pod",
        pod(volumes=[{"name": "Data"}, {"name": "Data"}]),
        [
            ("spec.volumes[0].name", INVALID, f'Invalid value: "Data": {LABEL}'),
            ("spec.volumes[1].name", INVALID, f'Invalid value: "Data": {LABEL}'),
            ("spec.volumes[1].name", DUPLICATE, 'Duplicate value: "Data"'),
        ],
    ),
    (
        "image whitespace",
        "Pod",
        pod(containers=[container(image=" nginx")]),
        [
            (
                "spec.containers[0].image",
                INVALID,
                'Invalid value: " nginx": must not have leading or trailing whitespace',
            )
        ],
    ),
    (
        "liveness success threshold",
        "Pod",
        pod(containers=[container(livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2})]),
        [("spec.containers[0].livenessProbe.successThreshold", INVALID, "Invalid value: 2: must be 1")],
    ),
    # workloads
    (
        "deployment without selector",
        "Deployment",
        deployment(selector=None),
        [
            ("spec.selector", REQUIRED, "Required value"),
            (
                "spec.template.metadata.labels",
                INVALID,
                f'Invalid value: map[string]string{{"app":"web"}}: {SELECTOR_MISMATCH}',
            ),
        ],
    ),
    (
        "deployment selector mismatch",
        "Deployment",
        deployment(template=template(labels={"app": "api"})),
        [
            (
                "spec.template.metadata.labels",
                INVALID,
                f'Invalid value: map[string]string{{"app":"api"}}: {SELECTOR_MISMATCH}',
            )
        ],
    ),
    (
        "deployment empty selector",
        "Deployment",
        deployment(selector={}),
        [
            (
                "spec.selector",
                INVALID,
                "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
            )
        ],
    ),
    (
        "negative replicas",
        "Deployment",
        deployment(replicas=-1),
        [("spec.replicas", INVALID, "Invalid value: -1: must be greater than or equal to 0")],
    ),
    (
        "zero surge and unavailable",
        "Deployment",
        deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
        [
            (
                "spec.strategy.rollingUpdate.maxUnavailable",
                INVALID,
                "Invalid value: 0%: may not be 0 when `maxSurge` is 0",
            )
        ],
    ),
    (
        "percent over 100",
        "Deployment",
        deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}}),
        [("spec.strategy.rollingUpdate.maxUnavailable", INVALID, "Invalid value: 150%: must not be greater than 100%")],
    ),
    (
        "deployment restart policy",
        "Deployment",
        deployment(template=template(restartPolicy="Never")),
        [("spec.template.spec.restartPolicy", NOT_SUPPORTED, 'Unsupported value: "Never": supported values: "Always"')],
    ),
    (
        "template label syntax",
        "ReplicaSet",
        obj(
            "ReplicaSet",
            spec={"selector": {"matchLabels": {"app": "web"}}, "template": template(labels={"app": "web", "x": "a b"})},
        ),
        [("spec.template.labels", INVALID, f'Invalid value: "a b": {LABEL_VALUE}')],
    ),
    (
        "statefulset mount of neither a volume nor a claim template",
        "StatefulSet",
        obj(
            "StatefulSet",
            spec={
                "selector": {"matchLabels": {"app": "web"}},
                "template": template(containers=[container(volumeMounts=[{"name": "www", "mountPath": "/data"}])]),
            },
        ),
        [("spec.template.spec.containers[0].volumeMounts[0].name", NOT_FOUND, 'Not found: "www"')],
    ),
    (
        "statefulset pod management",
        "StatefulSet",
        obj(
            "StatefulSet",
            spec={"selector": {"matchLabels": {"app": "web"}}, "template": template(), "podManagementPolicy": "Fast"},
        ),
        [("spec.podManagementPolicy", INVALID, "Invalid value: \"Fast\": must be 'OrderedReady' or 'Parallel'")],
    ),
    (
        "daemonset surge and unavailable",
        "DaemonSet",
        obj(
            "DaemonSet",
            spec={
                "selector": {"matchLabels": {"app": "web"}},
                "template": template(),
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
            },
        ),
        [
            (
                "spec.updateStrategy.rollingUpdate.maxSurge",
                INVALID,
                "Invalid value: 1: may not be set when maxUnavailable is non-zero",
            )
        ],
    ),
    (
        "replication controller mismatch",
        "ReplicationController",
        obj("ReplicationController", spec={"selector": {"app": "api"}, "template": template()}),
        [
            (
                "spec.template.metadata.labels",
                INVALID,
                f'Invalid value: map[string]string{{"app":"web"}}: {SELECTOR_MISMATCH}',
            )
        ],
    ),
    (
        "job restart policy",
        "Job",
        obj("Job", spec={"template": template()}),
        [("spec.template.spec.restartPolicy", REQUIRED, 'Required value: valid values: "OnFailure", "Never"')],
    ),
    (
        "job counts",
        "Job",
        job(parallelism=-1, backoffLimit=-2),
        [
            ("spec.parallelism", INVALID, "Invalid value: -1: must be greater than or equal to 0"),
            ("spec.backoffLimit", INVALID, "Invalid value: -2: must be greater than or equal to 0"),
        ],
    ),
    (
        "job completion mode",
        "Job",
        job(completionMode="Sometimes"),
        [
            (
                "spec.completionMode",
                NOT_SUPPORTED,
                'Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"',
            )
        ],
    ),
    ("cronjob schedule required", "CronJob", cron_job(schedule=""), [("spec.schedule", REQUIRED, "Required value")]),
    (
        "cronjob schedule fields",
        "CronJob",
        cron_job(schedule="every minute"),
        [
            (
                "spec.schedule",
                INVALID,
                'Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]',
            )
        ],
    ),
    (
        "cronjob schedule range",
        "CronJob",
        cron_job(schedule="61 * * * *"),
        [("spec.schedule", INVALID, 'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61')],
    ),
    (
        "cronjob schedule word",
        "CronJob",
        cron_job(schedule="* * * * funday"),
        [
            (
                "spec.schedule",
                INVALID,
                'Invalid value: "* * * * funday": failed to parse int from funday: '
                'strconv.Atoi: parsing "funday": invalid syntax',
            )
        ],
    ),
    (
        "cronjob descriptor",
        "CronJob",
        cron_job(schedule="@fortnightly"),
        [("spec.schedule", INVALID, 'Invalid value: "@fortnightly": unrecognized descriptor: @fortnightly')],
    ),
    (
        "cronjob TZ in schedule",
        "CronJob",
        cron_job(schedule="TZ=UTC 0 * * * *"),
        [
            (
                "spec.schedule",
                INVALID,
                'Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
            )
        ],
    ),
    (
        "cronjob time zone",
        "CronJob",
        cron_job(timeZone="Mars/Olympus_Mons"),
        [("spec.timeZone", INVALID, 'Invalid value: "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons')],
    ),
    (
        "cronjob concurrency",
        "CronJob",
        cron_job(concurrencyPolicy="Never"),
        [
            (
                "spec.concurrencyPolicy",
                NOT_SUPPORTED,
                'Unsupported value: "Never": supported values: "Allow", "Forbid", "Replace"',
            )
        ],
    ),
    (
        "cronjob name length",
        "CronJob",
        changed(cron_job(), lambda o: o["metadata"].update(name="c" * 53)),
        [("metadata.name", INVALID, f'Invalid value: "{"c" * 53}": must be no more than 52 characters')],
    ),
    (
        "cronjob job restart policy",
        "CronJob",
        cron_job(jobTemplate={"spec": {"template": template()}}),
        [
            (
                "spec.jobTemplate.spec.template.spec.restartPolicy",
                REQUIRED,
                'Required value: valid values: "OnFailure", "Never"',
            )
        ],
    ),
    # core
    ("service without ports", "Service", service(ports=[]), [("spec.ports", REQUIRED, "Required value")]),
    (
        "service port range",
        "Service",
        service(ports=[{"port": 0, "targetPort": 80}]),
        [("spec.ports[0].port", INVALID, f"Invalid value: 0: {PORT_RANGE}")],
    ),
    (
        "service port names required",
        "Service",
        service(ports=[{"port": 80}, {"port": 443}]),
        [("spec.ports[0].name", REQUIRED, "Required value"), ("spec.ports[1].name", REQUIRED, "Required value")],
    ),
    (
        "service port names unique",
        "Service",
        service(ports=[{"name": "http", "port": 80}, {"name": "http", "port": 81}]),
        [("spec.ports[1].name", DUPLICATE, 'Duplicate value: "http"')],
    ),
    (
        "service type",
        "Service",
        service(type="Internal"),
        [
            (
                "spec.type",
                NOT_SUPPORTED,
                'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", '
                '"LoadBalancer", "NodePort"',
            )
        ],
    ),
    (
        "service node port on cluster ip",
        "Service",
        service(ports=[{"port": 80, "nodePort": 30080}]),
        [("spec.ports[0].nodePort", FORBIDDEN, "Forbidden: may not be used when `type` is 'ClusterIP'")],
    ),
    (
        "configmap key",
        "ConfigMap",
        obj("ConfigMap", data={"bad key": "v"}),
        [("data[bad key]", INVALID, f'Invalid value: "bad key": {CONFIG_KEY}')],
    ),
    (
        "configmap size",
        "ConfigMap",
        obj("ConfigMap", data={"a": "x" * (1024 * 1024), "b": "y"}),
        [("", TOO_LONG, "Too long: must have at most 1048576 bytes")],
    ),
    (
        "secret tls keys",
        "Secret",
        obj("Secret", type="kubernetes.io/tls", data={}),
        [("data[tls.crt]", REQUIRED, "Required value"), ("data[tls.key]", REQUIRED, "Required value")],
    ),
    (
        "secret docker config",
        "Secret",
        obj("Secret", type="kubernetes.io/dockerconfigjson"),
        [("data[.dockerconfigjson]", REQUIRED, "Required value")],
    ),
    (
        "secret basic auth",
        "Secret",
        obj("Secret", type="kubernetes.io/basic-auth"),
        [("data[username]", REQUIRED, "Required value"), ("data[password]", REQUIRED, "Required value")],
    ),
    (
        "secret ssh auth",
        "Secret",
        obj("Secret", type="kubernetes.io/ssh-auth"),
        [("data[ssh-privatekey]", REQUIRED, "Required value")],
    ),
    (
        "service account token secret",
        "Secret",
        obj("Secret", type="kubernetes.io/service-account-token"),
        [("metadata.annotations[kubernetes.io/service-account.name]", REQUIRED, "Required value")],
    ),
    (
        "namespace finalizer",
        "Namespace",
        obj("Namespace", name="n", spec={"finalizers": ["cleanup"]}),
        [
            (
                "spec.finalizers",
                INVALID,
                'Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified',
            )
        ],
    ),
    (
        "node taint effect",
        "Node",
        obj("Node", name="n", spec={"taints": [{"key": "k", "effect": "Sometimes"}]}),
        [
            (
                "spec.taints[0].effect",
                NOT_SUPPORTED,
                'Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
            )
        ],
    ),
    (
        "claim without modes or storage",
        "PersistentVolumeClaim",
        obj("PersistentVolumeClaim", spec={}),
        [
            ("spec.accessModes", REQUIRED, "Required value: at least 1 access mode is required"),
            ("spec.resources[storage]", REQUIRED, "Required value"),
        ],
    ),
    # other groups
    (
        "lease duration",
        "Lease",
        obj("Lease", spec={"leaseDurationSeconds": 0}),
        [("spec.leaseDurationSeconds", INVALID, "Invalid value: 0: must be greater than 0")],
    ),
    (
        "rule without verbs",
        "Role",
        obj("Role", rules=[{"apiGroups": [""], "resources": ["pods"]}]),
        [("rules[0].verbs", REQUIRED, "Required value: verbs must contain at least one value")],
    ),
    (
        "role binding ref kind",
        "RoleBinding",
        obj("RoleBinding", roleRef={"kind": "Group", "name": "x"}),
        [("roleRef.kind", NOT_SUPPORTED, 'Unsupported value: "Group": supported values: "Role", "ClusterRole"')],
    ),
    (
        "service account subject namespace",
        "ClusterRoleBinding",
        obj(
            "ClusterRoleBinding",
            roleRef={"kind": "ClusterRole", "name": "view"},
            subjects=[{"kind": "ServiceAccount", "name": "default"}],
        ),
        [("subjects[0].namespace", REQUIRED, "Required value")],
    ),
    (
        "hpa bounds",
        "HorizontalPodAutoscaler",
        obj(
            "HorizontalPodAutoscaler",
            spec={"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 5, "maxReplicas": 2},
        ),
        [("spec.maxReplicas", INVALID, "Invalid value: 2: must be greater than or equal to `minReplicas`")],
    ),
    (
        "hpa target",
        "HorizontalPodAutoscaler",
        obj("HorizontalPodAutoscaler", spec={"maxReplicas": 0}),
        [
            ("spec.maxReplicas", INVALID, "Invalid value: 0: must be greater than 0"),
            ("spec.maxReplicas", INVALID, "Invalid value: 0: must be greater than or equal to `minReplicas`"),
            ("spec.scaleTargetRef.kind", REQUIRED, "Required value"),
            ("spec.scaleTargetRef.name", REQUIRED, "Required value"),
        ],
    ),
    (
        "ingress path type",
        "Ingress",
        obj(
            "Ingress",
            spec={
                "rules": [
                    {
                        "http": {
                            "paths": [{"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]
                        }
                    }
                ]
            },
        ),
        [("spec.rules[0].http.paths[0].pathType", REQUIRED, "Required value: pathType must be specified")],
    ),
    (
        "endpoint slice address type",
        "EndpointSlice",
        obj("EndpointSlice", addressType="IPv5"),
        [("addressType", NOT_SUPPORTED, 'Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"')],
    ),
    ("storage class provisioner", "StorageClass", obj("StorageClass"), [("provisioner", REQUIRED, "Required value")]),
    (
        "priority class reserved prefix",
        "PriorityClass",
        obj("PriorityClass", name="system-mine", value=1),
        [("metadata.name", FORBIDDEN, "Forbidden: priority class names with 'system-' prefix are reserved")],
    ),
]


@pytest.mark.parametrize(("kind", "target", "expected"), [c[1:] for c in CREATE], ids=[c[0] for c in CREATE])
def test_create_causes(kind: str, target: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert causes_of(kind, target) == expected


# -- updates ---------------------------------------------------------------------------------------


def stored(target: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(target)
    out["metadata"].update(uid="6f1c", creationTimestamp="2025-01-02T03:04:05Z", resourceVersion="7")
    return out


UPDATE: list[tuple[str, str, dict[str, Any], Change, list[tuple[str, str, str]]]] = [
    ("deployment scale is fine", "Deployment", deployment(), lambda o: o["spec"].update(replicas=5), []),
    (
        "deployment selector",
        "Deployment",
        deployment(),
        lambda o: (
            o["spec"].update(selector={"matchLabels": {"app": "api"}}),
            o["spec"]["template"]["metadata"].update(labels={"app": "api"}),
        ),
        [
            (
                "spec.selector",
                INVALID,
                'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"api"}, '
                "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
            )
        ],
    ),
    (
        "name",
        "ConfigMap",
        obj("ConfigMap"),
        lambda o: o["metadata"].update(name="other"),
        [("metadata.name", INVALID, 'Invalid value: "other": field is immutable')],
    ),
    (
        "uid and creation time",
        "ConfigMap",
        obj("ConfigMap"),
        lambda o: o["metadata"].update(uid="x", creationTimestamp="2025-02-03T04:05:06Z"),
        [
            ("metadata.uid", INVALID, 'Invalid value: "x": field is immutable'),
            ("metadata.creationTimestamp", INVALID, "Invalid value: 2025-02-03 04:05:06 +0000 UTC: field is immutable"),
        ],
    ),
    ("pod image", "Pod", pod(), lambda o: o["spec"]["containers"][0].update(image="nginx:1.28"), []),
    (
        "pod toleration added",
        "Pod",
        pod(),
        lambda o: o["spec"].update(
            tolerations=[{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]
        ),
        [],
    ),
    (
        "pod deadline shortened",
        "Pod",
        pod(activeDeadlineSeconds=60),
        lambda o: o["spec"].update(activeDeadlineSeconds=30),
        [],
    ),
    (
        "pod deadline extended",
        "Pod",
        pod(activeDeadlineSeconds=60),
        lambda o: o["spec"].update(activeDeadlineSeconds=90),
        [("spec.activeDeadlineSeconds", INVALID, "Invalid value: 90: must be less than or equal to previous value")],
    ),
    (
        "pod containers added",
        "Pod",
        pod(),
        lambda o: o["spec"]["containers"].append(container(name="b")),
        [("spec.containers", FORBIDDEN, "Forbidden: pod updates may not add or remove containers")],
    ),
    (
        "pod toleration removed",
        "Pod",
        pod(tolerations=[{"key": "k", "operator": "Exists"}]),
        lambda o: o["spec"].update(tolerations=[]),
        [
            (
                "spec.tolerations",
                FORBIDDEN,
                "Forbidden: existing toleration can not be modified except its tolerationSeconds",
            )
        ],
    ),
    (
        "job template",
        "Job",
        job(),
        lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="perl"),
        [("spec.template", INVALID, "Invalid value: core.PodTemplateSpec{...}: field is immutable")],
    ),
    (
        "suspended job scheduling directives",
        "Job",
        job(suspend=True),
        lambda o: o["spec"]["template"]["spec"].update(nodeSelector={"zone": "a"}),
        [],
    ),
    (
        "job completions",
        "Job",
        job(),
        lambda o: o["spec"].update(completions=3),
        [("spec.completions", INVALID, "Invalid value: 3: field is immutable")],
    ),
    (
        "service cluster ip",
        "Service",
        service(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"]),
        lambda o: o["spec"].update(clusterIP="10.96.0.11", clusterIPs=["10.96.0.11"]),
        [("spec.clusterIPs[0]", INVALID, 'Invalid value: []string{"10.96.0.11"}: may not change once set')],
    ),
    (
        "service cluster ip left out",
        "Service",
        service(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"]),
        lambda o: (o["spec"].pop("clusterIP"), o["spec"].pop("clusterIPs")),
        [],
    ),
    (
        "claim access modes",
        "PersistentVolumeClaim",
        obj(
            "PersistentVolumeClaim",
            spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        ),
        lambda o: o["spec"].update(accessModes=["ReadWriteMany"]),
        [("spec", FORBIDDEN, "Forbidden: spec is immutable after creation except resources.requests for bound claims")],
    ),
    (
        "bound claim grows",
        "PersistentVolumeClaim",
        obj(
            "PersistentVolumeClaim",
            spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            status={"phase": "Bound"},
        ),
        lambda o: o["spec"]["resources"]["requests"].update(storage="2Gi"),
        [],
    ),
    (
        "bound claim shrinks",
        "PersistentVolumeClaim",
        obj(
            "PersistentVolumeClaim",
            spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
            status={"phase": "Bound"},
        ),
        lambda o: o["spec"]["resources"]["requests"].update(storage="1Gi"),
        [("spec.resources.requests.storage", FORBIDDEN, "Forbidden: field can not be less than previous value")],
    ),
    (
        "claim gets its volume",
        "PersistentVolumeClaim",
        obj(
            "PersistentVolumeClaim",
            spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        ),
        lambda o: o["spec"].update(volumeName="pv-1"),
        [],
    ),
    (
        "immutable secret data",
        "Secret",
        obj("Secret", immutable=True, data={"a": "YQ=="}),
        lambda o: o.update(data={"a": "Yg=="}),
        [("data", FORBIDDEN, "Forbidden: field is immutable when `immutable` is set")],
    ),
    (
        "immutable configmap flag",
        "ConfigMap",
        obj("ConfigMap", immutable=True, data={"a": "b"}),
        lambda o: o.update(immutable=False),
        [("immutable", FORBIDDEN, "Forbidden: field is immutable when `immutable` is set")],
    ),
    ("mutable configmap data", "ConfigMap", obj("ConfigMap", data={"a": "b"}), lambda o: o.update(data={"a": "c"}), []),
    (
        "secret type",
        "Secret",
        obj("Secret"),
        lambda o: o.update(type="kubernetes.io/tls", data={"tls.crt": "", "tls.key": ""}),
        [("type", INVALID, 'Invalid value: "kubernetes.io/tls": field is immutable')],
    ),
    (
        "statefulset claim templates",
        "StatefulSet",
        obj("StatefulSet", spec={"selector": {"matchLabels": {"app": "web"}}, "template": template()}),
        lambda o: o["spec"].update(serviceName="other"),
        [
            (
                "spec",
                FORBIDDEN,
                "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                "'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                "'minReadySeconds' are forbidden",
            )
        ],
    ),
    (
        "statefulset template",
        "StatefulSet",
        obj("StatefulSet", spec={"selector": {"matchLabels": {"app": "web"}}, "template": template()}),
        lambda o: o["spec"].update(replicas=3, minReadySeconds=5),
        [],
    ),
    (
        "role binding ref",
        "RoleBinding",
        obj("RoleBinding", roleRef={"kind": "Role", "name": "a"}),
        lambda o: o["roleRef"].update(name="b"),
        [
            (
                "roleRef",
                INVALID,
                'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"b"}: '
                "cannot change roleRef",
            )
        ],
    ),
    (
        "finalizer while deleting",
        "ConfigMap",
        changed(
            obj("ConfigMap"),
            lambda o: o["metadata"].update(deletionTimestamp="2025-01-02T03:04:05Z", deletionGracePeriodSeconds=0),
        ),
        lambda o: o["metadata"].update(finalizers=["example.com/hold"]),
        [
            (
                "metadata.finalizers",
                FORBIDDEN,
                "Forbidden: no new finalizers can be added if the object is being deleted, "
                'found new finalizers []string{"example.com/hold"}',
            )
        ],
    ),
    (
        "node pod cidr",
        "Node",
        obj("Node", name="n", spec={"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24"]}),
        lambda o: o["spec"].update(podCIDR="10.0.1.0/24", podCIDRs=["10.0.1.0/24"]),
        [("spec.podCIDRs", FORBIDDEN, 'Forbidden: node updates may not change podCIDR except from "" to valid')],
    ),
    (
        "priority class value",
        "PriorityClass",
        obj("PriorityClass", name="high", value=100),
        lambda o: o.update(value=200),
        [("value", FORBIDDEN, "Forbidden: may not be changed in an update.")],
    ),
]


@pytest.mark.parametrize(("kind", "base", "change", "expected"), [c[1:] for c in UPDATE], ids=[c[0] for c in UPDATE])
def test_update_causes(kind: str, base: dict[str, Any], change: Change, expected: list[tuple[str, str, str]]) -> None:
    old = stored(base)
    new = changed(old, change)
    apply_defaults(GROUPS.get(kind, ""), VERSIONS.get(kind, "v1"), kind, new)  # as the update path does
    assert causes_of(kind, new, old=old) == expected


def test_pod_update_of_other_fields_is_forbidden_with_upstream_message() -> None:
    old = stored(pod())
    new = changed(old, lambda o: o["spec"].update(nodeSelector={"disk": "ssd"}))
    [(path, reason, message)] = causes_of("Pod", new, old=old)
    assert (path, reason) == ("spec", FORBIDDEN)
    assert message.startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
        "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
    )
    assert "nodeSelector" in message


def test_update_with_explicit_zero_values_is_not_a_change() -> None:
    """Go cannot tell `false`, `0`, `""` and absent apart: neither may validation."""
    old = stored(pod())
    new = changed(old, lambda o: o["spec"].update(hostNetwork=False, nodeSelector={}, hostname=""))
    assert causes_of("Pod", new, old=old) == []


def test_status_updates_skip_spec_rules() -> None:
    old = stored(pod())
    new = changed(old, lambda o: (o["spec"].update(nodeName="elsewhere"), o.update(status={"phase": "Running"})))
    assert causes_of("Pod", new, old=old, subresource="status") == []


def test_virtual_kinds_are_not_validated() -> None:
    review = {"spec": {"resourceAttributes": {"verb": "get"}}}
    assert validate_object("authorization.k8s.io", "SelfSubjectAccessReview", review) == []


def test_custom_resources_get_metadata_rules_only() -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "Bad_Name"}, "spec": {"x": 1}}
    assert [(c.field, c.reason) for c in validate_object("example.com", "Widget", widget)] == [
        ("metadata.name", INVALID)
    ]


def test_validation_does_not_mutate_its_arguments() -> None:
    old = stored(deployment())
    new = changed(old, lambda o: o["spec"].update(replicas=-1, selector={}))
    before_new, before_old = copy.deepcopy(new), copy.deepcopy(old)
    validate_object("apps", "Deployment", new, old=old)
    assert (new, old) == (before_new, before_old)
