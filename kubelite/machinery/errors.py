"""API errors and their `metav1.Status` wire form.

Error tree::

    ApiError                  any failure a client sees as a metav1.Status
      (code and reason say which; constructors below build the upstream messages)

Storage and validation errors are translated into `ApiError` in one place in the API server;
everything below it raises its own errors or returns causes.  The wire form is compact Go-style JSON
with keys in Go struct order and a trailing newline, because clients compare it byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class Cause:
    """One `details.causes[]` entry: what is wrong, and where (`field` is a JSON path like spec.replicas)."""

    reason: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


@dataclass
class ApiError(Exception):
    """A failed request, carrying everything needed for its `metav1.Status`."""

    code: int
    reason: str
    message: str
    name: str = ""
    group: str = ""
    kind: str = ""  # the plural resource, as upstream puts it in details.kind
    causes: list[Cause] = field(default_factory=list)
    retry_after_seconds: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            out["reason"] = self.reason
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds:
            details["retryAfterSeconds"] = self.retry_after_seconds
        if details:
            out["details"] = details
        out["code"] = self.code
        return out

    def body(self) -> bytes:
        return status_bytes(self.status())


def status_bytes(status: dict[str, Any]) -> bytes:
    return orjson.dumps(status) + b"\n"


def qualified(resource: str, group: str) -> str:
    """`deployments.apps`, or just `pods` for the core group, as in upstream messages."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found', name, group, resource
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists', name, group, resource
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    message = f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}'
    return ApiError(409, "Conflict", message, name, group, resource)


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid.  `kind` is the Kind here (upstream's qualified kind), not the resource."""
    listed = ", ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    qualified_kind = f"{kind}.{group}" if group else kind
    shown = name or ""
    message = (
        f'{qualified_kind} "{shown}" is invalid: {listed}'
        if len(causes) == 1
        else (f'{qualified_kind} "{shown}" is invalid: [{listed}]')
    )
    return ApiError(422, "Invalid", message, name, group, kind, list(causes))


def bad_request(message: str, causes: list[Cause] | None = None) -> ApiError:
    return ApiError(400, "BadRequest", message, causes=list(causes or []))


def forbidden(resource: str, group: str, name: str, why: str) -> ApiError:
    message = (
        f'{qualified(resource, group)} "{name}" is forbidden: {why}'
        if name
        else (f"{qualified(resource, group)} is forbidden: {why}")
    )
    return ApiError(403, "Forbidden", message, name, group, resource)


def method_not_supported(resource: str, group: str, verb: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f'{verb} is not supported on resources of kind "{qualified(resource, group)}"',
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def gone_too_old(requested: int, oldest: int) -> ApiError:
    return expired(f"too old resource version: {requested} ({oldest})")


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
    )


def not_acceptable(accepted: list[str]) -> ApiError:
    return ApiError(
        406, "NotAcceptable", f"only the following media types are accepted: {', '.join(accepted)}"
    )


def too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def too_many_requests(message: str, retry_after: int = 1) -> ApiError:
    return ApiError(429, "TooManyRequests", message, retry_after_seconds=retry_after)


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")


def timeout(message: str) -> ApiError:
    return ApiError(504, "Timeout", message)


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")
