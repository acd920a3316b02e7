"""Sockets in a chosen network namespace, for the userspace proxy.

A socket belongs to the network namespace its creating thread was in when it was created, for its whole life.
Python 3.11 has no `os.setns`, so `SocketFactory(netns)` keeps one worker thread that enters the namespace once
(``setns(2)`` through ctypes; it changes only that thread) and creates every socket there; binding, connecting
and all I/O then happen on the event loop as usual.  With `netns` None sockets are made directly (the
caller's own namespace).  Tests use a namespace per "node"; in production the proxy runs in the node's own.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
from concurrent.futures import ThreadPoolExecutor

__all__ = ["SocketFactory"]

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"


def _enter_netns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


class SocketFactory:
    """Non-blocking sockets created inside `netns` (module docstring).  `close()` stops the worker thread."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._executor: ThreadPoolExecutor | None = None
        if netns is not None:
            path = f"{NETNS_DIR}/{netns}"
            if not os.path.exists(path):
                raise FileNotFoundError(path)
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="proxy-netns", initializer=_enter_netns, initargs=(path,)
            )

    @staticmethod
    def _make(kind: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, kind)
        sock.setblocking(False)
        return sock

    async def socket(self, kind: int = socket.SOCK_STREAM) -> socket.socket:
        if self._executor is None:
            return self._make(kind)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._make, kind)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
