"""Unknown-field and type checks against the published schemas, in upstream's wording."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from kubelite.machinery import validation
from kubelite.machinery.schema import GroupVersionKind, Schemas, load_schemas

DEPLOYMENT = GroupVersionKind("apps", "v1", "Deployment")
SECRET = GroupVersionKind("", "v1", "Secret")
CRD = GroupVersionKind("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
REVISION = GroupVersionKind("apps", "v1", "ControllerRevision")


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return load_schemas()


def deployment(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx",
                            "ports": [{"containerPort": 80}],
                            "env": [{"name": "A", "value": "1"}],
                            "resources": {
                                "limits": {"cpu": "500m", "memory": "1Gi"},
                                "requests": {"cpu": 0.5},
                            },
                        }
                    ]
                },
            },
        },
    }
    obj["spec"].update(spec)
    return obj


def at(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `obj` with `value` set at a dotted path (`[i]` for list items)."""
    out = copy.deepcopy(obj)
    node: Any = out
    parts = path.replace("[", ".[").split(".")
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    last = parts[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return out


# -- unknown fields --------------------------------------------------------------------------------


def test_valid_deployment_has_no_unknown_fields(schemas: Schemas) -> None:
    assert validation.find_unknown_fields(deployment(), DEPLOYMENT, schemas) == []
    assert validation.type_errors(deployment(), DEPLOYMENT, schemas) == []


@pytest.mark.parametrize(
    "path",
    [
        "bogus",
        "metadata.bogus",
        "spec.replicass",
        "spec.strategy.rollingUpdate.bogus",
        "spec.template.spec.containers[0].bogus",
        "spec.template.spec.containers[0].ports[0].bogus",
        "spec.template.spec.containers[0].env[0].valueFrom.bogus",
        "spec.template.spec.containers[0].resources.bogus",
    ],
)
def test_unknown_field_is_found_at_its_path(schemas: Schemas, path: str) -> None:
    assert validation.find_unknown_fields(at(deployment(), path, 1), DEPLOYMENT, schemas) == [path]


def test_unknown_fields_are_reported_in_document_order(schemas: Schemas) -> None:
    obj = deployment()
    obj["spec"] = {"zzz": 1, **obj["spec"], "aaa": 2}
    obj["spec"]["template"]["spec"]["containers"].append({"name": "b", "image": "b", "x": None})
    assert validation.find_unknown_fields(obj, DEPLOYMENT, schemas) == [
        "spec.zzz",
        "spec.template.spec.containers[1].x",
        "spec.aaa",
    ]


def test_map_values_are_not_unknown_fields(schemas: Schemas) -> None:
    obj = at(deployment(), "metadata.annotations", {"any.thing/at-all": "x"})
    assert validation.find_unknown_fields(obj, DEPLOYMENT, schemas) == []


def test_map_of_structs_reports_key_with_a_dot(schemas: Schemas) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "names": {"plural": "crontabs", "kind": "CronTab"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {"bogus": 1}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "typo": True,
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    assert validation.find_unknown_fields(crd, CRD, schemas) == [
        "spec.versions[0].subresources.status.bogus",  # an empty Go struct knows no fields
        "spec.versions[0].schema.openAPIV3Schema.properties.spec.typo",
    ]


def test_opaque_types_accept_anything(schemas: Schemas) -> None:
    revision = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "r", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
        "revision": 1,
        "data": {"spec": {"anything": {"goes": [1, 2]}}},
    }
    assert validation.find_unknown_fields(revision, REVISION, schemas) == []
    assert validation.type_errors(revision, REVISION, schemas) == []


def test_preserve_unknown_fields_and_embedded_resources() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer"},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "mixed": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
                    },
                    "template": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": True,
                        "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
                    },
                },
            }
        },
    }
    obj = {
        "spec": {
            "size": 1,
            "free": {"deep": {"er": 1}},
            "mixed": {"other": 1, "known": {"a": "x", "b": 2}},
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"x": "y", "z": 1},
                "stray": 1,
            },
            "extra": True,
        }
    }
    assert validation.unknown_fields(obj, schema, load_schemas()) == [
        "spec.mixed.known.b",
        "spec.template.spec.z",
        "spec.template.stray",
        "spec.extra",
    ]


