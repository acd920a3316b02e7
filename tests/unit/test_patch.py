"""Table-driven tests for JSON patch, JSON merge patch and strategic merge patch.

Expected results follow the 1.32 apiserver (evanphx/json-patch v4 and apimachinery strategicpatch,
including cases ported from strategicpatch's own test table), with real kubectl patches for SMP.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubelite.machinery.patch import (
    MAX_JSON_PATCH_OPERATIONS,
    InvalidPatchError,
    MalformedPatchError,
    PatchError,
    PatchFailedError,
    PatchTestFailedError,
    PatchTooLargeError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
    patch_schema_for,
)
from kubelite.machinery.schema import load_schemas

SCHEMAS = load_schemas()


def _smp(document: dict, patch: Any, api_version: str = "apps/v1", kind: str = "Deployment") -> dict:
    return apply_strategic_merge_patch(document, patch, patch_schema_for(SCHEMAS, api_version, kind), SCHEMAS)


def _containers(*names: str, **images: str) -> list[dict]:
    return [{"name": n, "image": images.get(n, f"{n}:1")} for n in names]


def _deployment(containers: list[dict] | None = None, **template_spec: Any) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers or _containers("nginx", "sidecar"), **template_spec},
            },
        },
    }


def _pod_spec(document: dict) -> dict:
    return document["spec"]["template"]["spec"]


def _names(items: list[dict], key: str = "name") -> list:
    return [item[key] for item in items]


# ------------------------------------------------------------------------------------------ JSON patch

DOC = {
    "metadata": {
        "name": "x",
        "resourceVersion": "5",
        "labels": {"a": "1"},
        "annotations": {"example.com/k": "v", "t~x": "y"},
    },
    "spec": {"list": [1, 2, 3], "flag": True},
}


def _with(path: tuple, value: Any) -> dict:
    """DOC with the value at `path` set."""
    out = copy.deepcopy(DOC)
    node = out
    for token in path[:-1]:
        node = node[token]
    node[path[-1]] = value
    return out


JSON_PATCH_CASES = [
    (
        "add object key",
        [{"op": "add", "path": "/metadata/labels/b", "value": "2"}],
        _with(("metadata", "labels"), {"a": "1", "b": "2"}),
    ),
    (
        "add over existing key replaces",
        [{"op": "add", "path": "/metadata/labels/a", "value": "9"}],
        _with(("metadata", "labels", "a"), "9"),
    ),
    (
        "add inserts at index",
        [{"op": "add", "path": "/spec/list/1", "value": 9}],
        _with(("spec", "list"), [1, 9, 2, 3]),
    ),
    ("add dash appends", [{"op": "add", "path": "/spec/list/-", "value": 9}], _with(("spec", "list"), [1, 2, 3, 9])),
    (
        "add at length appends",
        [{"op": "add", "path": "/spec/list/3", "value": 9}],
        _with(("spec", "list"), [1, 2, 3, 9]),
    ),
    (
        "add negative index counts from the end",
        [{"op": "add", "path": "/spec/list/-2", "value": 9}],
        _with(("spec", "list"), [1, 2, 9, 3]),
    ),
    (
        "add without value adds null",
        [{"op": "add", "path": "/metadata/labels/n"}],
        _with(("metadata", "labels", "n"), None),
    ),
    ("add object value", [{"op": "add", "path": "/status", "value": {"ready": 1}}], _with(("status",), {"ready": 1})),
    ("add to empty key", [{"op": "add", "path": "/", "value": 1}], _with(("",), 1)),
    (
        "path without leading slash is read from its first slash",
        [{"op": "add", "path": "x/y", "value": 1}],
        _with(("y",), 1),
    ),
    ("remove key", [{"op": "remove", "path": "/metadata/labels/a"}], _with(("metadata", "labels"), {})),
    ("remove index", [{"op": "remove", "path": "/spec/list/0"}], _with(("spec", "list"), [2, 3])),
    ("remove negative index", [{"op": "remove", "path": "/spec/list/-1"}], _with(("spec", "list"), [1, 2])),
    (
        "remove escaped slash",
        [{"op": "remove", "path": "/metadata/annotations/example.com~1k"}],
        _with(("metadata", "annotations"), {"t~x": "y"}),
    ),
    ("replace value", [{"op": "replace", "path": "/spec/flag", "value": False}], _with(("spec", "flag"), False)),
    (
        "replace array element",
        [{"op": "replace", "path": "/spec/list/2", "value": 7}],
        _with(("spec", "list"), [1, 2, 7]),
    ),
    (
        "replace missing object key adds it (v4)",
        [{"op": "replace", "path": "/spec/new", "value": 1}],
        _with(("spec", "new"), 1),
    ),
    ("replace root", [{"op": "replace", "path": "", "value": {"a": 1}}], {"a": 1}),
    ("replace root with a scalar is ignored (v4)", [{"op": "replace", "path": "", "value": 3}], DOC),
    (
        "move key",
        [{"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/b"}],
        _with(("metadata", "labels"), {"b": "1"}),
    ),
    (
        "move array element to the end",
        [{"op": "move", "from": "/spec/list/0", "path": "/spec/list/-"}],
        _with(("spec", "list"), [2, 3, 1]),
    ),
    (
        "copy value",
        [{"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"}],
        _with(("metadata", "labels"), {"a": "1", "name": "x"}),
    ),
    (
        "copy from a missing key copies null (v4)",
        [{"op": "copy", "from": "/metadata/nope", "path": "/metadata/labels/n"}],
        _with(("metadata", "labels", "n"), None),
    ),
    (
        "kopf precondition then change",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
            {"op": "replace", "path": "/spec/flag", "value": False},
        ],
        _with(("spec", "flag"), False),
    ),
    ("test escaped tilde", [{"op": "test", "path": "/metadata/annotations/t~0x", "value": "y"}], DOC),
    ("test object ignores key order", [{"op": "test", "path": "/metadata/labels", "value": {"a": "1"}}], DOC),
    ("test missing key against null", [{"op": "test", "path": "/metadata/nope", "value": None}], DOC),
    ("test whole document", [{"op": "test", "path": "", "value": DOC}], DOC),
    ("null body is no operation", None, DOC),
    ("empty list is no operation", [], DOC),
]


@pytest.mark.parametrize(("name", "operations", "expected"), JSON_PATCH_CASES, ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch_applies(name: str, operations: list | None, expected: dict) -> None:
    assert apply_json_patch(DOC, operations) == expected


JSON_PATCH_ERRORS = [
    (
        "failed test",
        [{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}],
        PatchTestFailedError,
        "testing value /metadata/resourceVersion failed: test failed",
    ),
    (
        "test compares JSON types",
        [{"op": "test", "path": "/metadata/resourceVersion", "value": 5}],
        PatchTestFailedError,
        "testing value /metadata/resourceVersion failed: test failed",
    ),
    (
        "test true is not 1",
        [{"op": "test", "path": "/spec/flag", "value": 1}],
        PatchTestFailedError,
        "testing value /spec/flag failed: test failed",
    ),
    (
        "test without value",
        [{"op": "test", "path": "/spec/flag"}],
        PatchTestFailedError,
        "testing value /spec/flag failed: test failed",
    ),
    (
        "test missing key against a value",
        [{"op": "test", "path": "/metadata/nope", "value": "x"}],
        PatchTestFailedError,
        "testing value /metadata/nope failed: test failed",
    ),
    (
        "test missing parent",
        [{"op": "test", "path": "/nope/x", "value": 1}],
        InvalidPatchError,
        "test operation does not apply: is missing path: /nope/x: missing value",
    ),
    (
        "remove missing key",
        [{"op": "remove", "path": "/metadata/labels/zz"}],
        InvalidPatchError,
        "error in remove for path: '/metadata/labels/zz': Unable to remove nonexistent key: zz: missing value",
    ),
    (
        "add under missing parent",
        [{"op": "add", "path": "/spec/nope/x", "value": 1}],
        InvalidPatchError,
        'add operation does not apply: doc is missing path: "/spec/nope/x": missing value',
    ),
    (
        "add into a scalar",
        [{"op": "add", "path": "/spec/flag/x", "value": 1}],
        InvalidPatchError,
        'add operation does not apply: doc is missing path: "/spec/flag/x": missing value',
    ),
    (
        "add past the end",
        [{"op": "add", "path": "/spec/list/5", "value": 1}],
        InvalidPatchError,
        "error in add for path: '/spec/list/5': Unable to access invalid index: 5: invalid index referenced",
    ),
    (
        "add with a bad index",
        [{"op": "add", "path": "/spec/list/x", "value": 1}],
        InvalidPatchError,
        "error in add for path: '/spec/list/x': value was not a proper array index: 'x': "
        'strconv.Atoi: parsing "x": invalid syntax',
    ),
    (
        "add at root",
        [{"op": "add", "path": "", "value": {}}],
        InvalidPatchError,
        'add operation does not apply: doc is missing path: "": missing value',
    ),
    (
        "remove with dash",
        [{"op": "remove", "path": "/spec/list/-"}],
        InvalidPatchError,
        "error in remove for path: '/spec/list/-': strconv.Atoi: parsing \"-\": invalid syntax",
    ),
    (
        "remove past the end",
        [{"op": "remove", "path": "/spec/list/3"}],
        InvalidPatchError,
        "error in remove for path: '/spec/list/3': Unable to access invalid index: 3: invalid index referenced",
    ),
    (
        "replace missing index",
        [{"op": "replace", "path": "/spec/list/7", "value": 1}],
        InvalidPatchError,
        "replace operation does not apply: doc is missing key: /spec/list/7: missing value",
    ),
    (
        "replace under missing parent",
        [{"op": "replace", "path": "/spec/nope/x", "value": 1}],
        InvalidPatchError,
        "replace operation does not apply: doc is missing path: /spec/nope/x: missing value",
    ),
    (
        "move missing key",
        [{"op": "move", "from": "/metadata/zz", "path": "/metadata/yy"}],
        InvalidPatchError,
        "error in move for path: 'zz': Unable to remove nonexistent key: zz: missing value",
    ),
    (
        "move to missing parent",
        [{"op": "move", "from": "/metadata/name", "path": "/nope/x"}],
        InvalidPatchError,
        "move operation does not apply: doc is missing destination path: /nope/x: missing value",
    ),
    (
        "copy from missing parent",
        [{"op": "copy", "from": "/nope/x", "path": "/a"}],
        InvalidPatchError,
        "copy operation does not apply: doc is missing from path: /nope/x: missing value",
    ),
    ("unknown op", [{"op": "frob", "path": "/a"}], InvalidPatchError, "Unexpected kind: frob"),
    ("missing op", [{"path": "/a"}], InvalidPatchError, "Unexpected kind: unknown"),
    ("null operation", [None], InvalidPatchError, "Unexpected kind: unknown"),
    (
        "add without path",
        [{"op": "add", "value": 1}],
        InvalidPatchError,
        "add operation failed to decode path: missing value",
    ),
    (
        "replace without path",
        [{"op": "replace", "value": 1}],
        InvalidPatchError,
        "replace operation failed to decode path: operation missing path field: missing value",
    ),
    (
        "move without from",
        [{"op": "move", "path": "/a"}],
        InvalidPatchError,
        "move operation failed to decode from: operation, missing from field: missing value",
    ),
    (
        "test with a numeric path",
        [{"op": "test", "path": 3, "value": 1}],
        InvalidPatchError,
        "test operation failed to decode path: json: cannot unmarshal number into Go value of type string",
    ),
    (
        "later failure aborts earlier changes",
        [{"op": "replace", "path": "/spec/flag", "value": False}, {"op": "remove", "path": "/zz"}],
        InvalidPatchError,
        "error in remove for path: '/zz': Unable to remove nonexistent key: zz: missing value",
    ),
    (
        "root replaced by a list",
        [{"op": "replace", "path": "", "value": []}],
        InvalidPatchError,
        "json: cannot unmarshal array into Go value of type map[string]interface {}",
    ),
    (
        "body is an object",
        {"op": "add"},
        MalformedPatchError,
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
    ),
    (
        "operation is a string",
        ["add"],
        MalformedPatchError,
        "json: cannot unmarshal string into Go value of type jsonpatch.Operation",
    ),
]


@pytest.mark.parametrize(
    ("name", "operations", "error", "message"), JSON_PATCH_ERRORS, ids=[c[0] for c in JSON_PATCH_ERRORS]
)
def test_json_patch_fails_with_upstream_message(name: str, operations: Any, error: type, message: str) -> None:
    before = copy.deepcopy(DOC)
    with pytest.raises(error) as raised:
        apply_json_patch(DOC, operations)
    assert type(raised.value) is error
    assert str(raised.value) == message
    assert before == DOC


def test_json_patch_over_10000_operations_is_413() -> None:
    operations = [{"op": "test", "path": "/spec/flag", "value": True}] * (MAX_JSON_PATCH_OPERATIONS + 1)
    with pytest.raises(PatchTooLargeError, match="The allowed maximum operations in a JSON patch is 10000, got 10001"):
        apply_json_patch(DOC, operations)
    assert apply_json_patch(DOC, operations[:-1]) == DOC


def test_json_patch_never_shares_structure_with_its_inputs() -> None:
    value = {"deep": ["x"]}
    operations = [{"op": "add", "path": "/spec/v", "value": value}]
    document, saved_ops = copy.deepcopy(DOC), copy.deepcopy(operations)
    result = apply_json_patch(document, operations)
    result["spec"]["v"]["deep"].append("y")
    result["metadata"]["labels"]["z"] = "1"
    assert document == DOC
    assert operations == saved_ops


# ------------------------------------------------------------------------------------ JSON merge patch

MERGE_PATCH_CASES = [
    ("null deletes", {"a": 1, "b": 2}, {"a": None}, {"b": 2}),
    ("null for a missing key is a no-op", {"a": 1}, {"z": None}, {"a": 1}),
    (
        "objects merge recursively",
        {"m": {"a": 1, "b": {"c": 1}}},
        {"m": {"b": {"d": 2}}},
        {"m": {"a": 1, "b": {"c": 1, "d": 2}}},
    ),
    ("lists are replaced whole", {"l": [1, 2, 3]}, {"l": [4]}, {"l": [4]}),
    ("object replaces a scalar", {"a": 1}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ("scalar replaces an object", {"a": {"b": 1}}, {"a": 2}, {"a": 2}),
    ("new subtree loses its nulls", {}, {"a": {"b": None, "c": [1, None, {"d": None}]}}, {"a": {"c": [1, {}]}}),
    ("list over an object keeps nulls (v4)", {"a": {"b": 1}}, {"a": [1, None]}, {"a": [1, None]}),
    (
        "label and annotate",
        {"metadata": {"labels": {"a": "1"}}},
        {"metadata": {"labels": {"b": "2"}, "annotations": {"c": "3"}}},
        {"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"c": "3"}}},
    ),
    ("empty patch", {"a": 1}, {}, {"a": 1}),
]


@pytest.mark.parametrize(
    ("name", "document", "patch", "expected"), MERGE_PATCH_CASES, ids=[c[0] for c in MERGE_PATCH_CASES]
)
def test_merge_patch_applies(name: str, document: dict, patch: dict, expected: dict) -> None:
    before = copy.deepcopy((document, patch))
    assert apply_merge_patch(document, patch) == expected
    assert before == (document, patch)


@pytest.mark.parametrize(
    ("patch", "error", "message"),
    [
        (None, MalformedPatchError, "Invalid JSON Patch"),
        (5, MalformedPatchError, "Invalid JSON Patch"),
        ("x", MalformedPatchError, "Invalid JSON Patch"),
        ([1], InvalidPatchError, "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    ],
)
def test_merge_patch_rejects_non_objects(patch: Any, error: type, message: str) -> None:
    with pytest.raises(error) as raised:
        apply_merge_patch({"a": 1}, patch)
    assert str(raised.value) == message


# ------------------------------------------------------------------------------ strategic merge patch

APPLY_REMOVING_SIDECAR = {
    "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
    "spec": {
        "replicas": 3,
        "template": {
            "spec": {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"image": "nginx:1.27", "name": "nginx"}, {"$patch": "delete", "name": "sidecar"}],
            }
        },
    },
}


def test_kubectl_apply_removes_a_container_and_updates_the_other() -> None:
    original = _deployment()
    result = _smp(original, APPLY_REMOVING_SIDECAR)
    assert _pod_spec(result)["containers"] == [{"name": "nginx", "image": "nginx:1.27"}]
    assert result["spec"]["replicas"] == 3
    assert result["metadata"]["annotations"] == {
        "team": "a",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    assert result["spec"]["strategy"] == original["spec"]["strategy"]
    assert original == _deployment()


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ("nginx", [{"name": "nginx", "image": "nginx:1.27"}, {"name": "sidecar", "image": "sidecar:1"}]),
        ("sidecar", [{"name": "nginx", "image": "nginx:1"}, {"name": "sidecar", "image": "nginx:1.27"}]),
    ],
)
def test_kubectl_set_image_changes_one_container_in_place(container: str, expected: list) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"image": "nginx:1.27", "name": container}]}}}}
    assert _pod_spec(_smp(_deployment(), patch))["containers"] == expected


def test_kubectl_rollout_restart_adds_a_template_annotation() -> None:
    stamp = "2025-01-01T00:00:00Z"
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
    once = _smp(_deployment(), patch)
    assert once["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": stamp},
    }
    patch["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "later"
    again = _smp(once, patch)
    assert again["spec"]["template"]["metadata"]["annotations"] == {"kubectl.kubernetes.io/restartedAt": "later"}


def test_cordon_then_uncordon_a_node() -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "10.0.0.0/24"}}
    cordoned = _smp(node, {"spec": {"unschedulable": True}}, "v1", "Node")
    assert cordoned["spec"] == {"podCIDR": "10.0.0.0/24", "unschedulable": True}
    uncordoned = _smp(cordoned, {"spec": {"unschedulable": None}}, "v1", "Node")
    assert uncordoned == node


def _service(*ports: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": list(ports)}}


@pytest.mark.parametrize(
    ("patch_ports", "expected"),
    [
        # a new merge key: the port is added (before the server's, as upstream orders it)
        ([{"name": "new", "port": 8080}], [{"name": "new", "port": 8080}, {"name": "port", "port": 80}]),
        # the same port: merged field by field
        ([{"port": 80, "targetPort": 8080}], [{"name": "port", "port": 80, "targetPort": 8080}]),
        ([{"port": 80, "$patch": "delete"}], []),
    ],
)
def test_service_ports_merge_by_port(patch_ports: list, expected: list) -> None:
    result = _smp(_service({"name": "port", "port": 80}), {"spec": {"ports": patch_ports}}, "v1", "Service")
    assert result["spec"]["ports"] == expected


FINALIZER_CASES = [
    ("union puts new values first", ["a", "b"], {"finalizers": ["c"]}, ["c", "a", "b"]),
    ("union keeps one of each (upstream table)", ["1", "2"], {"finalizers": ["2", "3"]}, ["1", "2", "3"]),
    ("patch order wins for patched values", ["1", "2", "3"], {"finalizers": ["3", "1", "2"]}, ["3", "1", "2"]),
    ("server-only values keep their live place", ["1", "2", "3"], {"finalizers": ["3", "1"]}, ["2", "3", "1"]),
    ("delete from primitive list", ["a", "b", "c"], {"$deleteFromPrimitiveList/finalizers": ["b"]}, ["a", "c"]),
    ("delete a value that is not there", ["a"], {"$deleteFromPrimitiveList/finalizers": ["z"]}, ["a"]),
    ("delete every duplicate", ["a", "b", "b"], {"$deleteFromPrimitiveList/finalizers": ["b"]}, ["a"]),
    (
        "kubectl apply removing one (upstream table)",
        ["1", "2", "3", "4"],
        {"$setElementOrder/finalizers": ["1", "2"], "$deleteFromPrimitiveList/finalizers": ["3"]},
        ["1", "2", "4"],
    ),
    (
        "kubectl apply adding and removing (upstream table)",
        ["1", "2", "3", "4"],
        {
            "$setElementOrder/finalizers": ["1", "2", "4"],
            "$deleteFromPrimitiveList/finalizers": ["3"],
            "finalizers": ["4"],
        },
        ["1", "2", "4"],
    ),
    (
        "order list naming absent values (upstream table)",
        ["1", "3"],
        {"$setElementOrder/finalizers": ["3", "2", "1"]},
        ["3", "1"],
    ),
]


@pytest.mark.parametrize(("name", "live", "patch", "expected"), FINALIZER_CASES, ids=[c[0] for c in FINALIZER_CASES])
def test_finalizers_are_a_merged_primitive_list(name: str, live: list, patch: dict, expected: list) -> None:
    result = _smp({"metadata": {"name": "web", "finalizers": live}}, {"metadata": patch})
    assert result["metadata"]["finalizers"] == expected


def test_delete_from_a_missing_primitive_list_adds_nothing() -> None:
    result = _smp({"metadata": {"name": "web"}}, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert result == {"metadata": {"name": "web"}}


def test_retain_keys_switches_rolling_update_to_recreate() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
    result = _smp(_deployment(), patch)
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_in_list_elements_switch_a_volume_source() -> None:
    live = _deployment(volumes=[{"name": "data", "emptyDir": {}}, {"name": "other", "emptyDir": {}}])
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "data"}]
                }
            }
        }
    }
    volumes = _pod_spec(_smp(live, patch))["volumes"]
    assert volumes == [{"name": "data", "configMap": {"name": "cm"}}, {"name": "other", "emptyDir": {}}]


def test_env_var_is_removed_by_a_delete_directive() -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    live = _deployment([{"name": "nginx", "image": "nginx", "env": env}])
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                            "env": [{"$patch": "delete", "name": "B"}],
                        }
                    ]
                }
            }
        }
    }
    assert _pod_spec(_smp(live, patch))["containers"][0]["env"] == [env[0], env[2]]


CONTAINER_ORDER_CASES = [
    (
        "set element order reorders",
        ["a", "b", "c"],
        {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]},
        ["c", "a", "b"],
    ),
    (
        "server-only item keeps its place before a later neighbour",
        ["a", "x", "b"],
        {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]},
        ["x", "b", "a"],
    ),
    (
        "new item without order goes first",
        ["nginx", "sidecar"],
        {"containers": [{"name": "new", "image": "i"}]},
        ["new", "nginx", "sidecar"],
    ),
    (
        "apply adds items in place (upstream table)",
        ["1", "2"],
        {
            "$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "4", "image": "i"}, {"name": "3", "image": "i"}],
        },
        ["4", "1", "2", "3"],
    ),
    (
        "patch order, server-only items by live order (upstream table)",
        ["1", "2", "3"],
        {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]},
        ["2", "3", "1"],
    ),
    (
        "three-way apply keeps a server-only item after new ones (upstream table)",
        ["hello2"],
        {
            "$setElementOrder/containers": [{"name": "hello"}, {"name": "doesntexist"}],
            "containers": [{"name": "hello", "image": "i"}, {"$patch": "delete", "name": "doesntexist"}],
        },
        ["hello", "hello2"],
    ),
    (
        "replace directive in a list",
        ["a", "b"],
        {"containers": [{"$patch": "replace"}, {"name": "only", "image": "i"}]},
        ["only"],
    ),
    ("replace directive alone empties the list", ["a", "b"], {"containers": [{"$patch": "replace"}]}, []),
]


@pytest.mark.parametrize(
    ("name", "live", "patch", "expected"), CONTAINER_ORDER_CASES, ids=[c[0] for c in CONTAINER_ORDER_CASES]
)
def test_merged_container_list_order(name: str, live: list, patch: dict, expected: list) -> None:
    result = _smp(_deployment(_containers(*live)), {"spec": {"template": {"spec": patch}}})
    assert _names(_pod_spec(result)["containers"]) == expected


def test_delete_directive_removes_every_duplicate_entry() -> None:
    live = [{"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"}, {"name": "3"}]
    patch = {"containers": [{"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}]}
    result = _smp(_deployment(live), {"spec": {"template": {"spec": patch}}})
    assert _pod_spec(result)["containers"] == [{"name": "2", "image": "a"}]


def test_new_container_keeps_no_directives_or_nulls() -> None:
    patch = {"containers": [{"name": "c", "image": "i", "resources": None, "env": [{"$patch": "delete", "name": "x"}]}]}
    result = _smp({"spec": {"template": {"spec": {}}}}, {"spec": {"template": {"spec": patch}}})
    assert _pod_spec(result)["containers"] == [{"name": "c", "image": "i", "env": []}]


MAP_CASES = [
    (
        "null deletes a key",
        {"spec": {"paused": True, "replicas": 1}},
        {"spec": {"paused": None}},
        {"spec": {"replicas": 1}},
    ),
    (
        "null for a missing key is ignored",
        {"spec": {"replicas": 1}},
        {"spec": {"paused": None}},
        {"spec": {"replicas": 1}},
    ),
    (
        "new map loses its nulls",
        {"metadata": {"name": "x"}},
        {"metadata": {"labels": {"a": None, "b": "1"}}},
        {"metadata": {"name": "x", "labels": {"b": "1"}}},
    ),
    (
        "delete directive empties a map (upstream)",
        {"spec": {"strategy": {"type": "Recreate"}}},
        {"spec": {"strategy": {"$patch": "delete"}}},
        {"spec": {"strategy": {}}},
    ),
    (
        "delete directive on a missing map adds nothing",
        {"spec": {}},
        {"spec": {"strategy": {"$patch": "delete"}}},
        {"spec": {}},
    ),
    (
        "replace directive replaces a map",
        {"spec": {"selector": {"matchLabels": {"a": "1"}}}},
        {"spec": {"selector": {"$patch": "replace", "matchExpressions": []}}},
        {"spec": {"selector": {"matchExpressions": []}}},
    ),
    ("type change replaces", {"spec": {"replicas": 1}}, {"spec": {"replicas": "2"}}, {"spec": {"replicas": "2"}}),
    (
        "lists without strategy are replaced",
        {"spec": {"template": {"spec": {"tolerations": [{"key": "a"}]}}}},
        {"spec": {"template": {"spec": {"tolerations": [{"key": "b"}]}}}},
        {"spec": {"template": {"spec": {"tolerations": [{"key": "b"}]}}}},
    ),
    (
        "unknown fields merge plainly",
        {"spec": {"x-extra": {"a": 1, "l": [1]}}},
        {"spec": {"x-extra": {"b": 2, "l": [2]}}},
        {"spec": {"x-extra": {"a": 1, "b": 2, "l": [2]}}},
    ),
]


@pytest.mark.parametrize(("name", "live", "patch", "expected"), MAP_CASES, ids=[c[0] for c in MAP_CASES])
def test_strategic_merge_of_maps(name: str, live: dict, patch: dict, expected: dict) -> None:
    assert _smp(live, patch) == expected


def test_replace_strategy_replaces_pdb_selector() -> None:
    live = {"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}}
    patch = {"spec": {"selector": {"matchLabels": {"b": "2"}}}}
    result = _smp(live, patch, "policy/v1", "PodDisruptionBudget")
    assert result["spec"] == {"selector": {"matchLabels": {"b": "2"}}, "minAvailable": 1}


def test_pod_status_conditions_merge_by_type() -> None:
    live = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Init", "status": "True"}]}}
    result = _smp(live, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "v1", "Pod")
    assert result["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "Init", "status": "True"}]


def test_owner_references_merge_by_uid() -> None:
    live = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    result = _smp(
        live, {"metadata": {"ownerReferences": [{"uid": "1", "controller": True}, {"uid": "2", "name": "b"}]}}
    )
    assert result["metadata"]["ownerReferences"] == [
        {"uid": "1", "name": "a", "controller": True},
        {"uid": "2", "name": "b"},
    ]


def test_container_ports_merge_by_container_port() -> None:
    live = _deployment([{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}])
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 443}]}]}}}}
    ports = _pod_spec(_smp(live, patch))["containers"][0]["ports"]
    assert ports == [{"containerPort": 443}, {"containerPort": 80, "name": "http"}]


def test_unknown_type_merges_maps_and_replaces_lists() -> None:
    live = {"spec": {"a": 1, "items": [1, 2], "m": {"x": 1}}}
    patch = {"spec": {"items": [3], "m": {"y": 2}, "a": None}}
    result = apply_strategic_merge_patch(live, patch, None, SCHEMAS)
    assert result == {"spec": {"items": [3], "m": {"x": 1, "y": 2}}}


def test_null_strategic_patch_is_a_no_op() -> None:
    assert _smp(_deployment(), None) == _deployment()


def test_strategic_merge_never_changes_its_inputs() -> None:
    live = _deployment(volumes=[{"name": "data", "emptyDir": {}}])
    patch = copy.deepcopy(APPLY_REMOVING_SIDECAR)
    patch["spec"]["template"]["spec"]["volumes"] = [
        {"$retainKeys": ["name", "secret"], "name": "data", "secret": {"secretName": "s"}}
    ]
    saved = copy.deepcopy((live, patch))
    result = _smp(live, patch)
    _pod_spec(result)["containers"][0]["image"] = "changed"
    assert (live, patch) == saved


SMP_ERRORS = [
    (
        "missing merge key",
        {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
        PatchFailedError,
        "map: map[image:x] does not contain declared merge key: name",
    ),
    (
        "order list contradicting the patch (upstream table)",
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                        "containers": [{"name": "sidecar", "image": "s"}, {"name": "nginx", "image": "n"}],
                    }
                }
            }
        },
        PatchFailedError,
        "the order in patch list:\n[map[image:s name:sidecar] map[image:n name:nginx]]\n doesn't "
        "match $setElementOrder list:\n[map[name:nginx] map[name:sidecar]]",
    ),
    (
        "order list that is not a list",
        {"spec": {"template": {"spec": {"$setElementOrder/containers": "x"}}}},
        PatchFailedError,
        "expected a []interface {}, but received a string",
    ),
    (
        "retainKeys not a list",
        {"spec": {"strategy": {"$retainKeys": "type", "type": "Recreate"}}},
        MalformedPatchError,
        "invalid patch format of retainKeys",
    ),
    (
        "retainKeys not listing a patched key",
        {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}},
        MalformedPatchError,
        "invalid patch format of retainKeys",
    ),
    (
        "bad set element order key",
        {"spec": {"$setElementOrderX/containers": []}},
        MalformedPatchError,
        "invalid patch format of setElementOrder list",
    ),
    (
        "bad delete list key",
        {"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}},
        MalformedPatchError,
        "invalid patch format of primitive list",
    ),
    (
        "merge directive in a list",
        {"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}},
        PatchFailedError,
        "merging lists cannot yet be specified in the patch",
    ),
    (
        "merge directive on a map",
        {"spec": {"$patch": "merge", "replicas": 2}},
        PatchFailedError,
        "unknown patch type: merge in map: map[$patch:merge replicas:2]",
    ),
    (
        "unknown directive in a list",
        {"spec": {"template": {"spec": {"containers": [{"$patch": "frob", "name": "x"}]}}}},
        PatchFailedError,
        "unknown patch type: frob in map: map[$patch:frob name:x]",
    ),
    (
        "non-string directive",
        {"spec": {"$patch": 1.5}},
        PatchFailedError,
        "unknown patch type: %!s(float64=1.5) in map: map[$patch:1.5]",
    ),
    (
        "delete directive without merge key",
        {"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}},
        PatchFailedError,
        "map: map[$patch:delete] does not contain declared merge key: name",
    ),
    ("list of lists", {"metadata": {"finalizers": [["a"]]}}, InvalidPatchError, "lists of lists are not supported"),
    (
        "mixed element types",
        {"metadata": {"finalizers": [1]}},
        PatchFailedError,
        "list element types are not identical: [[a] [1]]",
    ),
    (
        "patch is a list",
        [],
        MalformedPatchError,
        "json: cannot unmarshal array into Go value of type map[string]interface {}",
    ),
]


@pytest.mark.parametrize(("name", "patch", "error", "message"), SMP_ERRORS, ids=[c[0] for c in SMP_ERRORS])
def test_strategic_merge_fails_with_upstream_message(name: str, patch: Any, error: type, message: str) -> None:
    live = _deployment()
    live["metadata"]["finalizers"] = [] if name == "list of lists" else ["a"]
    with pytest.raises(error) as raised:
        _smp(live, patch)
    assert type(raised.value) is error
    assert str(raised.value) == message


# ------------------------------------------------------------------------------------- errors & helpers


@pytest.mark.parametrize(
    ("error", "code", "reason", "message"),
    [
        (
            MalformedPatchError("invalid patch format of retainKeys"),
            400,
            "BadRequest",
            "invalid patch format of retainKeys",
        ),
        (PatchTooLargeError("too many"), 413, "RequestEntityTooLarge", "Request entity too large: too many"),
        (InvalidPatchError("x"), 422, "Invalid", "the server rejected our request due to an error in our request"),
        (
            PatchTestFailedError("testing value /a failed: test failed"),
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        ),
        (
            PatchFailedError("map: map[] does not contain declared merge key: name"),
            500,
            "",
            "map: map[] does not contain declared merge key: name",
        ),
    ],
)
def test_patch_errors_map_to_upstream_statuses(error: PatchError, code: int, reason: str, message: str) -> None:
    api_error = error.to_api_error()
    assert (api_error.code, api_error.reason, api_error.message) == (code, reason, message)
    assert (error.code, error.reason) == (code, reason)


@pytest.mark.parametrize(
    ("api_version", "kind", "found"),
    [("apps/v1", "Deployment", True), ("v1", "Service", True), ("example.com/v1", "Widget", False)],
)
def test_patch_schema_for_finds_built_in_kinds(api_version: str, kind: str, found: bool) -> None:
    node = patch_schema_for(SCHEMAS, api_version, kind)
    assert (node is not None) == found
    if found:
        assert "spec" in node["properties"]
