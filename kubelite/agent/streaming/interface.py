"""What the streaming server needs from the node agent: which container a request means, and a way
into a pod's network.  The pod manager implements `PodTarget`; tests use a small fake."""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["PodTarget"]


class PodTarget(Protocol):
    def find_container(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> str | None:
        """The runtime id of the newest instance of container `container` of pod `namespace/pod`, or
        with `previous` the instance before it (the last one that terminated before the current one
        started); ``None`` if there is none.  Must not block: answer from the agent's memory."""
        ...

    async def open_port(self, namespace: str, pod: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to `port` inside the pod's network namespace (its loopback, as the kubelet
        does).  Raises `LookupError` for an unknown pod and `OSError` when the connection fails."""
        ...
