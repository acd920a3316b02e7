"""What a client call can raise, translated here once from what the transport saw.

Error tree::

    ApiError  (kubelite.machinery.errors)   the API answered with a failure: `code`, `reason`,
                                            message and details from its metav1.Status; a response
                                            that is not a Status gets the HTTP code and upstream's
                                            generic reason for it
    TransportError                          no answer: connection refused or reset, TLS failure,
                                            timeout, a response that is not JSON

`ApiError` 5xx and 429 and every `TransportError` are worth retrying with back-off; 4xx are not,
except 409 Conflict (re-read, then retry) and 410 Expired (list again).
"""

from __future__ import annotations

from typing import Any

from kubelite.machinery.errors import ApiError, Cause

# upstream's reasons for HTTP codes that come without a Status (NewGenericServerResponse)
GENERIC_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class TransportError(Exception):
    """The request got no usable answer from the API (connection, TLS, timeout, garbage)."""


def is_status(body: Any) -> bool:
    return isinstance(body, dict) and body.get("kind") == "Status"


def api_error_from_status(status: dict[str, Any], *, http_code: int = 0) -> ApiError:
    """The `ApiError` a metav1.Status describes (`http_code` when the Status carries no code)."""
    details = status.get("details") or {}
    causes = [
        Cause(str(c.get("reason") or ""), str(c.get("message") or ""), str(c.get("field") or ""))
        for c in details.get("causes") or ()
        if isinstance(c, dict)
    ]
    code = status.get("code") or http_code or 500
    return ApiError(
        int(code),
        str(status.get("reason") or ""),
        str(status.get("message") or ""),
        name=str(details.get("name") or ""),
        group=str(details.get("group") or ""),
        kind=str(details.get("kind") or ""),
        causes=causes,
        retry_after_seconds=int(details.get("retryAfterSeconds") or 0),
    )


def api_error_from_response(http_code: int, body: Any, text: str = "") -> ApiError:
    """Translate a failed HTTP response: its Status if it has one, else a generic error for the code."""
    if is_status(body):
        return api_error_from_status(body, http_code=http_code)
    reason = GENERIC_REASONS.get(http_code, "Unknown")
    message = text.strip()[:1024] or f"the server responded with the status code {http_code}"
    return ApiError(http_code, reason, message)


def is_retryable(error: BaseException) -> bool:
    """Transport failures, 429 and 5xx: the same request may succeed later."""
    if isinstance(error, TransportError):
        return True
    return isinstance(error, ApiError) and (error.code == 429 or error.code >= 500)


__all__ = [
    "ApiError",
    "TransportError",
    "api_error_from_response",
    "api_error_from_status",
    "is_retryable",
    "is_status",
]
