"""Label and field selectors: upstream syntax, canonical strings, matching, and error messages.

Expected error messages were checked against kubectl 1.32's own parser (`kubectl set selector --local`).
"""

from __future__ import annotations

from typing import Any

import pytest

from kubelite.machinery.selectors import (
    EVERYTHING,
    NOTHING,
    FieldRequirement,
    FieldSelector,
    SelectorError,
    convert_field_selector,
    escape_field_value,
    field_set,
    format_label_selector,
    go_quote,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
    selector_from_set,
    validate_field_selector,
)

NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
    "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
PREFIX_PART = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


# --- label selector syntax ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("a", "a"),
        ("!a", "!a"),
        ("a=", "a="),
        ("a in (x,y)", "a in (x,y)"),
        ("a in (y,x,y)", "a in (x,y)"),
        ("a notin (x)", "a notin (x)"),
        ("a in ()", "a in ()"),
        ("a in (,b)", "a in (,b)"),
        ("a in (b,)", "a in (,b)"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("a>1", "a>1"),
        ("a<10", "a<10"),
        ("  a  =  b  ,  c  ", "a=b,c"),
        ("a\t=\nb", "a=b"),
        ("z=1,a=2,m", "a=2,m,z=1"),
        ("example.com/app=web", "example.com/app=web"),
        ("in=b", "in=b"),
        ("notin in (in)", "notin in (in)"),
    ],
)
def test_label_selector_parses_to_upstream_canonical_string(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a===b", "unable to parse requirement: found '=', expected: identifier"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        (
            "app:monolith",
            f'unable to parse requirement: <nil>: Invalid value: "app:monolith": {NAME_PART}',
        ),
        (
            "a/b/c",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')",
        ),
        ("Example.com/a=b", f'unable to parse requirement: <nil>: Invalid value: "Example.com/a": {PREFIX_PART}'),
        (
            "/a=b",
            'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty',
        ),
        (
            "a/=b",
            f'unable to parse requirement: <nil>: Invalid value: "a/": name part must be non-empty; {NAME_PART}',
        ),
        (
            "k" * 64 + "=b",
            f'unable to parse requirement: <nil>: Invalid value: "{"k" * 64}": '
            "name part must be no more than 63 characters",
        ),
        ("a=b@", f'unable to parse requirement: values[0][a]: Invalid value: "b@": {LABEL_VALUE}'),
        (
            "a=" + "v" * 64,
            f'unable to parse requirement: values[0][a]: Invalid value: "{"v" * 64}": '
            "must be no more than 63 characters",
        ),
        ("a in (x,@)", f'unable to parse requirement: values[0][a]: Invalid value: "@": {LABEL_VALUE}'),
        (
            "a>qa",
            'unable to parse requirement: values[0]: Invalid value: "qa": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("a>-1", f'unable to parse requirement: values[0][a]: Invalid value: "-1": {LABEL_VALUE}'),
        ('a="b"', f'unable to parse requirement: values[0][a]: Invalid value: "\\"b\\"": {LABEL_VALUE}'),
    ],
)
def test_invalid_label_selector_raises_upstream_message(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(text)
    assert str(caught.value) == message


def test_selector_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_label_selector("a b")


# --- label matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("", None, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b", "x": "y"}, True),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x,y)", {}, False),
        ("a notin (x)", {}, True),
        ("a notin (x)", {"a": "x"}, False),
        ("a in ()", {"a": ""}, True),
        ("a", {"a": ""}, True),
        ("a", {"b": "a"}, False),
        ("!a", {"b": "1"}, True),
        ("!a", {"a": ""}, False),
        ("a=", {"a": ""}, True),
        ("a=", {}, False),
        ("a>1", {"a": "2"}, True),
        ("a>1", {"a": "1"}, False),
        ("a>1", {"a": "x"}, False),
        ("a>1", {}, False),
        ("a<10", {"a": "-5"}, True),
        ("a=b,c", {"a": "b", "c": "d"}, True),
        ("a=b,c", {"a": "b"}, False),
    ],
)
def test_label_selector_matches_as_upstream(text: str, labels: dict[str, str] | None, expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_everything_is_empty_and_nothing_matches_nothing() -> None:
    assert EVERYTHING.empty and EVERYTHING.matches({"a": "b"}) and EVERYTHING.matches(None)
    assert not NOTHING.empty and not NOTHING.matches({}) and not NOTHING.matches({"a": "b"})
    assert NOTHING.selects_nothing and not EVERYTHING.selects_nothing
    assert str(NOTHING) == ""
    assert parse_label_selector("") == EVERYTHING
    assert not parse_label_selector("a").empty


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("a=b", "a", "b"),
        ("a==b", "a", "b"),
        ("a in (b)", "a", "b"),
        ("a in (b,c)", "a", None),
        ("a!=b", "a", None),
        ("a=b", "c", None),
    ],
)
def test_requires_exact_match_finds_single_required_value(text: str, key: str, expected: str | None) -> None:
    assert parse_label_selector(text).requires_exact_match(key) == expected


