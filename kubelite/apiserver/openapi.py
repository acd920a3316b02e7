"""The OpenAPI v3 documents served at `/openapi/v3` and `/openapi/v3/<api|apis/group>/<version>`.

Why this matters: kubectl 1.32 refuses `apply`/`create -f`/`replace` (default `--validate=strict`)
unless the per-group-version document has, for the object's kind, a PATCH operation carrying
`x-kubernetes-group-version-kind` and a `fieldValidation` query parameter; `kubectl apply` computes a
strategic merge patch from these schemas only when that PATCH operation lists
`application/strategic-merge-patch+json`; `kubectl explain` renders `components.schemas` found by
`x-kubernetes-group-version-kind`.

Nothing here is hand-typed schema: `components.schemas` are the official definitions from
kubernetes-validate (JSON Schema) converted to OpenAPI 3.0 the way upstream publishes them
(`$ref` → `#/components/schemas/…`, wrapped in `allOf` when it has siblings; nullable type lists
collapsed; IntOrString as `format: int-or-string` + `oneOf[integer, string]`; the `enum` the
converter adds to `apiVersion`/`kind` dropped), and `paths` are synthesised from the resource
registry (verbs and subresources decide which operations exist).

Contract:
* Documents are built lazily per group-version and cached as bytes with their ETag, the uppercase
  hex SHA-512 of the bytes (upstream's `computeETag`).  The index needs every hash, so the first
  `index()` builds every document once: about 40 ms for the 21 built-in group-versions (3.4 MB in
  all; `api/v1` is 0.9 MB), then microseconds per request.
* A cached document is rebuilt when the registry's resources for its group-version change (compared
  on every access, which costs one scan of the registry) or after `invalidate()`.
* Non-built-in group-versions (CRDs) plug in through `register_extension`: the extension supplies
  already-converted schemas and says whether strategic merge patch is offered (never for CRDs).
* Not thread-safe; call from the event loop only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import orjson

from kubelite.machinery.resources import Resource, ResourceRegistry, Subresource
from kubelite.machinery.schema import REF_PREFIX, GroupVersionKind, Schemas

SERVER_VERSION = "v1.32.4+kubelite"
COMPONENTS_PREFIX = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"

PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
SMP = "application/strategic-merge-patch+json"
OBJECT_MEDIA = ("application/json", "application/vnd.kubernetes.protobuf", "application/yaml")
STREAM_MEDIA = (
    *OBJECT_MEDIA,
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
)


# -- JSON Schema → OpenAPI 3.0 -------------------------------------------------------------------


def convert_definition(name: str, definition: dict[str, Any]) -> dict[str, Any]:
    """One kubernetes-validate definition in the form upstream's OpenAPI v3 documents carry it."""
    out = convert_schema(definition)
    for prop in ("apiVersion", "kind"):
        # the JSON-Schema converter pins these with an enum; upstream's OpenAPI does not
        out.get("properties", {}).get(prop, {}).pop("enum", None)
    if name == INT_OR_STRING:
        out["format"] = "int-or-string"
        out["oneOf"] = sorted(out.get("oneOf", []), key=lambda alt: alt.get("type") != "integer")
    return out


