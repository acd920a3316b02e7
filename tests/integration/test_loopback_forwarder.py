"""LoopbackForwarder: the test process reaches a server inside a lab namespace through 127.0.0.1 only."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from kubelite.testing.cluster import wait_for
from kubelite.testing.forward import LoopbackForwarder, connect_in_netns
from kubelite.testing.netns import Host, NetnsLab, skip_reason


@pytest.fixture(scope="module")
def lab_host() -> Iterator[Host]:
    reason = skip_reason()
    if reason:
        pytest.fail(reason)
    with NetnsLab() as lab:
        yield lab.add_host("srv")


def _serve(host: Host, port: int) -> subprocess.Popen[bytes]:
    return host.popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", host.ip, "--directory", "/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_http_through_the_forwarder_reaches_the_server_in_the_namespace(lab_host: Host) -> None:
    server = _serve(lab_host, 18080)
    try:
        with LoopbackForwarder(lab_host.netns, lab_host.ip, 18080) as forward:

            def fetch() -> int | None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{forward.port}/", timeout=5) as response:
                        return response.status
                except OSError:
                    return None

            assert wait_for(fetch, timeout=20, what="the server behind the forwarder") == 200
    finally:
        server.terminate()
        server.wait(10)


def test_the_lab_address_is_not_reachable_from_the_test_namespace_directly(lab_host: Host) -> None:
    server = _serve(lab_host, 18081)
    try:
        wait_for(lambda: _connects_inside(lab_host, 18081), timeout=20, what="the server to listen")
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://{lab_host.ip}:18081/", timeout=2)
    finally:
        server.terminate()
        server.wait(10)


def _connects_inside(host: Host, port: int) -> bool:
    try:
        connect_in_netns(host.netns, host.ip, port, timeout=2).close()
        return True
    except OSError:
        return False