# --- metav1.LabelSelector -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ({"matchLabels": {"app": "web"}}, "app=web"),
        ({"matchLabels": {"tier": "fe", "app": "web"}}, "app=web,tier=fe"),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                    {"key": "beta", "operator": "DoesNotExist"},
                    {"key": "zone", "operator": "NotIn", "values": ["a"]},
                    {"key": "canary", "operator": "Exists"},
                ],
            },
            "app=web,!beta,canary,env in (dev,prod),zone notin (a)",
        ),
    ],
)
def test_label_selector_dict_formats_as_query_string(spec: dict[str, Any], canonical: str) -> None:
    assert format_label_selector(spec) == canonical
    assert str(parse_label_selector(canonical)) == canonical


@pytest.mark.parametrize(
    "labels",
    [{"app": "web", "env": "prod", "canary": "1"}, {"app": "web", "env": "dev"}, {"app": "db"}, {}],
)
def test_label_selector_dict_and_its_string_form_select_the_same_objects(labels: dict[str, str]) -> None:
    spec = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "beta", "operator": "DoesNotExist"},
        ],
    }
    from_dict = label_selector_from_dict(spec)
    from_string = parse_label_selector(format_label_selector(spec))
    assert from_dict.matches(labels) == from_string.matches(labels)


def test_nil_label_selector_selects_nothing_and_empty_selects_everything() -> None:
    assert label_selector_from_dict(None) is NOTHING
    assert label_selector_from_dict({}) is EVERYTHING
    assert label_selector_from_dict({"matchLabels": {}, "matchExpressions": []}) is EVERYTHING
    assert format_label_selector(None) == "" and format_label_selector({}) == ""


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
        ),
        ({"matchLabels": {"a b": "c"}}, f'key: Invalid value: "a b": {NAME_PART}'),
        ({"matchLabels": {"a": "b c"}}, f'values[0][a]: Invalid value: "b c": {LABEL_VALUE}'),
        (
            {"matchLabels": {"a b": "c d"}},
            f'[key: Invalid value: "a b": {NAME_PART}, values[0][a b]: Invalid value: "c d": {LABEL_VALUE}]',
        ),
    ],
)
def test_invalid_label_selector_dict_raises_upstream_message(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        label_selector_from_dict(spec)
    assert str(caught.value) == message


def test_selector_from_set_is_a_sorted_equality_conjunction() -> None:
    selector = selector_from_set({"b": "2", "a": "1"})
    assert str(selector) == "a=1,b=2"
    assert selector.matches({"a": "1", "b": "2", "c": "3"}) and not selector.matches({"a": "1"})
    assert selector_from_set(None) == EVERYTHING and selector_from_set({}) == EVERYTHING


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("abc", '"abc"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("\t\n", '"\\t\\n"'),
        ("\x01", '"\\x01"'),
        ("é", '"é"'),
        ("\u00a0", '"\\u00a0"'),
    ],
)
def test_go_quote_matches_strconv_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


