"""The Kubernetes WebSocket channel protocol (``v5``/``v4.channel.k8s.io``), shared by exec, attach
and the Python clients' port-forward.

Every binary message is ``[channel byte] + payload``.  Exec/attach channels: 0 stdin (client →
server), 1 stdout, 2 stderr, 3 error (one `metav1.Status` JSON when the command ends), 4 resize
(``{"Width":W,"Height":H}``, client → server).  v5 adds 255 *close*: ``[255, ch]`` says the client
will send nothing more on channel ``ch`` (stdin EOF).

Status bodies are encoded as the kubelet does (``json.Marshal`` of a `metav1.Status` without type
meta): ``{"metadata":{},"status":"Success"}`` and the NonZeroExitCode failure that kubectl turns into
its exit code.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "CLOSE",
    "ERROR",
    "EXEC_PROTOCOLS",
    "PORT_FORWARD_PROTOCOLS",
    "RESIZE",
    "STDERR",
    "STDIN",
    "STDOUT",
    "V4",
    "V5",
    "decode_message",
    "encode_message",
    "parse_resize",
    "status_exit_code",
    "status_failure",
    "status_success",
]

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
SPDY_PORT_FORWARD = "SPDY/3.1+portforward.k8s.io"

# In order of preference; a client's offer is matched against these (aiohttp picks the first of the
# client's protocols that we support, and the clients list their favourite first).
EXEC_PROTOCOLS = (V5, V4, "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
PORT_FORWARD_PROTOCOLS = (SPDY_PORT_FORWARD, V4, "portforward.k8s.io")

STDIN = 0
STDOUT = 1
STDERR = 2
ERROR = 3
RESIZE = 4
CLOSE = 255


def encode_message(channel: int, payload: bytes = b"") -> bytes:
    return bytes((channel,)) + payload


def decode_message(message: bytes) -> tuple[int, bytes] | None:
    """(channel, payload); ``None`` for an empty message (which carries nothing)."""
    if not message:
        return None
    return message[0], message[1:]


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    """(width, height) from a resize message; ``None`` if it is not one."""
    try:
        size = json.loads(payload)
        width, height = int(size.get("Width", 0)), int(size.get("Height", 0))
    except (ValueError, TypeError, AttributeError):
        return None
    if width < 0 or height < 0 or width > 0xFFFF or height > 0xFFFF:
        return None
    return width, height


def _encode(status: dict[str, Any]) -> bytes:
    return json.dumps(status, separators=(",", ":"), ensure_ascii=False).encode()


def status_success() -> bytes:
    return _encode({"metadata": {}, "status": "Success"})


def status_exit_code(command: list[str], exit_code: int) -> bytes:
    """The Status for a command that exited with a non-zero code (kubectl exits with that code)."""
    message = (
        f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], "
        f"exit code {exit_code}"
    )
    return _encode(
        {
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
        }
    )


def status_failure(message: str, *, reason: str = "InternalError", code: int = 500) -> bytes:
    """A failure that is not an exit code (the command could not run, the stream broke)."""
    return _encode(
        {
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": {"causes": [{"message": message}]},
            "code": code,
        }
    )