def test_unknown_fields_are_deduplicated_and_capped(schemas: Schemas) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = [
        {"name": f"c{i}", "image": "x", "bogus": 1} for i in range(150)
    ]
    found = validation.find_unknown_fields(obj, DEPLOYMENT, schemas)
    assert len(found) == validation.MAX_STRICT_ERRORS
    assert found[0] == "spec.template.spec.containers[0].bogus"


def test_kind_without_schema_has_nothing_to_check(schemas: Schemas) -> None:
    gvk = GroupVersionKind("metrics.k8s.io", "v1beta1", "PodMetrics")
    assert validation.find_unknown_fields({"x": 1}, gvk, schemas) == []
    assert validation.type_errors({"x": 1}, gvk, schemas) == []


# -- messages --------------------------------------------------------------------------------------


def test_strict_error_is_upstreams_bad_request(schemas: Schemas) -> None:
    error = validation.strict_decoding_error(
        DEPLOYMENT, ["spec.replicass", "spec.template.spec.containers[0].foo"]
    )
    assert error.code == 400
    assert error.reason == "BadRequest"
    assert error.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replicass", unknown field "spec.template.spec.containers[0].foo"'
    )
    status = orjson.loads(error.body())
    assert "details" not in status and status["code"] == 400


def test_warnings_quote_like_go() -> None:
    assert validation.unknown_field_warnings(["spec.replicass", 'a"b', "x\x01"]) == [
        'unknown field "spec.replicass"',
        'unknown field "a\\"b"',
        'unknown field "x\\x01"',
    ]


# -- type errors -----------------------------------------------------------------------------------


UNMARSHAL = "json: cannot unmarshal {} into Go struct field {} of type {}"
CONTAINER = "spec.template.spec.containers"


# fmt: off
TYPE_CASES = [
    ("spec.replicas", "three", UNMARSHAL.format("string", "DeploymentSpec.spec.replicas", "int32")),
    ("spec.replicas", 2.5, UNMARSHAL.format("number 2.5", "DeploymentSpec.spec.replicas", "int32")),
    ("spec.replicas", 3_000_000_000,
     UNMARSHAL.format("number 3000000000", "DeploymentSpec.spec.replicas", "int32")),
    ("spec.paused", "yes", UNMARSHAL.format("string", "DeploymentSpec.spec.paused", "bool")),
    ("spec", "x", UNMARSHAL.format("string", "Deployment.spec", "v1.DeploymentSpec")),
    (CONTAINER, {}, UNMARSHAL.format("object", f"PodSpec.{CONTAINER}", "[]v1.Container")),
    (f"{CONTAINER}[0].env[0].value", 5,
     UNMARSHAL.format("number", f"EnvVar.{CONTAINER}.env.value", "string")),
    (f"{CONTAINER}[0].args", [1], UNMARSHAL.format("number", f"Container.{CONTAINER}.args", "string")),
    ("metadata.labels", {"app": 1}, UNMARSHAL.format("number", "ObjectMeta.metadata.labels", "string")),
    ("metadata.labels", ["a"], UNMARSHAL.format("array", "ObjectMeta.metadata.labels", "map[string]string")),
    ("spec.strategy.rollingUpdate.maxSurge", True,
     UNMARSHAL.format("bool", "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge", "int32")),
    ("metadata.creationTimestamp", 5,
     UNMARSHAL.format("number", "ObjectMeta.metadata.creationTimestamp", "string")),
    (f"{CONTAINER}[0].resources.limits.cpu", "1x", validation.QUANTITY_FORMAT),
    (f"{CONTAINER}[0].resources.limits.cpu", "1kk", validation.QUANTITY_SUFFIX),
    (f"{CONTAINER}[0].resources.limits", "1", UNMARSHAL.format(
        "string", f"ResourceRequirements.{CONTAINER}.resources.limits", "map[string]resource.Quantity")),
]
# fmt: on


@pytest.mark.parametrize(("path", "value", "message"), TYPE_CASES)
def test_type_error_message(schemas: Schemas, path: str, value: Any, message: str) -> None:
    causes = validation.type_errors(at(deployment(), path, value), DEPLOYMENT, schemas)
    assert [c.message for c in causes] == [message]
    field = path if not isinstance(value, dict) or not value else f"{path}.{next(iter(value))}"
    if isinstance(value, list) and path.endswith("args"):
        field = f"{path}[0]"
    assert causes[0].field == field
    assert causes[0].reason == "FieldValueTypeInvalid"