# --- field selectors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "requirements", "canonical"),
    [
        ("", [], ""),
        ("metadata.name=web", [("metadata.name", "=", "web")], "metadata.name=web"),
        ("metadata.name==web", [("metadata.name", "=", "web")], "metadata.name=web"),
        ("status.phase!=Running", [("status.phase", "!=", "Running")], "status.phase!=Running"),
        (
            "spec.nodeName=n1,metadata.name=a",
            [("metadata.name", "=", "a"), ("spec.nodeName", "=", "n1")],
            "metadata.name=a,spec.nodeName=n1",
        ),
        ("spec.nodeName=", [("spec.nodeName", "=", "")], "spec.nodeName="),
        ("a=b\\,c", [("a", "=", "b,c")], "a=b\\,c"),
        ("a=b\\=c\\\\d", [("a", "=", "b=c\\d")], "a=b\\=c\\\\d"),
        ("a=b,,", [("a", "=", "b")], "a=b"),
        ("=", [], ""),
    ],
)
def test_field_selector_parses_terms_in_upstream_order(
    text: str, requirements: list[tuple[str, str, str]], canonical: str
) -> None:
    selector = parse_field_selector(text)
    assert list(selector.requirements) == requirements
    assert str(selector) == canonical
    assert selector.empty is (not requirements)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a==b,c", "invalid selector: 'a==b,c'; can't understand 'c'"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
        ("a!==b", "invalid field selector: unescaped character in value: 61"),
    ],
)
def test_invalid_field_selector_raises_upstream_message(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_field_selector(text)
    assert str(caught.value) == message


@pytest.mark.parametrize("value", ["plain", "a,b", "a=b", "back\\slash", "\\,=", ""])
def test_escaped_field_values_round_trip(value: str) -> None:
    selector = parse_field_selector("f=" + escape_field_value(value))
    assert selector.requirements == (FieldRequirement("f", "=", value),)
    assert parse_field_selector(str(selector)) == selector


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("", {}, True),
        ("metadata.name=a", {"metadata.name": "a"}, True),
        ("metadata.name=a", {"metadata.name": "b"}, False),
        ("spec.nodeName=", {"metadata.name": "a"}, True),
        ("spec.nodeName!=", {"spec.nodeName": "n1"}, True),
        ("spec.nodeName!=n1", {}, True),
        ("spec.nodeName!=n1", {"spec.nodeName": "n1"}, False),
        ("a=1,b=2", {"a": "1", "b": "2"}, True),
        ("a=1,b=2", {"a": "1", "b": "3"}, False),
    ],
)
def test_field_selector_matches_missing_fields_as_empty(text: str, fields: dict[str, str], expected: bool) -> None:
    assert parse_field_selector(text).matches(fields) is expected


def test_field_requires_exact_match_ignores_inequalities() -> None:
    selector = parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert selector.requires_exact_match("spec.nodeName") == "n1"
    assert selector.requires_exact_match("status.phase") is None


# --- which fields each resource offers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "group", "text", "converted"),
    [
        ("pods", None, "spec.nodeName=n1,status.phase!=Failed", "spec.nodeName=n1,status.phase!=Failed"),
        ("pods", None, "spec.host=n1", "spec.nodeName=n1"),
        ("pods", None, "spec.hostNetwork=true,status.podIPs=", "spec.hostNetwork=true,status.podIPs="),
        ("events", None, "involvedObject.name=p,reason=Failed", "involvedObject.name=p,reason=Failed"),
        ("events", "events.k8s.io", "regarding.name=p", "involvedObject.name=p"),
        ("events", "events.k8s.io", "reportingController=kubelet", "reportingComponent=kubelet"),
        ("nodes", None, "spec.unschedulable=false", "spec.unschedulable=false"),
        ("namespaces", None, "status.phase=Active", "status.phase=Active"),
        ("secrets", None, "type=Opaque", "type=Opaque"),
        ("services", None, "spec.type=NodePort", "spec.type=NodePort"),
        ("replicationcontrollers", None, "status.replicas=3", "status.replicas=3"),
        ("jobs", None, "status.successful=1", "status.successful=1"),
        ("certificatesigningrequests", None, "spec.signerName=x/y", "spec.signerName=x/y"),
        ("configmaps", None, "metadata.name=a,metadata.namespace=b", "metadata.name=a,metadata.namespace=b"),
    ],
)
def test_supported_field_labels_convert_to_field_set_names(
    resource: str, group: str | None, text: str, converted: str
) -> None:
    selector = parse_field_selector(text)
    assert str(convert_field_selector(resource, selector, group=group)) == converted
    validate_field_selector(resource, selector, group=group)