def convert_schema(node: Any) -> Any:
    """Convert one JSON Schema node; x-kubernetes-* extensions are copied verbatim, not descended."""
    if isinstance(node, list):
        return [convert_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            continue
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if types:
                out["type"] = types[0] if len(types) == 1 else types
        elif key in ("properties", "patternProperties", "definitions"):
            out[key] = {prop: convert_schema(sub) for prop, sub in value.items()}
        elif key.startswith("x-kubernetes-") or key in ("enum", "default", "example"):
            out[key] = value
        else:
            out[key] = convert_schema(value)
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = {"$ref": COMPONENTS_PREFIX + ref.removeprefix(REF_PREFIX)}
        return {"allOf": [target], **out} if out else target
    return out
    return out


def schema_refs(node: Any, out: set[str] | None = None) -> set[str]:
    """Names of the component schemas a (converted) node refers to."""
    out = set() if out is None else out
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(COMPONENTS_PREFIX):
                out.add(value[len(COMPONENTS_PREFIX) :])
            elif key == "properties" and isinstance(value, dict):
                for sub in value.values():
                    schema_refs(sub, out)
            elif not key.startswith("x-kubernetes-"):
                schema_refs(value, out)
    elif isinstance(node, list):
        for item in node:
            schema_refs(item, out)
    return out


# -- parameters ------------------------------------------------------------------------------------

_BOOLEAN = frozenset(
    "allowWatchBookmarks follow force ignoreStoreReadErrorWithClusterBreakingPotential "
    "insecureSkipTLSVerifyBackend orphanDependents previous sendInitialEvents stderr stdin stdout tty "
    "watch".split()
)
_INTEGER = frozenset(
    "gracePeriodSeconds limit limitBytes ports sinceSeconds tailLines timeoutSeconds".split()
)
_DESCRIPTIONS = {
    "allowWatchBookmarks": 'allowWatchBookmarks requests watch events with type "BOOKMARK".',
    "command": "Command is the remote command to execute. Not executed within a shell.",
    "container": "The container in which to run the command, or whose logs to stream.",
    "continue": "The continue token returned by a previous list call with identical parameters.",
    "dryRun": "When present, modifications are not persisted. Valid values are: - All",
    "fieldManager": "fieldManager is a name associated with the actor or entity making these changes.",
    "fieldSelector": "A selector to restrict the list of returned objects by their fields.",
    "fieldValidation": "What to do with unknown or duplicate fields: Ignore, Warn (default) or Strict.",
    "follow": "Follow the log stream of the pod.",
    "force": 'Force is going to "force" Apply requests. Must be unset for non-apply patch requests.',
    "gracePeriodSeconds": "The duration in seconds before the object should be deleted.",
    "ignoreStoreReadErrorWithClusterBreakingPotential": "Delete even when the object cannot be read.",
    "insecureSkipTLSVerifyBackend": "Do not verify the serving certificate of the backend.",
    "labelSelector": "A selector to restrict the list of returned objects by their labels.",
    "limit": "limit is a maximum number of responses to return for a list call.",
    "limitBytes": "The number of bytes to read from the server before terminating the log output.",
    "orphanDependents": "Deprecated: please use the PropagationPolicy.",
    "path": "Path is the URL path to use for the current proxy request.",
    "ports": "List of ports to forward.",
    "pretty": "If 'true', then the output is pretty printed.",
    "previous": "Return previous terminated container logs.",
    "propagationPolicy": "How garbage collection will be performed: Orphan, Background or Foreground.",
    "resourceVersion": "resourceVersion constrains which resource versions a request may be served from.",
    "resourceVersionMatch": "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    "sendInitialEvents": "With watch=true, begin the stream with synthetic events for the current state.",
    "sinceSeconds": "A relative time in seconds before the current time from which to show logs.",
    "stderr": "Redirect the standard error stream of the pod for this call.",
    "stdin": "Redirect the standard input stream of the pod for this call.",
    "stdout": "Redirect the standard output stream of the pod for this call.",
    "stream": "Which container log stream to return to the client: All, Stdout or Stderr.",
    "tailLines": "The number of lines from the end of the logs to show.",
    "timeoutSeconds": "Timeout for the list/watch call.",
    "timestamps": "Add an RFC3339 timestamp at the beginning of every line of log output.",
    "tty": "TTY if true indicates that a tty will be allocated for the call.",
    "watch": "Watch for changes to the described resources and return them as a stream of notifications.",
}

LIST_PARAMS = tuple(
    "allowWatchBookmarks continue fieldSelector labelSelector limit resourceVersion resourceVersionMatch "
    "sendInitialEvents timeoutSeconds watch".split()
)
WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
PATCH_PARAMS = (*WRITE_PARAMS, "force")
DELETE_PARAMS = tuple(
    "dryRun gracePeriodSeconds ignoreStoreReadErrorWithClusterBreakingPotential orphanDependents "
    "propagationPolicy".split()
)
DELETE_COLLECTION_PARAMS = tuple(sorted({*DELETE_PARAMS, *LIST_PARAMS} - {"allowWatchBookmarks", "watch"}))
LOG_PARAMS = tuple(
    "container follow insecureSkipTLSVerifyBackend limitBytes previous sinceSeconds stream tailLines "
    "timestamps".split()
)
# connect subresources take their options as query parameters; their *Options kinds have no
# published schema, so the parameter names are listed here.
CONNECT_PARAMS = {
    "exec": ("command", "container", "stderr", "stdin", "stdout", "tty"),
    "attach": ("container", "stderr", "stdin", "stdout", "tty"),
    "portforward": ("ports",),
    "proxy": ("path",),
}


def query(*names: str) -> list[dict[str, Any]]:
    return [_param(name, "query") for name in names]


def _param(name: str, where: str, description: str = "") -> dict[str, Any]:
    kind = "boolean" if name in _BOOLEAN else "integer" if name in _INTEGER else "string"
    out: dict[str, Any] = {"description": description or _DESCRIPTIONS[name], "in": where, "name": name}
    out["schema"] = {"type": kind, "uniqueItems": True}
    if where == "path":
        out["required"] = True
    return out


NAMESPACE_PARAM = _param("namespace", "path", "object name and auth scope, such as for teams and projects")


# -- operations ------------------------------------------------------------------------------------


class _OpSpec(NamedTuple):
    """One kind of operation: enabled by `verb`, placed at `where`, shaped by `body`/`answer`."""

    verb: str
    where: str  # collection | all | item | watchlist | watch | watchall | sub
    method: str
    action: str
    op_id: str  # formatted with c (group-version infix), ns ("Namespaced" or ""), k (kind), s (subresource)
    description: str
    params: tuple[str, ...]
    body: str  # "" | object | patch | delete
    answer: str  # see _ANSWERS


_WATCHLIST = (
    "watch individual changes to a list of {k}. deprecated: use the 'watch' parameter with a list operation "
    "instead."
)
_WATCH = (
    "watch changes to an object of kind {k}. deprecated: use the 'watch' parameter with a list operation "
    "instead, filtered to a single item with the 'fieldSelector' parameter."
)


def _spec(
    verb_where_method_action: str,
    op_id: str,
    description: str,
    params: tuple[str, ...] = (),
    body: str = "",
    answer: str = "object",
) -> _OpSpec:
    verb, where, method, action = verb_where_method_action.split()
    return _OpSpec(
        verb, where, method, "" if action == "-" else action, op_id, description, params, body, answer
    )


# fmt: off
RESOURCE_OPS = (
    _spec("list collection get list", "list{c}{ns}{k}", "list or watch objects of kind {k}", LIST_PARAMS,
          answer="list"),
    _spec("list all get list", "list{c}{k}ForAllNamespaces", "list or watch objects of kind {k}", LIST_PARAMS,
          answer="list"),
    _spec("create collection post post", "create{c}{ns}{k}", "create a {k}", WRITE_PARAMS, "object",
          "created"),
    _spec("deletecollection collection delete deletecollection", "delete{c}Collection{ns}{k}",
          "delete collection of {k}", DELETE_COLLECTION_PARAMS, "delete", "status"),
    _spec("get item get get", "read{c}{ns}{k}", "read the specified {k}"),
    _spec("update item put put", "replace{c}{ns}{k}", "replace the specified {k}", WRITE_PARAMS, "object",
          "updated"),
    _spec("patch item patch patch", "patch{c}{ns}{k}", "partially update the specified {k}", PATCH_PARAMS,
          "patch", "updated"),
    _spec("delete item delete delete", "delete{c}{ns}{k}", "delete a {k}", DELETE_PARAMS, "delete",
          "deleted"),
    _spec("watch watchlist get watchlist", "watch{c}{ns}{k}List", _WATCHLIST, LIST_PARAMS, answer="event"),
    _spec("watch watch get watch", "watch{c}{ns}{k}", _WATCH, LIST_PARAMS, answer="event"),
    _spec("watch watchall get watchlist", "watch{c}{k}ListForAllNamespaces", _WATCHLIST, LIST_PARAMS,
          answer="event"),
)
SUBRESOURCE_OPS = (
    _spec("get sub get get", "read{c}{ns}{k}{s}", "read {sub} of the specified {k}"),
    _spec("update sub put put", "replace{c}{ns}{k}{s}", "replace {sub} of the specified {k}", WRITE_PARAMS,
          "object", "updated"),
    _spec("patch sub patch patch", "patch{c}{ns}{k}{s}", "partially update {sub} of the specified {k}",
          PATCH_PARAMS, "patch", "updated"),
    _spec("create sub post post", "create{c}{ns}{k}{s}", "create {sub} of a {k}", WRITE_PARAMS, "object",
          "created"),
)
LOG_OP = _spec("get sub get get", "read{c}{ns}{k}{s}", "read log of the specified {k}", LOG_PARAMS,
               answer="text")
DISCOVERY_OP = _spec("- - get -", "get{c}APIResources", "get available resources", answer="resources")
# fmt: on

# answer → (status codes, media types, schema: "kind"/"list" of the operation, a definition, or "" for text)
_ANSWERS: dict[str, tuple[dict[str, str], tuple[str, ...], str]] = {
    "object": ({"200": "OK"}, OBJECT_MEDIA, "kind"),
    "created": ({"200": "OK", "201": "Created", "202": "Accepted"}, OBJECT_MEDIA, "kind"),
    "updated": ({"200": "OK", "201": "Created"}, OBJECT_MEDIA, "kind"),
    "list": ({"200": "OK"}, STREAM_MEDIA, "list"),
    "event": ({"200": "OK"}, STREAM_MEDIA, META + "WatchEvent"),
    "status": ({"200": "OK"}, OBJECT_MEDIA, META + "Status"),
    "deleted": ({"200": "OK", "202": "Accepted"}, OBJECT_MEDIA, META + "Status"),
    "resources": ({"200": "OK"}, OBJECT_MEDIA, META + "APIResourceList"),
    "text": ({"200": "OK"}, (*OBJECT_MEDIA, "text/plain"), ""),
    "stream": ({"200": "OK"}, ("*/*",), ""),
}


@dataclass(frozen=True)
class SchemaExtension:
    """Schemas a non-built-in group-version brings, already in OpenAPI v3 form.

    `kinds` maps each served kind (and its list kind) to its definition name in `definitions`;
    references to meta/v1 types (ObjectMeta, ListMeta, Status, …) resolve against the built-ins.
    """

    definitions: dict[str, dict[str, Any]]
    kinds: dict[str, str]
    strategic_merge: bool = False


@dataclass
class _Built:
    fingerprint: Any
    body: bytes
    etag: str


@dataclass
class _Doc:
    """The paths of one group-version document being built, and the schemas they reference."""

    group: str
    version: str
    refs: set[str] = field(default_factory=set)
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def names(self) -> tuple[str, str]:
        """(`AppsV1`/`RbacAuthorizationV1`/`CoreV1`, `apps_v1`/`rbacAuthorization_v1`/`core_v1`)."""
        parts = self.group.removesuffix(".k8s.io").split(".") if self.group else ["core"]
        camel = "".join(p.capitalize() for p in parts) + self.version.capitalize()
        return camel, parts[0] + "".join(p.capitalize() for p in parts[1:]) + "_" + self.version

    def ref(self, name: str) -> dict[str, str]:
        self.refs.add(name)
        return {"$ref": COMPONENTS_PREFIX + name}

    def content(self, schema: str, media: tuple[str, ...]) -> dict[str, Any]:
        body = self.ref(schema) if schema else {"type": "string"}
        return {m: {"schema": body} for m in media}

    def operation(
        self,
        spec: _OpSpec,
        words: dict[str, str],
        gvk: GroupVersionKind | None,
        schemas: dict[str, str],
        *,
        patch_media: tuple[str, ...] = PATCH_TYPES,
        params: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {
            "description": spec.description.format(**words),
            "operationId": spec.op_id.format(**words),
        }
        if spec.params or params:
            op["parameters"] = params if params is not None else query(*spec.params)
        if spec.body == "object":
            op["requestBody"] = {"content": self.content(schemas["kind"], ("*/*",)), "required": True}
        elif spec.body == "patch":
            op["requestBody"] = {"content": self.content(META + "Patch", patch_media), "required": True}
        elif spec.body == "delete":
            op["requestBody"] = {"content": self.content(META + "DeleteOptions", ("*/*",))}
        codes, media, which = _ANSWERS[spec.answer]
        schema = schemas[which] if which in ("kind", "list") else which
        op["responses"] = {
            code: {"content": self.content(schema, media), "description": text}
            for code, text in codes.items()
        }
        op["responses"]["401"] = {"description": "Unauthorized"}
        op["tags"] = [self.names()[1]]
        if spec.action:
            op["x-kubernetes-action"] = spec.action
        if gvk is not None:
            op["x-kubernetes-group-version-kind"] = {
                "group": gvk.group,
                "kind": gvk.kind,
                "version": gvk.version,
            }
        return op

    def add(self, path: str, method: str, op: dict[str, Any], path_params: list[dict[str, Any]]) -> None:
        entry = self.paths.setdefault(self.prefix + path, {"parameters": [*path_params, *query("pretty")]})
        entry[method] = op


# -- the documents ---------------------------------------------------------------------------------


class OpenApiV3:
    """Builds, caches and serves the OpenAPI v3 index and per-group-version documents."""

    def __init__(
        self, registry: ResourceRegistry, schemas: Schemas, *, version: str = SERVER_VERSION
    ) -> None:
        self.registry = registry
        self.schemas = schemas
        self.info = {"title": "Kubernetes", "version": version}
        self._converted: dict[str, dict[str, Any]] = {}
        self._refs: dict[str, set[str]] = {}
        # (group, version) → (generation, extension, refs of each of its definitions)
        self._extensions: dict[tuple[str, str], tuple[int, SchemaExtension, dict[str, set[str]]]] = {}
        self._generation = 0
        self._docs: dict[tuple[str, str], _Built] = {}
        self._index: tuple[Any, bytes] | None = None

    # public API

    def index(self) -> bytes:
        """`{"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=…"},…}}` for every GV."""
        entries = {}
        for group, version in self.group_versions():
            path = f"apis/{group}/{version}" if group else f"api/{version}"
            etag = self._built(group, version).etag
            entries[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={etag}"}
        if self._index is None or self._index[0] != entries:
            self._index = (entries, orjson.dumps({"paths": entries}, option=orjson.OPT_SORT_KEYS))
        return self._index[1]

    def document(self, path: str) -> tuple[bytes, str] | None:
        """The document for `api/v1` or `apis/<group>/<version>` (a leading `/openapi/v3/` and a
        `?hash=` query are tolerated) as (bytes, etag), or None when no such group-version is served."""
        parts = path.split("?", 1)[0].strip("/").removeprefix("openapi/v3/").split("/")
        if len(parts) == 2 and parts[0] == "api":
            key = ("", parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            key = (parts[1], parts[2])
        else:
            return None
        if key not in self.group_versions():
            return None
        built = self._built(*key)
        return built.body, built.etag

    def invalidate(self, group: str | None = None, version: str | None = None) -> None:
        """Forget cached documents (all, or one group-version's)."""
        if group is None:
            self._docs.clear()
        else:
            self._docs.pop((group, version or ""), None)
        self._index = None

    def register_extension(self, group: str, version: str, extension: SchemaExtension) -> None:
        """Serve `extension`'s schemas for a non-built-in group-version (the CRD seam)."""
        self._generation += 1
        refs = {name: schema_refs(definition) for name, definition in extension.definitions.items()}
        self._extensions[(group, version)] = (self._generation, extension, refs)
        self.invalidate(group, version)

    def remove_extension(self, group: str, version: str) -> None:
        self._extensions.pop((group, version), None)
        self.invalidate(group, version)

    def group_versions(self) -> list[tuple[str, str]]:
        out = [(group, version) for group, versions in self.registry.groups() for version in versions]
        return out + [gv for gv in self._extensions if gv not in out]

    def build(self, group: str, version: str) -> dict[str, Any]:
        """The document as a dict (uncached; `document()` serves the cached bytes)."""
        doc = _Doc(group, version)
        camel, _ = doc.names()
        doc.paths[doc.prefix + "/"] = {"get": doc.operation(DISCOVERY_OP, {"c": camel}, None, {})}
        for resource in sorted(self.registry.in_group_version(group, version), key=lambda r: r.plural):
            self._resource_paths(doc, resource)
        return {
            "components": {"schemas": self._closure(doc.refs, (group, version))},
            "info": self.info,
            "openapi": "3.0.0",
            "paths": doc.paths,
        }

    # caching

    def _built(self, group: str, version: str) -> _Built:
        registered = self._extensions.get((group, version))
        fingerprint = (tuple(self.registry.in_group_version(group, version)), registered and registered[0])
        built = self._docs.get((group, version))
        if built is None or built.fingerprint != fingerprint:
            body = orjson.dumps(self.build(group, version), option=orjson.OPT_SORT_KEYS)
            built = _Built(fingerprint, body, hashlib.sha512(body).hexdigest().upper())
            self._docs[(group, version)] = built
        return built

    # components

    def _definition(self, name: str, gv: tuple[str, str]) -> tuple[dict[str, Any], set[str]] | None:
        registered = self._extensions.get(gv)
        if registered is not None and name in registered[1].definitions:
            return registered[1].definitions[name], registered[2][name]
        if name not in self._converted:
            source = self.schemas.definitions.get(name)
            if source is None:
                return None
            self._converted[name] = converted = convert_definition(name, source)
            self._refs[name] = schema_refs(converted)
        return self._converted[name], self._refs[name]

    def _closure(self, roots: set[str], gv: tuple[str, str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        pending = list(roots)
        while pending:
            name = pending.pop()
            found = None if name in out else self._definition(name, gv)
            if found is not None:
                out[name], refs = found
                pending.extend(refs - out.keys())
        return out

    def _schema_name(self, gvk: GroupVersionKind) -> str | None:
        registered = self._extensions.get((gvk.group, gvk.version))
        if registered is not None and gvk.kind in registered[1].kinds:
            return registered[1].kinds[gvk.kind]
        return self.schemas.definition_name(gvk)

    # paths

    def _resource_paths(self, doc: _Doc, r: Resource) -> None:
        gvk = GroupVersionKind(r.group, r.version, r.kind)
        kind_schema = self._schema_name(gvk)
        if kind_schema is None:
            return  # nothing to describe it with (e.g. metrics.k8s.io): no paths rather than dangling refs
        schemas = {"kind": kind_schema, "list": self._schema_name(replace(gvk, kind=r.list_kind)) or ""}
        registered = self._extensions.get((r.group, r.version))
        patch_media = tuple(
            m for m in PATCH_TYPES if m != SMP or not registered or registered[1].strategic_merge
        )
        base = f"/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"/{r.plural}"
        coll_params = [NAMESPACE_PARAM] if r.namespaced else []
        item_params = [_param("name", "path", f"name of the {r.kind}"), *coll_params]
        places = {
            "collection": (base, coll_params),
            "item": (base + "/{name}", item_params),
            "watchlist": ("/watch" + base, coll_params),
            "watch": ("/watch" + base + "/{name}", item_params),
        }
        if r.namespaced:
            places |= {"all": (f"/{r.plural}", []), "watchall": (f"/watch/{r.plural}", [])}
        words = {
            "c": doc.names()[0],
            "ns": "Namespaced" if r.namespaced else "",
            "k": r.kind,
            "s": "",
            "sub": "",
        }
        for spec in RESOURCE_OPS:
            if spec.verb in r.verbs and spec.where in places and (spec.answer != "list" or schemas["list"]):
                path, params = places[spec.where]
                doc.add(
                    path,
                    spec.method,
                    doc.operation(spec, words, gvk, schemas, patch_media=patch_media),
                    params,
                )
        for sub in r.subresources:
            sub_gvk = GroupVersionKind(
                r.group if sub.group is None else sub.group, sub.version or r.version, sub.kind or r.kind
            )
            sub_words = {**words, "s": sub.name.capitalize(), "sub": sub.name}
            path = places["item"][0] + "/" + sub.name
            if sub.name in CONNECT_PARAMS:
                self._connect_paths(doc, sub, sub_gvk, path, item_params, sub_words)
                continue
            sub_schema = self._schema_name(sub_gvk)
            if sub_schema is None:
                continue
            if sub.name == "log":
                doc.add(path, "get", doc.operation(LOG_OP, sub_words, sub_gvk, {}), item_params)
                continue
            for spec in SUBRESOURCE_OPS:
                if spec.verb in sub.verbs:
                    op = doc.operation(
                        spec, sub_words, sub_gvk, {"kind": sub_schema}, patch_media=patch_media
                    )
                    doc.add(path, spec.method, op, item_params)

    def _connect_paths(
        self,
        doc: _Doc,
        sub: Subresource,
        gvk: GroupVersionKind,
        path: str,
        item_params: list[dict[str, Any]],
        words: dict[str, str],
    ) -> None:
        """exec/attach/portforward/proxy: `connect` operations, their options as query parameters."""
        methods = {"get": "get", "create": "post", "update": "put", "patch": "patch", "delete": "delete"}
        chosen = [m for verb, m in methods.items() if verb in sub.verbs]
        variants = [(path, item_params, "", query(*CONNECT_PARAMS[sub.name]))]
        if sub.name == "proxy":
            chosen += ["head", "options"]
            path_param = _param("path", "path", "path to the resource")
            variants.append((path + "/{path}", [*item_params, path_param], "WithPath", query("path")))
        for variant, params, suffix, options in variants:
            for method in chosen:
                op_id = f"connect{{c}}{method.capitalize()}{{ns}}{{k}}{{s}}{suffix}"
                spec = _spec(
                    f"- sub {method} connect",
                    op_id,
                    f"connect {method.upper()} requests to {{sub}} of {{k}}",
                    answer="stream",
                )
                doc.add(variant, method, doc.operation(spec, words, gvk, {}, params=options), params)