def test_null_is_never_a_type_error(schemas: Schemas) -> None:
    obj = deployment(replicas=None, strategy=None, template={"spec": {"containers": None}})
    assert validation.type_errors(obj, DEPLOYMENT, schemas) == []


def test_error_from_a_self_decoding_type_is_reported_first(schemas: Schemas) -> None:
    obj = at(at(deployment(), "spec.replicas", "x"), "spec.strategy.rollingUpdate.maxUnavailable", 1.5)
    causes = validation.type_errors(obj, DEPLOYMENT, schemas)
    assert [c.field for c in causes] == ["spec.strategy.rollingUpdate.maxUnavailable", "spec.replicas"]
    error = validation.decode_error(DEPLOYMENT, causes)
    assert error.code == 400 and error.reason == "BadRequest"
    field = "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxUnavailable"
    prefix = 'Deployment in version "v1" cannot be handled as a Deployment: '
    assert error.message == prefix + UNMARSHAL.format("number 1.5", field, "int32")


def test_secret_data_must_be_base64(schemas: Schemas) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"ok": "aGVsbG8=", "bad": "abc$", "num": 5},
        "stringData": {"plain": "not base64!"},
    }
    assert [(c.field, c.message) for c in validation.type_errors(secret, SECRET, schemas)] == [
        ("data.bad", "illegal base64 data at input byte 3"),
        ("data.num", "json: cannot unmarshal number into Go struct field Secret.data of type []uint8"),
    ]


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("", None),
        ("aGVsbG8=", None),
        ("aGVsbA==", None),
        ("aGVs\nbG8=", None),
        ("aGVsbG8\r\n=", None),
        ("aGVsbG8", 4),
        ("a", 0),
        ("abc", 0),
        ("ab=c", 2),
        ("ab==x", 4),
        ("a===", 1),
        ("====", 0),
        ("ab!d", 2),
    ],
)
def test_base64_offsets_follow_go(text: str, offset: int | None) -> None:
    assert validation.base64_error(text) == offset


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1", None),
        ("1.5", None),
        ("100m", None),
        ("1Gi", None),
        ("1e3", None),
        ("+1.5E-3", None),
        ("1E", None),
        (" 2 ", None),
        (".5", None),
        (1.5, None),
        (2, None),
        (None, None),
        ("", validation.QUANTITY_FORMAT),
        ("1x", validation.QUANTITY_FORMAT),
        ("abc", validation.QUANTITY_FORMAT),
        ("1Gb", validation.QUANTITY_FORMAT),
        ("1 Gi", validation.QUANTITY_FORMAT),
        (True, validation.QUANTITY_FORMAT),
        ({}, validation.QUANTITY_FORMAT),
        ("1kk", validation.QUANTITY_SUFFIX),
        ("1e", validation.QUANTITY_SUFFIX),
        ("5Ki5", validation.QUANTITY_SUFFIX),
    ],
)
def test_quantity_parsing_follows_go(value: Any, problem: str | None) -> None:
    assert validation.quantity_error(value) == problem


# -- pruning ---------------------------------------------------------------------------------------


POD = GroupVersionKind("", "v1", "Pod")
SERVICE = GroupVersionKind("", "v1", "Service")
CONFIGMAP = GroupVersionKind("", "v1", "ConfigMap")