@pytest.mark.parametrize(
    ("resource", "group", "text", "message"),
    [
        ("pods", None, "spec.foo=x", "field label not supported: spec.foo"),
        ("nodes", None, "metadata.namespace=x", "field label not supported: metadata.namespace"),
        ("namespaces", None, "metadata.namespace=x", "field label not supported: metadata.namespace"),
        ("events", None, "regarding.name=p", "field label not supported: regarding.name"),
        ("events", "events.k8s.io", "involvedObject.name=p", "field label not supported: involvedObject.name"),
        ("jobs", None, "status.active=1", 'field label "status.active" not supported for batchv1.Job'),
        (
            "configmaps",
            None,
            "data.x=1",
            '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        (
            "replicasets",
            None,
            "status.replicas=1",
            '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        (
            "jobs",
            "example.com",
            "status.successful=1",
            '"status.successful" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
    ],
)
def test_unsupported_field_label_raises_upstream_message(
    resource: str, group: str | None, text: str, message: str
) -> None:
    with pytest.raises(SelectorError) as caught:
        validate_field_selector(resource, parse_field_selector(text), group=group)
    assert str(caught.value) == message


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {
        "nodeName": "n1",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
        "hostNetwork": True,
    },
    "status": {
        "phase": "Running",
        "podIP": "10.0.0.5",
        "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
        "nominatedNodeName": "n2",
    },
}
CORE_EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "e1", "namespace": "default"},
    "involvedObject": {
        "kind": "Pod",
        "name": "web-1",
        "namespace": "default",
        "uid": "u1",
        "apiVersion": "v1",
        "resourceVersion": "7",
        "fieldPath": "spec.containers{c}",
    },
    "reason": "Failed",
    "type": "Warning",
    "reportingComponent": "kubelet",
    "source": {},
}
NEW_EVENT = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": {"name": "e2", "namespace": "default"},
    "regarding": {"kind": "Pod", "name": "web-1", "namespace": "default"},
    "reason": "Scheduled",
    "type": "Normal",
    "reportingController": "default-scheduler",
    "deprecatedSource": {"component": "scheduler"},
}


