"""REST verbs on resources: the HTTP edge of the object store.

Each handler parses what the request says (path, query, body, media types), calls the
`ObjectStore`, and writes the answer in the form the client asked for.  Errors leave as `ApiError`
and are turned into `metav1.Status` by the app's middleware.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from kubelite.apiserver import eviction, negotiation, podsubresources, tables
from kubelite.apiserver.admission.storage import admit_storage
from kubelite.apiserver.admission.tolerations import DefaultTolerationSeconds
from kubelite.apiserver.auth.serviceaccounts import TokenIssuer, store_lookup
from kubelite.apiserver.kubeletproxy import STREAMING_SUBRESOURCES, KubeletProxy
from kubelite.apiserver.metrics.api import METRICS_GROUP, MetricsApi
from kubelite.apiserver.negotiation import ResponseForm
from kubelite.apiserver.objects import DeleteOptions, ObjectStore, WriteOptions
from kubelite.apiserver.requestinfo import RequestInfo
from kubelite.apiserver.watch import serve_watch
from kubelite.machinery import errors, patch, selectors, validation
from kubelite.machinery.conversion import convert
from kubelite.machinery.errors import ApiError
from kubelite.machinery.resources import Resource, ResourceRegistry
from kubelite.machinery.schema import GroupVersionKind, Schemas
from kubelite.storage.cache import Entry

# the resource as the client addresses it (its version may differ from the stored one)
VIEW_KEY = web.RequestKey("view", Resource)

FIELD_VALIDATION_VALUES = ("Strict", "Warn", "Ignore")


class ResourceHandlers:
    def __init__(
        self, store: ObjectStore, registry: ResourceRegistry, schemas: Schemas, kubelet: KubeletProxy | None = None
    ) -> None:
        self.store = store
        self.registry = registry
        self.schemas = schemas
        self.kubelet = kubelet
        self.metrics: MetricsApi | None = None  # metrics.k8s.io, computed (set by the ApiServer)
        self.default_tolerations = DefaultTolerationSeconds()  # pod admission (set by the ApiServer)
        self.token_issuer = TokenIssuer(store_lookup(store, registry))  # serviceaccounts/token (keys: the ApiServer)

    # -- dispatch ---------------------------------------------------------------------------------

    async def handle(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        resource = self.registry.get(info.group, info.version, info.plural)
        if resource is None:
            raise errors.path_not_found()
        if info.namespace is not None and not resource.namespaced:
            raise errors.path_not_found()
        request[VIEW_KEY] = resource
        if resource.group == METRICS_GROUP and self.metrics is not None:
            return await self.metrics.handle(request, resource, info)
        if resource.storage_version is not None:
            group = resource.storage_group if resource.storage_group is not None else resource.group
            stored = self.registry.get(group, resource.storage_version, resource.plural)
            assert stored is not None
            resource = stored
        namespace = info.namespace if resource.namespaced else None
        method = request.method
        if info.subresource:
            return await self._subresource(request, resource, namespace, info)
        is_watch = info.legacy_watch or request.query.get("watch") in ("true", "1")
        if resource.plural == "bindings" and not resource.group and info.name is None and method == "POST":
            return await self._bind(request, namespace, None)
        if info.name is None:
            if method == "GET":
                if is_watch:
                    return await serve_watch(request, self.store.cache, resource, namespace, None, _view(request))
                return self.list(request, resource, namespace)
            if method == "POST":
                return await self.create(request, resource, namespace)
            if method == "DELETE":
                return await self.delete_collection(request, resource, namespace)
            raise errors.method_not_supported(resource.plural, resource.group, method.lower())
        if method == "GET":
            if is_watch:
                return await serve_watch(request, self.store.cache, resource, namespace, info.name, _view(request))
            return self.get(request, resource, namespace, info.name)
        if method == "PUT":
            return await self.update(request, resource, namespace, info.name, "")
        if method == "PATCH":
            return await self.patch(request, resource, namespace, info.name, "")
        if method == "DELETE":
            return await self.delete(request, resource, namespace, info.name)
        raise errors.method_not_supported(resource.plural, resource.group, method.lower())

    async def _subresource(
        self, request: web.Request, resource: Resource, namespace: str | None, info: RequestInfo
    ) -> web.StreamResponse:
        sub = resource.subresource(info.subresource)
        assert info.name is not None
        if sub is None:
            raise errors.path_not_found()
        method = request.method
        if sub.name == "status":
            if method == "GET":
                return self.get(request, resource, namespace, info.name)
            if method == "PUT":
                return await self.update(request, resource, namespace, info.name, "status")
            if method == "PATCH":
                return await self.patch(request, resource, namespace, info.name, "status")
        elif sub.name == "finalize" and method == "PUT":
            return await self.update(request, resource, namespace, info.name, "finalize")
        elif sub.name == "scale":
            return await self._scale(request, resource, namespace, info.name)
        elif sub.name == "token" and resource.plural == "serviceaccounts" and not resource.group and method == "POST":
            body = await self._read_any(request)
            return _json(self.token_issuer.create(namespace or "", info.name, body), status=201)
        elif resource.plural == "pods" and not resource.group and namespace is not None:
            if sub.name == "binding" and method == "POST":
                return await self._bind(request, namespace, info.name)
            if sub.name == "eviction" and method == "POST":
                body, dry_run = await self._read_any(request), self._write_options(request).dry_run
                answer = await eviction.evict(self.store, self.registry, namespace, info.name, body, dry_run=dry_run)
                return _json(answer, status=201)
            if sub.name in STREAMING_SUBRESOURCES and self.kubelet is not None:
                return await self.kubelet.serve(request, sub.name, namespace, info.name)
        raise errors.method_not_supported(f"{resource.plural}/{sub.name}", resource.group, method.lower())

    # -- reads ------------------------------------------------------------------------------------

    def get(self, request: web.Request, resource: Resource, namespace: str | None, name: str) -> web.Response:
        entry = self.store.get_entry(resource, namespace, name)
        form = negotiation.response_form(request.headers.get("Accept"))
        view = _view(request)
        if view is not resource:
            entry = _converted(entry, view)
        if form.shape == "object":
            return _raw_json(entry.data)
        if form.shape == "partial":
            return _json(_partial(entry.obj, form))
        return _json(self._table(request, resource, [entry.obj], str(entry.revision), None, form))

    def list(self, request: web.Request, resource: Resource, namespace: str | None) -> web.Response:
        query = request.query
        entries = self._select(resource, self.store.list_entries(resource, namespace), query)
        revision = str(self.store.cache.revision)
        view = _view(request)
        if view is not resource:
            entries = [_converted(e, view) for e in entries]
        continue_token = None
        start = _decode_continue(query.get("continue"))
        if start is not None:
            entries = [e for e in entries if e.key > start]
        limit = _int_param(query, "limit")
        remaining = 0
        if limit and limit > 0 and len(entries) > limit:
            remaining = len(entries) - limit
            entries = entries[:limit]
            continue_token = _encode_continue(entries[-1].key, revision)
        form = negotiation.response_form(request.headers.get("Accept"))
        if form.shape == "table":
            return _json(self._table(request, resource, [e.obj for e in entries], revision, continue_token, form))
        if form.shape == "partial":
            return _json(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": form.api_version,
                    "metadata": _list_meta(revision, continue_token, remaining),
                    "items": [_partial(e.obj, form) for e in entries],
                }
            )
        head = {
            "kind": view.list_kind,
            "apiVersion": view.api_version,
            "metadata": _list_meta(revision, continue_token, remaining),
        }
        head_bytes = orjson.dumps(head)
        body = head_bytes[:-1] + b',"items":[' + b",".join(e.data for e in entries) + b"]}"
        return _raw_json(body)

    def _select(self, resource: Resource, entries: list[Entry], query: Any) -> list[Entry]:
        matcher = ObjectMatcher.from_query(resource, query)
        if matcher.everything:
            return entries
        return [e for e in entries if matcher.matches(e.obj)]

    def _table(
        self,
        request: web.Request,
        resource: Resource,
        objects: list[dict[str, Any]],
        revision: str,
        continue_token: str | None,
        form: ResponseForm,
    ) -> dict[str, Any]:
        include = request.query.get("includeObject", "Metadata")
        return tables.build_table(
            resource.group,
            resource.plural,
            objects,
            include_object=include,
            resource_version=revision,
            continue_token=continue_token,
            now=datetime.now(UTC),
            api_version=form.api_version,
        )

    # -- writes -----------------------------------------------------------------------------------

    async def create(self, request: web.Request, resource: Resource, namespace: str | None) -> web.Response:
        if "create" not in resource.verbs or not resource.stored:
            raise errors.method_not_supported(resource.plural, resource.group, "create")
        view = _view(request)
        obj = await self._read_object(request, view)
        meta = obj.get("metadata") or {}
        if resource.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        options = self._write_options(request)
        obj = self._check_fields(request, view, obj, options)
        if resource.plural == "pods" and not resource.group:
            self.default_tolerations.admit(obj)
        elif resource.plural in ("persistentvolumeclaims", "persistentvolumes") and not resource.group:
            admit_storage(resource.plural, obj, self._storage_classes())
        created = await self.store.create(resource, namespace, convert(obj, resource.api_version), options)
        return _json(convert(created, view.api_version), status=201, warnings=options.warnings)

    async def update(
        self, request: web.Request, resource: Resource, namespace: str | None, name: str, subresource: str
    ) -> web.Response:
        view = _view(request)
        obj = await self._read_object(request, view)
        meta = obj.get("metadata") or {}
        if resource.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        options = self._write_options(request)
        obj = self._check_fields(request, view, obj, options)
        updated = await self.store.update(
            resource, namespace, name, convert(obj, resource.api_version), options, subresource=subresource
        )
        return _json(convert(updated, view.api_version), warnings=options.warnings)

    async def patch(
        self, request: web.Request, resource: Resource, namespace: str | None, name: str, subresource: str
    ) -> web.Response:
        patch_type = negotiation.media_type(request.headers.get("Content-Type"))
        raw = await _read_body(request)
        options = self._write_options(request)
        view = _view(request)
        apply = self._patcher(view, patch_type, raw)

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            patched = apply(convert(current, view.api_version))
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch did not result in an object")
            patched = self._check_fields(request, view, patched, options)
            return convert(patched, resource.api_version)

        # a missing object is a 404 for every patch type but server-side apply (not served yet)
        self.store.get_entry(resource, namespace, name)
        updated = await self.store.guaranteed_update(
            resource, namespace, name, mutate, options, subresource=subresource
        )
        return _json(convert(updated, view.api_version), warnings=options.warnings)

    def _patcher(self, resource: Resource, patch_type: str, raw: bytes) -> Any:
        if patch_type == negotiation.APPLY_PATCH_YAML:
            raise errors.unsupported_media_type(
                patch_type + " (server-side apply is not supported by kubelite yet: use client-side "
                "`kubectl apply` without --server-side)",
                [negotiation.JSON_PATCH, negotiation.MERGE_PATCH, negotiation.STRATEGIC_MERGE_PATCH],
            )
        if patch_type not in negotiation.PATCH_TYPES:
            raise errors.unsupported_media_type(
                patch_type,
                [
                    negotiation.JSON_PATCH,
                    negotiation.MERGE_PATCH,
                    negotiation.STRATEGIC_MERGE_PATCH,
                    negotiation.APPLY_PATCH_YAML,
                ],
            )
        document = negotiation.decode_json(raw)
        if patch_type == negotiation.JSON_PATCH:
            if not isinstance(document, list):
                raise errors.bad_request("json patch must be a list of operations")
            return lambda current: _run_patch(lambda: patch.apply_json_patch(current, document))
        if not isinstance(document, dict):
            raise errors.bad_request("the patch must be a JSON object")
        if patch_type == negotiation.MERGE_PATCH:
            return lambda current: _run_patch(lambda: patch.apply_merge_patch(current, document))
        schema = self.schemas.for_kind(GroupVersionKind(resource.group, resource.version, resource.kind))
        if schema is None:
            raise errors.unsupported_media_type(
                patch_type, [negotiation.JSON_PATCH, negotiation.MERGE_PATCH, negotiation.APPLY_PATCH_YAML]
            )
        return lambda current: _run_patch(
            lambda: patch.apply_strategic_merge_patch(current, document, schema, self.schemas)
        )

    async def delete(self, request: web.Request, resource: Resource, namespace: str | None, name: str) -> web.Response:
        options = await self._delete_options(request)
        obj, deleted_now = await self.store.delete(resource, namespace, name, options)
        obj = convert(obj, _view(request).api_version)
        if not deleted_now:
            return _json(obj, status=202 if _is_pending_finalizers(obj) else 200)
        if resource.plural in ("pods", "services", "namespaces") and not resource.group:
            return _json(obj)
        meta = obj.get("metadata") or {}
        details: dict[str, Any] = {"name": name}
        if resource.group:
            details["group"] = resource.group
        details["kind"] = resource.plural
        details["uid"] = meta.get("uid")
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})

    async def delete_collection(self, request: web.Request, resource: Resource, namespace: str | None) -> web.Response:
        if "deletecollection" not in resource.verbs:
            raise errors.method_not_supported(resource.plural, resource.group, "deletecollection")
        options = await self._delete_options(request)
        entries = self._select(resource, self.store.list_entries(resource, namespace), request.query)
        deleted: list[dict[str, Any]] = []
        for entry in entries:
            meta = entry.obj.get("metadata") or {}
            try:
                obj, _ = await self.store.delete(resource, meta.get("namespace"), meta["name"], options)
            except ApiError as exc:
                if exc.code == 404:
                    continue
                raise
            deleted.append(obj)
        return _json(
            {
                "kind": resource.list_kind,
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(self.store.cache.revision)},
                "items": deleted,
            }
        )

    def _storage_classes(self) -> list[dict[str, Any]]:
        classes = self.registry.get("storage.k8s.io", "v1", "storageclasses")
        return [] if classes is None else [e.obj for e in self.store.list_entries(classes, None)]

    # -- pods/binding ------------------------------------------------------------------------------

    async def _bind(self, request: web.Request, namespace: str | None, name: str | None) -> web.Response:
        """`pods/{name}/binding` (name from the URL) or the `bindings` collection (name from the body)."""
        pods = self.registry.get("", "v1", "pods")
        assert pods is not None
        if namespace is None:
            raise errors.path_not_found()
        binding = podsubresources.parse_binding(await self._read_any(request), name, namespace=namespace)
        options = self._write_options(request)
        await podsubresources.bind_pod(self.store, pods, namespace, binding, dry_run=options.dry_run)
        return _raw_json(podsubresources.BINDING_SUCCESS_BODY, status=201)

    # -- scale ------------------------------------------------------------------------------------

    async def _scale(self, request: web.Request, resource: Resource, namespace: str | None, name: str) -> web.Response:
        method = request.method
        if method == "GET":
            return _json(scale_of(self.store.get(resource, namespace, name)))
        if method not in ("PUT", "PATCH"):
            raise errors.method_not_supported(f"{resource.plural}/scale", resource.group, method.lower())
        options = self._write_options(request)
        if method == "PUT":
            body = await self._read_any(request)
            if not isinstance(body, dict):
                raise errors.bad_request("the body must be a Scale object")
        else:
            patch_type = negotiation.media_type(request.headers.get("Content-Type"))
            raw = await _read_body(request)
            apply = self._scale_patcher(patch_type, raw)
        wanted: dict[str, Any] = {}

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            scale = scale_of(current)
            new_scale = body if method == "PUT" else apply(scale)
            wanted_rv = (new_scale.get("metadata") or {}).get("resourceVersion")
            replicas = (new_scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool):
                raise errors.invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    [
                        errors.Cause(
                            "FieldValueInvalid",
                            f"Invalid value: {orjson.dumps(replicas).decode()}: must be an integer",
                            "spec.replicas",
                        )
                    ],
                )
            if replicas < 0:
                raise errors.invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    [
                        errors.Cause(
                            "FieldValueInvalid",
                            f"Invalid value: {replicas}: must be greater than or equal to 0",
                            "spec.replicas",
                        )
                    ],
                )
            current.setdefault("spec", {})["replicas"] = replicas
            if wanted_rv:
                current["metadata"]["resourceVersion"] = wanted_rv
            wanted["replicas"] = replicas
            return current

        updated = await self.store.guaranteed_update(resource, namespace, name, mutate, options)
        return _json(scale_of(updated))

    def _scale_patcher(self, patch_type: str, raw: bytes) -> Any:
        document = negotiation.decode_json(raw)
        if patch_type == negotiation.JSON_PATCH and isinstance(document, list):
            return lambda scale: _run_patch(lambda: patch.apply_json_patch(scale, document))
        if patch_type in (negotiation.MERGE_PATCH, negotiation.STRATEGIC_MERGE_PATCH) and isinstance(document, dict):
            return lambda scale: _run_patch(lambda: patch.apply_merge_patch(scale, document))
        raise errors.unsupported_media_type(
            patch_type, [negotiation.JSON_PATCH, negotiation.MERGE_PATCH, negotiation.STRATEGIC_MERGE_PATCH]
        )

    # -- request parsing --------------------------------------------------------------------------

    async def _read_any(self, request: web.Request) -> Any:
        raw = await _read_body(request)
        return negotiation.decode_body(raw, request.headers.get("Content-Type"))

    async def _read_object(self, request: web.Request, resource: Resource) -> dict[str, Any]:
        obj = await self._read_any(request)
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version not in (None, "") and api_version != resource.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({resource.api_version})"
            )
        if kind not in (None, "") and kind != resource.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
            )
        if obj.get("metadata") is not None and not isinstance(obj.get("metadata"), dict):
            raise errors.bad_request("metadata must be an object")
        obj["apiVersion"] = resource.api_version
        obj["kind"] = resource.kind
        return obj

    def _write_options(self, request: web.Request) -> WriteOptions:
        query = request.query
        dry_run = query.getall("dryRun", [])
        for value in dry_run:
            if value != "All":
                raise errors.bad_request(f"Invalid dry run value: {value}")
        validation_mode = query.get("fieldValidation", "Warn")
        if validation_mode not in FIELD_VALIDATION_VALUES:
            raise errors.bad_request(
                f"fieldValidation parameter unsupported: {validation_mode}, must be one of Ignore, Warn or Strict"
            )
        return WriteOptions(
            dry_run=bool(dry_run), field_manager=query.get("fieldManager", ""), field_validation=validation_mode
        )

    def _check_fields(
        self, request: web.Request, resource: Resource, obj: dict[str, Any], options: WriteOptions
    ) -> dict[str, Any]:
        """Type errors → 400; unknown fields → 400 (Strict), a Warning (Warn) or nothing (Ignore); pruned."""
        mode = options.field_validation
        gvk = GroupVersionKind(resource.group, resource.version, resource.kind)
        type_causes = validation.type_errors(obj, gvk, self.schemas)
        if type_causes:
            raise validation.decode_error(gvk, type_causes)
        unknown = validation.find_unknown_fields(obj, gvk, self.schemas)
        if not unknown:
            return obj
        if mode == "Strict":
            raise validation.strict_decoding_error(gvk, unknown)
        if mode == "Warn":
            options.warnings.extend(validation.unknown_field_warnings(unknown))
        return validation.prune_unknown_fields(obj, gvk, self.schemas)

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        raw = await _read_body(request)
        body: dict[str, Any] = {}
        if raw.strip():
            decoded = negotiation.decode_body(raw, request.headers.get("Content-Type"))
            if decoded is not None and not isinstance(decoded, dict):
                raise errors.bad_request("DeleteOptions must be an object")
            body = decoded or {}
        query = request.query
        grace = body.get("gracePeriodSeconds", _int_param(query, "gracePeriodSeconds"))
        policy = body.get("propagationPolicy") or query.get("propagationPolicy")
        if body.get("orphanDependents") is True or query.get("orphanDependents") == "true":
            policy = policy or "Orphan"
        if policy not in (None, "Orphan", "Foreground", "Background"):
            raise errors.bad_request(
                f'propagationPolicy: Unsupported value: "{policy}": '
                'supported values: "Foreground", "Background", "Orphan"'
            )
        preconditions = body.get("preconditions") or {}
        dry_run = body.get("dryRun") or query.getall("dryRun", [])
        return DeleteOptions(
            grace_period_seconds=grace,
            propagation_policy=policy,
            precondition_uid=preconditions.get("uid"),
            precondition_resource_version=preconditions.get("resourceVersion"),
            dry_run=bool(dry_run),
        )


class ObjectMatcher:
    """labelSelector + fieldSelector from a query, validated once, applied to many objects."""

    def __init__(self, labels: Any, fields: Any, resource: Resource) -> None:
        self.labels = labels
        self.fields = fields
        self.resource = resource
        self.everything = labels is None and fields is None

    @classmethod
    def from_query(cls, resource: Resource, query: Any) -> ObjectMatcher:
        labels = fields = None
        try:
            text = query.get("labelSelector")
            if text:
                labels = selectors.parse_label_selector(text)
            text = query.get("fieldSelector")
            if text:
                fields = selectors.convert_field_selector(
                    resource.plural, selectors.parse_field_selector(text), group=resource.group
                )
        except selectors.SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        return cls(labels, fields, resource)

    def matches(self, obj: dict[str, Any]) -> bool:
        if self.labels is not None and not self.labels.matches((obj.get("metadata") or {}).get("labels") or {}):
            return False
        if self.fields is not None and not self.fields.matches(
            selectors.field_set(self.resource.plural, obj, group=self.resource.group)
        ):
            return False
        return True


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector")
    if isinstance(selector, dict) and ("matchLabels" in selector or "matchExpressions" in selector):
        selector_text = selectors.format_label_selector(selector)
    elif isinstance(selector, dict):  # ReplicationController: a plain map
        selector_text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    else:
        selector_text = ""
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
    out: dict[str, Any] = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0)},
    }
    if selector_text:
        out["status"]["selector"] = selector_text
    return out


def _view(request: web.Request) -> Resource:
    """The resource version the client addressed (objects may be stored in another version)."""
    return request[VIEW_KEY]


def _converted(entry: Entry, view: Resource) -> Entry:
    obj = convert(entry.obj, view.api_version)
    return Entry(entry.key, obj, orjson.dumps(obj), entry.revision)


def _run_patch(run: Any) -> Any:
    try:
        return run()
    except patch.PatchError as exc:
        raise exc.to_api_error() from None


def _partial(obj: dict[str, Any], form: ResponseForm) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": form.api_version,
        "metadata": obj.get("metadata") or {},
    }


def _list_meta(revision: str, continue_token: str | None, remaining: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": revision}
    if continue_token:
        meta["continue"] = continue_token
        meta["remainingItemCount"] = remaining
    return meta


def _encode_continue(last_key: str, revision: str) -> str:
    token = orjson.dumps({"v": "meta.k8s.io/v1", "rv": int(revision), "start": last_key})
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def _decode_continue(token: str | None) -> str | None:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        return str(data["start"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise errors.bad_request("continue key is not valid: invalid continue token") from None


def _int_param(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"invalid value for {name}: {value!r}") from None


def _is_pending_finalizers(obj: dict[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("finalizers"))


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > negotiation.MAX_BODY_BYTES:
        raise errors.too_large(negotiation.MAX_BODY_BYTES)
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > negotiation.MAX_BODY_BYTES:
            raise errors.too_large(negotiation.MAX_BODY_BYTES)
        chunks.append(chunk)
    return b"".join(chunks)


def _raw_json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _json(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")
    for warning in warnings or ():
        response.headers.add("Warning", '299 - "' + warning.replace('"', '\\"') + '"')
    return response


__all__ = ["ResourceHandlers", "scale_of"]