def messy_deployment() -> dict[str, Any]:
    """A Deployment with unknown fields at every depth: root, metadata, spec, list items, map values."""
    obj = deployment(replicass=3)
    obj["bogus"] = {"deep": [1, 2]}
    obj["metadata"]["bogus"] = 1
    obj["metadata"]["annotations"] = {"any.thing/at-all": "x"}
    obj["metadata"]["managedFields"] = [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}, "bogus": 1}]
    obj["spec"]["strategy"]["rollingUpdate"]["bogus"] = True
    template = obj["spec"]["template"]
    template["metadata"]["bogus"] = "x"
    pod = template["spec"]
    pod["bogus"] = None
    pod["nodeSelector"] = {"disk": "ssd"}
    container = pod["containers"][0]
    container["bogus"] = {"a": 1}
    container["ports"].append({"containerPort": 443, "bogus": 1})
    container["env"][0]["valueFrom"] = {"fieldRef": {"fieldPath": "metadata.name", "bogus": 1}}
    container["resources"]["bogus"] = 1
    pod["containers"].append({"name": "side", "image": "busybox", "bogus": 2})
    pod["volumes"] = [{"name": "v", "configMap": {"name": "cm", "bogus": 1}}]
    return obj


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"a": "b"}, "bogus": 1},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["sh", "-c", "sleep 1"],
                    "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 5, "bogus": 1},
                    "securityContext": {"capabilities": {"add": ["NET_ADMIN"], "bogus": []}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "bogus": "x"}],
                }
            ],
            "initContainers": [{"name": "init", "image": "busybox", "bogus": 1}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"], "bogus": 1}]}
                        ]
                    }
                }
            },
            "tolerations": [{"key": "k", "operator": "Exists", "bogus": 1}],
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi", "bogus": 1}}],
            "bogus": {"x": 1},
        },
        "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False", "bogus": 1}]},
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "annotations": {"bogus": "kept: a map value"}},
        "spec": {
            "selector": {"app": "web", "bogus": "kept too"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "bogus": 1},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
            ],
            "type": "ClusterIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10, "bogus": 1}},
            "bogus": 1,
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "bogus": 1}]}},
    }


def configmap() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "bogus": 1},
        "data": {"bogus": "a key, not a field", "config.yaml": "a: 1\n"},
        "binaryData": {"blob": "aGVsbG8="},
        "immutable": False,
        "bogus": 1,
    }


def test_prune_removes_nested_unknown_fields(schemas: Schemas) -> None:
    pruned = validation.prune_unknown_fields(messy_deployment(), DEPLOYMENT, schemas)
    assert "bogus" not in pruned and "replicass" not in pruned["spec"]
    assert pruned["metadata"] == {
        "name": "web",
        "labels": {"app": "web"},
        "annotations": {"any.thing/at-all": "x"},
        "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}}],
    }
    assert pruned["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1},
    }
    template = pruned["spec"]["template"]
    assert template["metadata"] == {"labels": {"app": "web"}}
    pod_spec = template["spec"]
    assert "bogus" not in pod_spec
    assert pod_spec["nodeSelector"] == {"disk": "ssd"}
    first, second = pod_spec["containers"]
    assert first == {
        "name": "nginx",
        "image": "nginx",
        "ports": [{"containerPort": 80}, {"containerPort": 443}],
        "env": [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": 0.5}},
    }
    assert second == {"name": "side", "image": "busybox"}
    assert pod_spec["volumes"] == [{"name": "v", "configMap": {"name": "cm"}}]


def test_prune_keeps_a_valid_object_unchanged(schemas: Schemas) -> None:
    assert validation.prune_unknown_fields(deployment(), DEPLOYMENT, schemas) == deployment()


def test_prune_does_not_mutate_its_input(schemas: Schemas) -> None:
    obj = messy_deployment()
    before = copy.deepcopy(obj)
    pruned = validation.prune_unknown_fields(obj, DEPLOYMENT, schemas)
    assert obj == before
    assert pruned != obj
    # nothing shared: changing the copy leaves the input alone
    pruned["spec"]["template"]["spec"]["containers"][0]["ports"].clear()
    pruned["metadata"]["labels"]["x"] = "y"
    assert obj == before


@pytest.mark.parametrize(
    ("make", "gvk"),
    [(messy_deployment, DEPLOYMENT), (pod, POD), (service, SERVICE), (configmap, CONFIGMAP)],
)
def test_pruned_objects_have_no_unknown_fields(schemas: Schemas, make: Any, gvk: GroupVersionKind) -> None:
    obj = make()
    assert validation.find_unknown_fields(obj, gvk, schemas)  # the fixtures do carry unknown fields
    pruned = validation.prune_unknown_fields(obj, gvk, schemas)
    assert validation.find_unknown_fields(pruned, gvk, schemas) == []
    assert validation.type_errors(pruned, gvk, schemas) == []
    assert pruned["apiVersion"] == obj["apiVersion"] and pruned["kind"] == obj["kind"]
    assert pruned["metadata"]["name"] == obj["metadata"]["name"]


def test_prune_removes_exactly_the_reported_paths(schemas: Schemas) -> None:
    obj = pod()
    reported = validation.find_unknown_fields(obj, POD, schemas)
    pruned = validation.prune_unknown_fields(obj, POD, schemas)
    for path in reported:
        assert _lookup(obj, path) is not _MISSING
        assert _lookup(pruned, path) is _MISSING
    # everything else survives: putting the reported fields back restores the input
    restored = pruned
    for path in reported:
        restored = at(restored, path, _lookup(obj, path))
    assert restored == obj


def test_prune_keeps_map_values_that_look_like_unknown_fields(schemas: Schemas) -> None:
    pruned = validation.prune_unknown_fields(service(), SERVICE, schemas)
    assert pruned["metadata"]["annotations"] == {"bogus": "kept: a map value"}
    assert pruned["spec"]["selector"] == {"app": "web", "bogus": "kept too"}
    assert pruned["spec"]["ports"][0] == {"name": "http", "port": 80, "targetPort": "http"}
    assert pruned["status"] == {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    cm = validation.prune_unknown_fields(configmap(), CONFIGMAP, schemas)
    assert cm == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
        "data": {"bogus": "a key, not a field", "config.yaml": "a: 1\n"},
        "binaryData": {"blob": "aGVsbG8="},
        "immutable": False,
    }


def test_prune_leaves_opaque_types_intact(schemas: Schemas) -> None:
    revision = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "r", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
        "revision": 1,
        "data": {"spec": {"anything": {"goes": [1, 2]}}},
        "bogus": 1,
    }
    pruned = validation.prune_unknown_fields(revision, REVISION, schemas)
    expected = copy.deepcopy(revision)
    del expected["bogus"]
    assert pruned == expected