@pytest.mark.parametrize(
    ("resource", "obj", "expected"),
    [
        (
            "pods",
            POD,
            {
                "metadata.name": "web-1",
                "metadata.namespace": "default",
                "spec.nodeName": "n1",
                "spec.restartPolicy": "Always",
                "spec.schedulerName": "default-scheduler",
                "spec.serviceAccountName": "default",
                "spec.hostNetwork": "true",
                "status.phase": "Running",
                "status.podIP": "10.0.0.5",
                "status.nominatedNodeName": "n2",
            },
        ),
        (
            "pods",
            {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}, "status": {"podIP": "1.2.3.4"}},
            {
                "metadata.name": "p",
                "metadata.namespace": "ns",
                "spec.nodeName": "",
                "spec.restartPolicy": "",
                "spec.schedulerName": "",
                "spec.serviceAccountName": "",
                "spec.hostNetwork": "false",
                "status.phase": "",
                "status.podIP": "1.2.3.4",
                "status.nominatedNodeName": "",
            },
        ),
        (
            "nodes",
            {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}},
            {"metadata.name": "n1", "spec.unschedulable": "true"},
        ),
        ("nodes", {"metadata": {"name": "n1"}}, {"metadata.name": "n1", "spec.unschedulable": "false"}),
        (
            "namespaces",
            {"metadata": {"name": "ns"}, "status": {"phase": "Active"}},
            {"metadata.name": "ns", "status.phase": "Active", "name": "ns"},
        ),
        (
            "secrets",
            {"metadata": {"name": "s", "namespace": "ns"}, "type": "Opaque"},
            {"metadata.name": "s", "metadata.namespace": "ns", "type": "Opaque"},
        ),
        (
            "services",
            {"metadata": {"name": "s", "namespace": "ns"}, "spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP"}},
            {"metadata.name": "s", "metadata.namespace": "ns", "spec.clusterIP": "10.96.0.1", "spec.type": "ClusterIP"},
        ),
        (
            "replicasets",
            {"metadata": {"name": "r", "namespace": "ns"}, "status": {"replicas": 3}},
            {"metadata.name": "r", "metadata.namespace": "ns", "status.replicas": "3"},
        ),
        (
            "replicationcontrollers",
            {"metadata": {"name": "r", "namespace": "ns"}},
            {"metadata.name": "r", "metadata.namespace": "ns", "status.replicas": "0"},
        ),
        (
            "jobs",
            {"metadata": {"name": "j", "namespace": "ns"}, "status": {"succeeded": 1}},
            {"metadata.name": "j", "metadata.namespace": "ns", "status.successful": "1"},
        ),
        (
            "certificatesigningrequests",
            {"metadata": {"name": "c"}, "spec": {"signerName": "x/y"}},
            {"metadata.name": "c", "spec.signerName": "x/y"},
        ),
        ("persistentvolumes", {"metadata": {"name": "pv"}}, {"metadata.name": "pv", "name": "pv"}),
        (
            "configmaps",
            {"metadata": {"name": "cm", "namespace": "ns"}, "data": {"a": "b"}},
            {"metadata.name": "cm", "metadata.namespace": "ns"},
        ),
        ("clusterroles", {"metadata": {"name": "admin"}}, {"metadata.name": "admin"}),
    ],
)
def test_field_set_offers_upstream_selectable_fields(
    resource: str, obj: dict[str, Any], expected: dict[str, str]
) -> None:
    assert field_set(resource, obj) == expected


def test_field_set_of_an_event_carries_both_vocabularies_from_either_shape() -> None:
    core = field_set("events", CORE_EVENT)
    assert core["involvedObject.name"] == core["regarding.name"] == "web-1"
    assert core["involvedObject.fieldPath"] == "spec.containers{c}"
    assert core["reportingComponent"] == core["reportingController"] == "kubelet"
    assert core["source"] == "kubelet"  # no source.component: upstream falls back to the reporter
    new = field_set("events", NEW_EVENT, group="events.k8s.io")
    assert new["involvedObject.name"] == new["regarding.name"] == "web-1"
    assert new["reportingComponent"] == "default-scheduler" and new["source"] == "scheduler"
    assert new["involvedObject.uid"] == ""


@pytest.mark.parametrize(
    ("resource", "group", "text", "obj", "expected"),
    [
        ("pods", None, "spec.nodeName=n1", POD, True),
        ("pods", None, "spec.host=n1", POD, True),
        ("pods", None, "spec.nodeName=n2", POD, False),
        ("pods", None, "status.phase!=Running", POD, False),
        ("events", None, "involvedObject.kind=Pod,type=Warning", CORE_EVENT, True),
        ("events", "events.k8s.io", "regarding.name=web-1,type=Warning", CORE_EVENT, True),
        ("events", "events.k8s.io", "regarding.name=web-1,type=Warning", NEW_EVENT, False),
        ("events", None, "involvedObject.name=web-1,reason=Scheduled", NEW_EVENT, True),
    ],
)
def test_converted_field_selector_matches_field_set(
    resource: str, group: str | None, text: str, obj: dict[str, Any], expected: bool
) -> None:
    selector = convert_field_selector(resource, parse_field_selector(text), group=group)
    assert selector.matches(field_set(resource, obj, group=group)) is expected


def test_field_selector_is_immutable_value() -> None:
    selector = parse_field_selector("a=b")
    assert selector == FieldSelector((FieldRequirement("a", "=", "b"),))
    assert hash(selector) == hash(parse_field_selector("a==b"))
