"""Decoding of Kubernetes protobuf request bodies (kubelite.machinery.protobuf).

The main suite runs against bodies recorded from the real kubectl 1.32.4 (tests/unit/fixtures/protobuf,
made by scripts/capture_protobuf.py) and compares the decoded object with kubectl's own
`--dry-run=client -o json` output for the same command.  The one normalisation: values that Go's JSON
prints as `null` are removed from the expected side - `creationTimestamp: null` (a zero metav1.Time) and
nil fields without `omitempty` such as `expirationTimestamp`.  The decoder leaves such fields out, which
means the same to the API server (absent and null are both "unset").

Smaller cases build messages with a tiny encoder below to pin down the rules the fixtures cannot show:
zero dropping versus explicit zeros, special types, packed lists, unknown fields and malformed input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubelite.machinery.protobuf import MAGIC, ProtobufError, decode_k8s_protobuf, go_duration, read_envelope
from kubelite.machinery.protobuf_fields import message_fields
from kubelite.machinery.schema import REF_PREFIX, GroupVersionKind, load_schemas

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"

# Every kind kubectl 1.32 creates through a typed (protobuf) client, plus Pod (reached via templates).
KUBECTL_KINDS = [
    ("apps", "v1", "Deployment"),
    ("", "v1", "Namespace"),
    ("", "v1", "ConfigMap"),
    ("", "v1", "Secret"),
    ("", "v1", "Service"),
    ("", "v1", "ServiceAccount"),
    ("", "v1", "ResourceQuota"),
    ("", "v1", "Pod"),
    ("batch", "v1", "Job"),
    ("batch", "v1", "CronJob"),
    ("rbac.authorization.k8s.io", "v1", "Role"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
    ("policy", "v1", "PodDisruptionBudget"),
    ("networking.k8s.io", "v1", "Ingress"),
    ("scheduling.k8s.io", "v1", "PriorityClass"),
    ("authentication.k8s.io", "v1", "TokenRequest"),
    ("authentication.k8s.io", "v1", "SelfSubjectReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectAccessReview"),
    ("autoscaling", "v1", "HorizontalPodAutoscaler"),
]
SPECIAL_DEFINITIONS = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
}


# --- a minimal encoder, only for building test messages ----------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32/int64 travel as 64-bit two's complement, like Go writes them
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: int | bool | str | bytes) -> bytes:
    if isinstance(value, bool | int):
        return varint(number << 3) + varint(int(value))
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def body(api_version: str, kind: str, *fields: bytes) -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    return MAGIC + field(1, type_meta) + field(2, b"".join(fields)) + field(3, "") + field(4, "")


def decode(api_version: str, kind: str, *fields: bytes) -> dict[str, Any]:
    return decode_k8s_protobuf(body(api_version, kind, *fields))


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


# --- bodies recorded from kubectl ------------------------------------------------------------------------

RECORDED = sorted(path.stem for path in FIXTURES.glob("*.pb"))


@pytest.mark.parametrize("name", RECORDED)
def test_kubectl_body_decodes_to_what_kubectl_dry_run_prints(name: str) -> None:
    expected = without_nulls(json.loads((FIXTURES / f"{name}.json").read_text()))

    assert decode_k8s_protobuf((FIXTURES / f"{name}.pb").read_bytes()) == expected


def test_recorded_fixtures_cover_every_protobuf_kubectl_command() -> None:
    kinds = {read_envelope((FIXTURES / f"{name}.pb").read_bytes())[1] for name in RECORDED}

    assert kinds >= {kind for _, _, kind in KUBECTL_KINDS} - {"Pod"}


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("deployment", ("spec", "replicas"), 0),  # *int32 set to zero on purpose
        ("pdb", ("spec", "minAvailable"), 0),  # *IntOrString set to zero
        ("priorityclass", ("value",), 0),  # non-omitempty field
        ("configmap", ("data", "empty"), ""),  # map values are never dropped
        ("secret", ("data", "user"), "YWRtaW4="),  # map<string, bytes> becomes base64
        ("pdb-percent", ("spec", "maxUnavailable"), "50%"),
        ("quota", ("spec", "hard", "memory"), "1Gi"),
        ("token", ("spec", "expirationSeconds"), 600),
    ],
)
def test_recorded_body_keeps_values_json_would_keep(name: str, path: tuple[str, ...], value: Any) -> None:
    obj: Any = decode_k8s_protobuf((FIXTURES / f"{name}.pb").read_bytes())
    for key in path:
        obj = obj[key]

    assert obj == value


# --- decoding rules, on hand-built messages ------------------------------------------------------------


def test_zero_of_non_pointer_field_is_dropped_like_omitempty() -> None:
    spec = field(5, 0) + field(7, False)  # minReadySeconds, paused: Go writes them even when zero

    assert decode("apps/v1", "Deployment", field(2, spec)) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {},
    }


def test_explicit_zero_and_false_of_pointer_fields_are_kept() -> None:
    spec = field(6, 0) + field(10, False)  # revisionHistoryLimit: 0, suspend: false (both pointers)
    job_spec = field(10, False) + field(8, 0)  # suspend, ttlSecondsAfterFinished

    assert decode("apps/v1", "Deployment", field(2, spec))["spec"] == {"revisionHistoryLimit": 0}
    assert decode("batch/v1", "Job", field(2, job_spec))["spec"] == {
        "suspend": False,
        "ttlSecondsAfterFinished": 0,
    }


def test_empty_pointer_message_is_kept_as_empty_object() -> None:
    volume = field(1, "scratch") + field(2, field(2, b""))  # name, inline VolumeSource{emptyDir: {}}
    pod_spec = field(1, volume)

    assert decode("v1", "Pod", field(2, pod_spec))["spec"] == {
        "volumes": [{"name": "scratch", "emptyDir": {}}]
    }


def test_inline_embedded_messages_merge_into_their_parent() -> None:
    probe = field(1, field(3, field(1, field(2, 8080)))) + field(4, 5)  # tcpSocket.port, periodSeconds
    env_from = field(2, field(1, field(1, "settings")) + field(2, True))  # configMapRef{name, optional}
    container = field(1, "app") + field(10, probe) + field(19, env_from)

    decoded = decode("v1", "Pod", field(2, field(2, container)))

    assert decoded["spec"]["containers"] == [
        {
            "name": "app",
            "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5},
            "envFrom": [{"configMapRef": {"name": "settings", "optional": True}}],
        }
    ]


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (field(1, 1704164645), "2024-01-02T03:04:05Z"),
        (field(1, 1704164645) + field(2, 987_654_321), "2024-01-02T03:04:05Z"),  # JSON keeps seconds
        (field(1, -1), "1969-12-31T23:59:59Z"),
    ],
)
def test_time_becomes_rfc3339_utc(wire: bytes, expected: str) -> None:
    metadata = field(1, "x") + field(9, wire)  # deletionTimestamp

    assert decode("v1", "Namespace", field(1, metadata))["metadata"]["deletionTimestamp"] == expected


def test_zero_time_is_left_out_instead_of_null() -> None:
    metadata = field(1, "x") + field(8, b"")  # creationTimestamp: Go writes an empty message

    assert decode("v1", "Namespace", field(1, metadata))["metadata"] == {"name": "x"}


def test_micro_time_keeps_microseconds() -> None:
    event = field(1, field(1, "e")) + field(10, field(1, 1704164645) + field(2, 123_456_789))

    assert decode("v1", "Event", event)["eventTime"] == "2024-01-02T03:04:05.123456Z"


def test_int_or_string_string_form() -> None:
    port = field(1, "web") + field(3, 80) + field(4, field(1, 1) + field(3, "http"))  # targetPort "http"

    assert decode("v1", "Service", field(2, field(1, port)))["spec"]["ports"] == [
        {"name": "web", "port": 80, "targetPort": "http"}
    ]


def test_negative_integers_use_twos_complement_varints() -> None:
    status = field(6, -2)  # JobStatus.failed is int32; -2 only to exercise the sign

    assert decode("batch/v1", "Job", field(3, status))["status"] == {"failed": -2}


def test_repeated_integers_decode_packed_and_unpacked() -> None:
    unpacked = field(4, 1000) + field(4, 2000)
    packed = field(4, varint(3000) + varint(4000))
    spec = field(14, unpacked + packed)  # PodSecurityContext.supplementalGroups

    assert decode("v1", "Pod", field(2, spec))["spec"]["securityContext"] == {
        "supplementalGroups": [1000, 2000, 3000, 4000]
    }


def test_unknown_field_numbers_are_skipped() -> None:
    metadata = field(1, "x") + field(99, "from a newer client")

    assert decode("v1", "Namespace", field(1, metadata), field(42, 7))["metadata"] == {"name": "x"}


def test_last_occurrence_of_a_scalar_wins() -> None:
    metadata = field(1, "first") + field(1, "second")

    assert decode("v1", "Namespace", field(1, metadata))["metadata"] == {"name": "second"}


def test_map_of_string_lists_uses_wrapper_message() -> None:
    extra = field(1, "scopes") + field(2, field(1, "a") + field(1, "b"))
    spec = field(3, "alice") + field(5, extra)  # SubjectAccessReviewSpec.user, .extra

    assert decode("authorization.k8s.io/v1", "SubjectAccessReview", field(2, spec))["spec"] == {
        "user": "alice",
        "extra": {"scopes": ["a", "b"]},
    }


def test_managed_fields_carry_embedded_json() -> None:
    entry = field(1, "kubectl") + field(6, "FieldsV1") + field(7, field(1, b'{"f:data":{}}'))
    metadata = field(1, "x") + field(17, entry)

    assert decode("v1", "ConfigMap", field(1, metadata))["metadata"]["managedFields"] == [
        {"manager": "kubectl", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}
    ]


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (100_000_000, "100ms"),
        (1_500_000_000, "1.5s"),
        (60_000_000_000, "1m0s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (-90_000_000_000, "-1m30s"),
    ],
)
def test_go_duration_matches_go_time_duration_string(nanoseconds: int, text: str) -> None:
    assert go_duration(nanoseconds) == text


# --- malformed input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"kind":"Namespace"}', "magic"),
        (MAGIC + b"\x0a", "truncated"),
        (MAGIC + b"\x0a\x05ab", "past the end"),
        (MAGIC + b"\x0b", "wire type 3"),
        (MAGIC + field(2, b""), "no apiVersion/kind"),
        (body("storage.k8s.io/v1", "StorageClass"), "not supported"),
        (body("v1", "NoSuchKind"), "not supported"),
        (body("v1", "Namespace", field(1, field(1, 7))), "Namespace.metadata.name: expected a string"),
        (body("v1", "Namespace", field(1, field(1, b"\xff"))), "UTF-8"),
        (MAGIC + field(1, field(1, "v1") + field(2, "Namespace")) + field(3, "gzip"), "encoding 'gzip'"),
        (MAGIC + field(1, field(1, "v1") + field(2, "Namespace")) + field(2, b"\x80" * 11), "varint"),
    ],
)
def test_malformed_body_raises_protobuf_error(data: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode_k8s_protobuf(data)


def test_protobuf_error_is_a_value_error() -> None:
    assert issubclass(ProtobufError, ValueError)


# --- the field-number table ---------------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"][len(REF_PREFIX) :]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for key, item in node.items() if key != "$ref" for ref in _refs(item)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _json_names(table: str) -> set[str]:
    names: set[str] = set()
    for spec in message_fields()[table].values():
        names |= _json_names(spec.inline) if spec.inline else {spec.name}
    return names


def test_table_covers_every_field_reachable_from_kubectl_kinds() -> None:
    schemas = load_schemas()
    pending = [schemas.definition_name(GroupVersionKind(*gvk)) for gvk in KUBECTL_KINDS]
    seen: set[str] = set()
    missing: list[str] = []
    while pending:
        name = pending.pop()
        if name is None or name in seen or name in SPECIAL_DEFINITIONS:
            continue
        seen.add(name)
        definition = schemas.definitions[name]
        if name not in message_fields():
            missing.append(name)
            continue
        known = _json_names(name)
        missing += [
            f"{name}.{prop}"
            for prop in definition.get("properties", {})
            if prop not in known and prop not in ("apiVersion", "kind")
        ]
        pending += _refs(definition)

    assert missing == []
    assert len(seen) > 200


def test_every_table_name_is_a_field_of_its_1_32_definition() -> None:
    definitions = load_schemas().definitions
    inline_targets = {spec.inline for fields in message_fields().values() for spec in fields.values()}
    unknown = [
        f"{table}.{name}"
        for table in message_fields()
        if table not in inline_targets
        for name in _json_names(table)
        if name not in definitions[table].get("properties", {})
    ]

    assert unknown == []


def test_inline_targets_are_tables_and_numbers_are_unique_per_message() -> None:
    tables = message_fields()
    for table, fields in tables.items():
        assert all(number == spec.number for number, spec in fields.items()), table
        assert all(spec.inline in tables for spec in fields.values() if spec.inline), table
