"""Label and field selectors, with upstream's syntax, matching rules and error messages.

Error tree::

    SelectorError(ValueError)   a selector that does not parse or names a field the resource lacks

The message is upstream's, byte for byte (`unable to parse requirement: ...`, `field label not
supported: ...`), because kubectl prints it as-is; the API server turns it into
`errors.bad_request(str(err))` in one place.

Label selectors come in two forms that must agree: the string form of `?labelSelector=` (parsed by
`parse_label_selector`) and metav1.LabelSelector dicts in specs (`label_selector_from_dict`).  Both
produce an immutable `LabelSelector` whose `str()` is upstream's canonical string, so a selector
converted from a spec can be sent back as a query (kubectl describe, Scale `status.selector`).

Field selectors match against a flat `dict[str, str]` built by `field_set`; which fields a request
may name is decided per resource by `convert_field_selector`, which, as upstream's field-label
conversion functions do, also renames legacy or version-specific labels (`spec.host`,
`regarding.name`) to the ones `field_set` produces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, NamedTuple


class SelectorError(ValueError):
    """A selector that upstream would reject; `str()` is upstream's message."""


# --- upstream's validation messages (k8s.io/apimachinery/pkg/util/validation) ---------------------

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(_QNAME_FMT)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_MAX_LABEL_LENGTH = 63
_MAX_SUBDOMAIN_LENGTH = 253


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))  # Go measures strings in bytes


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errors = []
    if _byte_len(value) > _MAX_SUBDOMAIN_LENGTH:
        errors.append(_max_len_error(_MAX_SUBDOMAIN_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errors.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """Upstream's IsQualifiedName: `[prefix/]name`, as label and annotation keys must be; [] if valid."""
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in _dns1123_subdomain_errors(prefix))
    else:
        example = _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        prefixed = "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        return [f"a qualified name {example} {prefixed}"]
    if not name:
        errors.append("name part must be non-empty")
    elif _byte_len(name) > _MAX_LABEL_LENGTH:
        errors.append("name part " + _max_len_error(_MAX_LABEL_LENGTH))
    if not _QNAME_RE.fullmatch(name):
        errors.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errors


def label_value_errors(value: str) -> list[str]:
    """Upstream's IsValidLabelValue; [] if valid (the empty string is a valid value)."""
    errors = []
    if _byte_len(value) > _MAX_LABEL_LENGTH:
        errors.append(_max_len_error(_MAX_LABEL_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errors.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def go_quote(text: str) -> str:
    """Go's `%q` of a string (strconv.Quote), as upstream messages quote values."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch == " " or (ch.isprintable() and code != 0x7F):
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_string_slice(values: list[str] | None) -> str:
    """Go's `%#v` of a []string (nil prints as `[]string(nil)`)."""
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def _invalid(path: str, shown: str, detail: str) -> str:
    """A field.Error of type Invalid, as its Error() prints."""
    return f"{path}: Invalid value: {shown}: {detail}"


def _aggregate(errors: list[str]) -> str:
    """utilerrors.Aggregate's Error(): one message bare, several bracketed, duplicates dropped."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# --- label selectors ------------------------------------------------------------------------------


class Operator(StrEnum):
    """selection.Operator: the string values are upstream's."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_INT64_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), or None where it fails."""
    if not _INT64_RE.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term.  Build through the parsers, which validate; the values keep the
    order they were given in (the string form sorts them)."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        if self.key not in labels or len(self.values) != 1:
            return False
        have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
        if have is None or want is None:
            return False
        return have > want if op is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        shown = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({shown})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{shown}"


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements, sorted by key as upstream keeps them.

    Two selectors have no requirements: `EVERYTHING` (empty, matches every object) and `NOTHING`
    (`selects_nothing`, matches none) — a nil metav1.LabelSelector in a controller's spec or a
    PodDisruptionBudget means "select nothing", while `{}` means "select everything".
    """

    requirements: tuple[Requirement, ...] = ()
    selects_nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (upstream's Empty()); NOTHING is not empty."""
        return not self.requirements and not self.selects_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.selects_nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The one value `key` must have (`=`, `==` or a one-value `in`), else None; lets a caller
        narrow a list by an index instead of scanning."""
        for requirement in self.requirements:
            if requirement.key == key:
                exact = (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
                if requirement.operator in exact and len(requirement.values) == 1:
                    return requirement.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(selects_nothing=True)


def _new_requirement(key: str, op: Operator, values: list[str] | None) -> Requirement:
    """labels.NewRequirement: validate all of it and report every problem at once."""
    shown = values or []
    errors = []
    if key_errors := qualified_name_errors(key):
        errors.append(_invalid("key", go_quote(key), "; ".join(key_errors)))
    if op in (Operator.IN, Operator.NOT_IN):
        if not shown:
            detail = "for 'in', 'notin' operators, values set can't be empty"
            errors.append(_invalid("values", _go_string_slice(values), detail))
    elif op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS):
        if len(shown) != 1:
            detail = "exact-match compatibility requires one single value"
            errors.append(_invalid("values", _go_string_slice(values), detail))
    elif op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        if shown:
            detail = "values set must be empty for exists and does not exist"
            errors.append(_invalid("values", _go_string_slice(values), detail))
    else:
        if len(shown) != 1:
            detail = "for 'Gt', 'Lt' operators, exactly one value is required"
            errors.append(_invalid("values", _go_string_slice(values), detail))
        for i, value in enumerate(shown):
            if _parse_int64(value) is None:
                detail = "for 'Gt', 'Lt' operators, the value must be an integer"
                errors.append(_invalid(f"values[{i}]", go_quote(value), detail))
    for i, value in enumerate(shown):
        if value_errors := label_value_errors(value):
            errors.append(_invalid(f"values[{i}][{key}]", go_quote(value), "; ".join(value_errors)))
    if errors:
        raise SelectorError(_aggregate(errors))
    return Requirement(key, op, tuple(shown))


def _sorted_selector(requirements: Iterable[Requirement]) -> LabelSelector:
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """`key=value` for each entry, unvalidated (labels.SelectorFromSet); None or {} selects everything.

    For map-shaped selectors: ReplicationController and Service `spec.selector`, nodeSelector.
    """
    return _sorted_selector(Requirement(k, Operator.EQUALS, (v,)) for k, v in (labels or {}).items())


_SPEC_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def label_selector_from_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, `{}` (no terms) selects everything.

    Raises SelectorError with upstream's message for invalid keys, values or operators.
    """
    if selector is None:
        return NOTHING
    match_labels: Mapping[str, str] = selector.get("matchLabels") or {}
    expressions: list[Mapping[str, Any]] = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return EVERYTHING
    requirements = [_new_requirement(k, Operator.EQUALS, [v]) for k, v in match_labels.items()]
    for expression in expressions:
        name = expression.get("operator", "")
        op = _SPEC_OPERATORS.get(name)
        if op is None:
            raise SelectorError(f"{go_quote(str(name))} is not a valid label selector operator")
        values = list(expression.get("values") or []) or None
        requirements.append(_new_requirement(expression.get("key", ""), op, values))
    return _sorted_selector(requirements)


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """The string form of a metav1.LabelSelector, as kubectl sends it in `?labelSelector=` and as
    Scale `status.selector` carries it: "" for `{}` and for None (upstream's display helper shows
    those as "<none>", which is kubectl's business)."""
    return str(label_selector_from_dict(selector))


class _Tok(Enum):
    ERROR = 0
    END = 1
    CLOSE_PAREN = 2
    COMMA = 3
    NOT = 4
    DOUBLE_EQUALS = 5
    EQUALS = 6
    GREATER_THAN = 7
    IDENTIFIER = 8
    IN = 9
    LESS_THAN = 10
    NOT_EQUALS = 11
    NOT_IN = 12
    OPEN_PAREN = 13


_LITERALS = {
    ")": _Tok.CLOSE_PAREN,
    ",": _Tok.COMMA,
    "!": _Tok.NOT,
    "==": _Tok.DOUBLE_EQUALS,
    "=": _Tok.EQUALS,
    ">": _Tok.GREATER_THAN,
    "in": _Tok.IN,
    "<": _Tok.LESS_THAN,
    "!=": _Tok.NOT_EQUALS,
    "notin": _Tok.NOT_IN,
    "(": _Tok.OPEN_PAREN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_END = "\x00"  # Go's lexer reads a zero byte at the end of input, and treats a NUL in it the same way
_OPERATOR_TOKENS = {
    _Tok.IN: Operator.IN,
    _Tok.EQUALS: Operator.EQUALS,
    _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Tok.GREATER_THAN: Operator.GREATER_THAN,
    _Tok.LESS_THAN: Operator.LESS_THAN,
    _Tok.NOT_IN: Operator.NOT_IN,
    _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
}


class _Lexer:
    """A port of upstream's lexer, quirks included, so error messages name the same tokens."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def read(self) -> str:
        if self.pos < len(self.text):
            self.pos += 1
            return self.text[self.pos - 1]
        return _END

    def unread(self) -> None:
        self.pos -= 1

    def lex(self) -> tuple[_Tok, str]:
        ch = self.read()
        while ch in _WHITESPACE:
            ch = self.read()
        if ch == _END:
            return _Tok.END, ""
        self.unread()
        return self._special() if ch in _SPECIAL else self._identifier()

    def _identifier(self) -> tuple[_Tok, str]:
        chars = []
        while (ch := self.read()) != _END:
            if ch in _SPECIAL or ch in _WHITESPACE:
                self.unread()
                break
            chars.append(ch)
        literal = "".join(chars)
        return _LITERALS.get(literal, _Tok.IDENTIFIER), literal

    def _special(self) -> tuple[_Tok, str]:
        found: tuple[_Tok, str] | None = None
        buffer = ""
        while (ch := self.read()) != _END:
            if ch not in _SPECIAL:
                self.unread()
                break
            buffer += ch
            if buffer in _LITERALS:
                found = (_LITERALS[buffer], buffer)
            elif found is not None:
                self.unread()
                break
        return found or (_Tok.ERROR, f"error expected: keyword found '{buffer}'")


class _Parser:
    """Upstream's recursive-descent parser: `in`/`notin` are keywords only where an operator goes."""

    def __init__(self, text: str) -> None:
        lexer = _Lexer(text)
        self.items: list[tuple[_Tok, str]] = []
        while True:
            self.items.append(lexer.lex())
            if self.items[-1][0] is _Tok.END:
                break
        self.position = 0

    def lookahead(self, values: bool = True) -> tuple[_Tok, str]:
        return self._as_context(self.items[self.position], values)

    def consume(self, values: bool = True) -> tuple[_Tok, str]:
        self.position += 1
        return self._as_context(self.items[self.position - 1], values)

    @staticmethod
    def _as_context(item: tuple[_Tok, str], values: bool) -> tuple[_Tok, str]:
        if values and item[0] in (_Tok.IN, _Tok.NOT_IN):
            return _Tok.IDENTIFIER, item[1]
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, literal = self.lookahead()
            if tok is _Tok.END:
                return requirements
            if tok not in (_Tok.IDENTIFIER, _Tok.NOT):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            tok, literal = self.consume()
            if tok is _Tok.END:
                return requirements
            if tok is not _Tok.COMMA:
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            after, shown = self.lookahead()
            if after not in (_Tok.IDENTIFIER, _Tok.NOT):
                raise SelectorError(f"found '{shown}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = False
        tok, key = self.consume()
        if tok is _Tok.NOT:
            negated = True
            tok, key = self.consume()
        if tok is not _Tok.IDENTIFIER:
            raise SelectorError(f"found '{key}', expected: identifier")
        if key_errors := qualified_name_errors(key):
            raise SelectorError(_invalid("<nil>", go_quote(key), "; ".join(key_errors)))
        if negated:
            return _new_requirement(key, Operator.DOES_NOT_EXIST, [])
        if self.lookahead()[0] in (_Tok.END, _Tok.COMMA):
            return _new_requirement(key, Operator.EXISTS, [])
        tok, literal = self.consume(values=False)
        op = _OPERATOR_TOKENS.get(tok)
        if op is None:
            raise SelectorError(f"found '{literal}', expected: {_BINARY_OPERATORS}")
        values = self.value_set() if op in (Operator.IN, Operator.NOT_IN) else self.exact_value()
        return _new_requirement(key, op, sorted(values))

    def value_set(self) -> set[str]:
        tok, literal = self.consume()
        if tok is not _Tok.OPEN_PAREN:
            raise SelectorError(f"found '{literal}' expected: '('")
        tok, literal = self.lookahead()
        if tok is _Tok.CLOSE_PAREN:  # "()" is the set holding the empty string
            self.consume()
            return {""}
        if tok not in (_Tok.IDENTIFIER, _Tok.COMMA):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.consume()[0] is not _Tok.CLOSE_PAREN:
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        """A comma-separated list in which an omitted item is the empty string: `(a,,b)`, `(,a)`."""
        values: set[str] = set()
        while True:
            tok, literal = self.consume()
            if tok is _Tok.IDENTIFIER:
                values.add(literal)
                after, shown = self.lookahead()
                if after is _Tok.CLOSE_PAREN:
                    return values
                if after is not _Tok.COMMA:
                    raise SelectorError(f"found '{shown}', expected: ',' or ')'")
            elif tok is _Tok.COMMA:
                if not values:
                    values.add("")
                after = self.lookahead()[0]
                if after is _Tok.CLOSE_PAREN:
                    values.add("")
                    return values
                if after is _Tok.COMMA:
                    values.add("")
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.lookahead()[0] in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, literal = self.consume()
        if tok is _Tok.IDENTIFIER:
            return {literal}
        raise SelectorError(f"found '{literal}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the `?labelSelector=` syntax (labels.Parse); "" selects everything.

    Grammar: requirements separated by `,`, each `key`, `!key`, `key=v`, `key==v`, `key!=v`,
    `key in (v1,v2)`, `key notin (v)`, `key>n` or `key<n`; blanks between tokens are ignored.
    """
    return _sorted_selector(_Parser(text).parse())


# --- field selectors ------------------------------------------------------------------------------


class FieldRequirement(NamedTuple):
    """`field op value`; op is "=" (for both `=` and `==`) or "!=", as upstream's Requirements()."""

    field: str
    operator: str
    value: str


def escape_field_value(value: str) -> str:
    """fields.EscapeValue: backslash-escape `\\`, `,` and `=` so the value survives a round trip."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field terms, in the order upstream keeps them (sorted by their source text).

    A field absent from the set being matched reads as "", so `spec.nodeName=` selects unscheduled
    pods and `x!=y` matches objects without `x`.
    """

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all((fields.get(r.field, "") == r.value) == (r.operator == "=") for r in self.requirements)

    def requires_exact_match(self, field: str) -> str | None:
        """The value an `=` term demands of `field`, else None (how the kubelet's spec.nodeName
        watch can be served from an index)."""
        return next((r.value for r in self.requirements if r.field == field and r.operator == "="), None)

    def __str__(self) -> str:
        return ",".join(f"{r.field}{r.operator}{escape_field_value(r.value)}" for r in self.requirements)


def _split_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash; escapes stay in the terms."""
    if not text:
        return []
    terms, start, escaped = [], 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """At the first operator (the left side has no escapes); `==` is tried before `=`."""
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape_field_value(text: str) -> str:
    if not any(ch in text for ch in "\\,="):
        return text
    out, escaped = [], False
    for ch in text:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            # upstream prints the rune with %v, i.e. as its number
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(text: str) -> FieldSelector:
    """Parse `?fieldSelector=` (fields.ParseSelector): comma-separated `f=v`, `f==v`, `f!=v`, values
    escaped with `\\`; "" (and terms like `=` with neither field nor value) select everything."""
    requirements = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, raw = split
        value = _unescape_field_value(raw)
        if field or value:
            requirements.append(FieldRequirement(field, "!=" if op == "!=" else "=", value))
    return FieldSelector(tuple(requirements))


# --- which fields each resource offers ------------------------------------------------------------

_META = ("metadata.name", "metadata.namespace")
_INVOLVED = tuple(
    f"involvedObject.{f}" for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
)


def _not_supported(label: str) -> str:
    return f"field label not supported: {label}"


def _not_known(label: str) -> str:
    return f'{go_quote(label)} is not a known field selector: only "metadata.name", "metadata.namespace"'


def _not_supported_for_job(label: str) -> str:
    return f"field label {go_quote(label)} not supported for batchv1.Job"


@dataclass(frozen=True)
class _Labels:
    """One field-label conversion function: accepted request labels → the labels `field_set` uses."""

    labels: Mapping[str, str]
    error: Callable[[str], str] = _not_supported


def _same(*labels: str) -> dict[str, str]:
    return {label: label for label in labels}


_DEFAULT_LABELS = _Labels(_same(*_META), _not_known)
_CONVERSIONS: dict[tuple[str, str], _Labels] = {
    ("", "pods"): _Labels(
        _same(
            *_META,
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        )
        | {"spec.host": "spec.nodeName"}  # old v1 clients
    ),
    ("", "nodes"): _Labels(_same("metadata.name", "spec.unschedulable")),
    ("", "replicationcontrollers"): _Labels(_same(*_META, "status.replicas")),
    ("", "events"): _Labels(_same(*_INVOLVED, "reason", "reportingComponent", "source", "type", *_META)),
    ("", "namespaces"): _Labels(_same("status.phase", "metadata.name")),
    ("", "secrets"): _Labels(_same("type", *_META)),
    ("", "services"): _Labels(_same(*_META, "spec.clusterIP", "spec.type")),
    ("events.k8s.io", "events"): _Labels(
        {label.replace("involvedObject.", "regarding."): label for label in _INVOLVED}
        | {"reportingController": "reportingComponent"}
        | _same("reason", "source", "type", *_META)
    ),
    ("batch", "jobs"): _Labels(_same(*_META, "status.successful"), _not_supported_for_job),
    ("certificates.k8s.io", "certificatesigningrequests"): _Labels(_same("metadata.name", "spec.signerName")),
}

# the group a bare plural means when the caller does not say
_BUILTIN_GROUPS = {
    "replicasets": "apps",
    "jobs": "batch",
    "certificatesigningrequests": "certificates.k8s.io",
}


def convert_field_selector(resource: str, selector: FieldSelector, *, group: str | None = None) -> FieldSelector:
    """Check every term names a field `resource` offers and rename it to the label `field_set` uses.

    `group` None means the built-in resource of that plural (core events, batch jobs, apps
    replicasets); pass it for events.k8s.io events and for custom resources, which offer only
    metadata.name and metadata.namespace.  Raises SelectorError with upstream's message at the
    first unsupported term.  Note: apps/v1 registers no conversion for ReplicaSets, so upstream
    rejects `status.replicas` there even though its field set has it.
    """
    if group is None:
        group = _BUILTIN_GROUPS.get(resource, "")
    conversion = _CONVERSIONS.get((group, resource), _DEFAULT_LABELS)
    converted = []
    for requirement in selector.requirements:
        label = conversion.labels.get(requirement.field)
        if label is None:
            raise SelectorError(conversion.error(requirement.field))
        if label or requirement.value:
            converted.append(requirement._replace(field=label))
    return FieldSelector(tuple(converted))


def validate_field_selector(resource: str, selector: FieldSelector, *, group: str | None = None) -> None:
    """Raise SelectorError if `selector` names a field `resource` lacks (see convert_field_selector)."""
    convert_field_selector(resource, selector, group=group)


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    for step in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(step)  # type: ignore[assignment]
    return obj


def _text(obj: Mapping[str, Any], *path: str) -> str:
    value = _get(obj, *path)
    return "" if value is None else str(value)


def _flag(obj: Mapping[str, Any], *path: str) -> str:
    return "true" if _get(obj, *path) is True else "false"


def _count(obj: Mapping[str, Any], *path: str) -> str:
    value = _get(obj, *path)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def _pod_fields(pod: Mapping[str, Any]) -> dict[str, str]:
    ips = _get(pod, "status", "podIPs")
    first_ip = _text(ips[0], "ip") if isinstance(ips, list) and ips else _text(pod, "status", "podIP")
    return {
        "spec.nodeName": _text(pod, "spec", "nodeName"),
        "spec.restartPolicy": _text(pod, "spec", "restartPolicy"),
        "spec.schedulerName": _text(pod, "spec", "schedulerName"),
        "spec.serviceAccountName": _text(pod, "spec", "serviceAccountName"),
        "spec.hostNetwork": _flag(pod, "spec", "hostNetwork"),
        "status.phase": _text(pod, "status", "phase"),
        "status.podIP": first_ip,
        "status.nominatedNodeName": _text(pod, "status", "nominatedNodeName"),
    }


def _event_fields(event: Mapping[str, Any]) -> dict[str, str]:
    """Both vocabularies, from either shape: core v1 (involvedObject, reportingComponent, source)
    and events.k8s.io (regarding, reportingController, deprecatedSource)."""
    if "regarding" in event or str(event.get("apiVersion", "")).startswith("events.k8s.io/"):
        ref, reporter = "regarding", _text(event, "reportingController")
        source = _text(event, "deprecatedSource", "component")
    else:
        ref, reporter = "involvedObject", _text(event, "reportingComponent")
        source = _text(event, "source", "component")
    out = {}
    for label in _INVOLVED:
        field = label.removeprefix("involvedObject.")
        out[label] = out[f"regarding.{field}"] = _text(event, ref, field)
    out.update(
        reason=_text(event, "reason"),
        reportingComponent=reporter,
        reportingController=reporter,
        source=source or reporter,
        type=_text(event, "type"),
    )
    return out


_EXTRACTORS: dict[tuple[str, str], Callable[[Mapping[str, Any]], dict[str, str]]] = {
    ("", "pods"): _pod_fields,
    ("", "events"): _event_fields,
    ("events.k8s.io", "events"): _event_fields,
    ("", "nodes"): lambda o: {"spec.unschedulable": _flag(o, "spec", "unschedulable")},
    ("", "namespaces"): lambda o: {
        "status.phase": _text(o, "status", "phase"),
        "name": _text(o, "metadata", "name"),
    },
    ("", "secrets"): lambda o: {"type": _text(o, "type")},
    ("", "services"): lambda o: {
        "spec.clusterIP": _text(o, "spec", "clusterIP"),
        "spec.type": _text(o, "spec", "type"),
    },
    ("", "replicationcontrollers"): lambda o: {"status.replicas": _count(o, "status", "replicas")},
    ("apps", "replicasets"): lambda o: {"status.replicas": _count(o, "status", "replicas")},
    ("batch", "jobs"): lambda o: {"status.successful": _count(o, "status", "succeeded")},
    ("certificates.k8s.io", "certificatesigningrequests"): lambda o: {
        "spec.signerName": _text(o, "spec", "signerName")
    },
    # upstream's "name" on volumes and claims is a kept-for-compatibility bug
    ("", "persistentvolumes"): lambda o: {"name": _text(o, "metadata", "name")},
    ("", "persistentvolumeclaims"): lambda o: {"name": _text(o, "metadata", "name")},
}


def field_set(resource: str, obj: Mapping[str, Any], *, group: str | None = None) -> dict[str, str]:
    """The fields a field selector can match on `obj`, a `resource` object in its JSON form.

    Every object offers metadata.name, and metadata.namespace when it has one; built-in resources
    add upstream's selectable fields (GetAttrs).  Keys are the labels `convert_field_selector`
    produces; events also carry the events.k8s.io spellings (`regarding.*`,
    `reportingController`), so a selector validated against either API matches either shape.
    `group` None means the built-in resource of that plural.
    """
    if group is None:
        group = _BUILTIN_GROUPS.get(resource, "")
    fields = {"metadata.name": _text(obj, "metadata", "name")}
    if namespace := _text(obj, "metadata", "namespace"):
        fields["metadata.namespace"] = namespace
    extractor = _EXTRACTORS.get((group, resource))
    if extractor is not None:
        fields.update(extractor(obj))
    return fields