def test_prune_with_schema_keeps_preserved_and_embedded_subtrees() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer"},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "mixed": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
                    },
                    "items": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"n": {"type": "string"}}},
                    },
                    "byName": {
                        "type": "object",
                        "additionalProperties": {"type": "object", "properties": {"v": {"type": "integer"}}},
                    },
                    "template": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": True,
                        "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
                    },
                },
            }
        },
    }
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "spec": {
            "size": 1,
            "free": {"deep": {"er": 1}},
            "mixed": {"other": 1, "known": {"a": "x", "b": 2}},
            "items": [{"n": "a", "drop": 1}, {"n": "b"}],
            "byName": {"one": {"v": 1, "drop": 1}, "two": {"v": 2}},
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"x": "y", "z": 1},
                "stray": 1,
            },
            "extra": True,
        },
    }
    before = copy.deepcopy(obj)
    pruned = validation.prune_with_schema(obj, schema, load_schemas())
    assert obj == before
    assert pruned == {
        "apiVersion": "example.com/v1",  # the root's apiVersion/kind/metadata stay though unlisted
        "kind": "Thing",
        "metadata": {"name": "t"},
        "spec": {
            "size": 1,
            "free": {"deep": {"er": 1}},
            "mixed": {"other": 1, "known": {"a": "x"}},
            "items": [{"n": "a"}, {"n": "b"}],
            "byName": {"one": {"v": 1}, "two": {"v": 2}},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": "y"}},
        },
    }
    # this root schema does not list them, so the detector still names the root's own keys; nothing else
    remaining = validation.unknown_fields(pruned, schema, load_schemas())
    assert [path for path in remaining if path not in validation.EMBEDDED_KEYS] == []


def test_prune_removes_more_than_the_reported_cap(schemas: Schemas) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = [
        {"name": f"c{i}", "image": "x", "bogus": 1} for i in range(150)
    ]
    pruned = validation.prune_unknown_fields(obj, DEPLOYMENT, schemas)
    assert all("bogus" not in c for c in pruned["spec"]["template"]["spec"]["containers"])
    assert validation.find_unknown_fields(pruned, DEPLOYMENT, schemas) == []


def test_prune_copies_kinds_without_schema(schemas: Schemas) -> None:
    gvk = GroupVersionKind("metrics.k8s.io", "v1beta1", "PodMetrics")
    obj = {"x": {"y": 1}}
    pruned = validation.prune_unknown_fields(obj, gvk, schemas)
    assert pruned == obj and pruned is not obj and pruned["x"] is not obj["x"]


_MISSING = object()


def _lookup(obj: Any, path: str) -> Any:
    """The value at a dotted path (`[i]` for list items), or `_MISSING`."""
    node = obj
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                return _MISSING
            node = node[index]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node
