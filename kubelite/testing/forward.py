"""Reach a server inside a test's network namespace from the test process, over loopback only.

    with LoopbackForwarder("kl1234ab-server", "10.251.0.1", 6443) as forward:
        urlopen(f"https://127.0.0.1:{forward.port}/...")

The forwarder listens on 127.0.0.1 in the caller's namespace and, for every connection, opens the upstream
socket from a thread that has entered the target namespace (`setns` applies to the calling thread only, so the
rest of the process stays where it is).  Nothing is configured in any namespace: no interface, route or rule —
which is why tests use it rather than a veth into the host.  Threads, not asyncio: the tests that use it are
synchronous and the kubernetes client blocks.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import socket
import threading
from types import TracebackType

CLONE_NEWNET = 0x40000000
_BUFFER = 65536

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def connect_in_netns(netns: str, host: str, port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP socket connected from inside `/run/netns/<netns>` (the calling thread's namespace is restored)."""
    result: list[socket.socket | BaseException] = []

    def work() -> None:
        try:
            with open(f"/run/netns/{netns}", "rb") as target:
                _setns(target.fileno())  # this short-lived thread never returns to the caller's namespace
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.settimeout(None)
            result.append(sock)
        except BaseException as exc:  # handed to the caller
            result.append(exc)

    thread = threading.Thread(target=work, name=f"netns-connect-{netns}", daemon=True)
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


class LoopbackForwarder:
    def __init__(self, netns: str, host: str, port: int) -> None:
        self.netns = netns
        self.target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, name="loopback-forwarder", daemon=True)
        self._thread.start()

    def __enter__(self) -> LoopbackForwarder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Idempotent: stop accepting and cut every open connection."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="loopback-forward", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = connect_in_netns(self.netns, *self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            self._connections.update((client, upstream))
        try:
            _pump(client, upstream)
        finally:
            with self._lock:
                self._connections.difference_update((client, upstream))
            client.close()
            upstream.close()


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both directions have ended (half-closes are passed on)."""
    peers = {a: b, b: a}
    open_reads = {a, b}
    while open_reads:
        readable, _, _ = select.select(list(open_reads), [], [], 1.0)
        for sock in readable:
            try:
                data = sock.recv(_BUFFER)
            except OSError:
                return
            if not data:
                open_reads.discard(sock)
                with contextlib.suppress(OSError):
                    peers[sock].shutdown(socket.SHUT_WR)
                continue
            try:
                peers[sock].sendall(data)
            except OSError:
                return
