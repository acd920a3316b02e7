"""Helpers for end-to-end tests against running clusters: bounded waits and kubectl as a child."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

from kubelite.testing.netns import netns_exec_prefix
from kubelite.testing.server import KUBECTL, ServerProcess

NODE_NAME = "e2e-node"

# A pod command (python3 -c) answering every GET on :8080 with the pod's hostname (its own UTS namespace).
HOSTNAME_SERVER = (
    "import http.server, socket\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = socket.gethostname().encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *args): pass\n"
    "http.server.ThreadingHTTPServer(('0.0.0.0', 8080), H).serve_forever()\n"
)

# python3 -c FETCH_MANY URL N: N GETs, one line per answer body (or "ERROR <type> <text>").
FETCH_MANY = (
    "import sys, urllib.request\n"
    "for _ in range(int(sys.argv[2])):\n"
    "    try:\n"
    "        print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n"
    "    except Exception as e:\n"
    "        print('ERROR', type(e).__name__, e)\n"
)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, what: str = "the condition") -> Any:
    """Poll `predicate` until it returns something truthy (bounded; no timing assertions)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def get_json(server: ServerProcess, *args: str) -> dict[str, Any]:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def kubectl_popen(server: ServerProcess, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """kubectl as a long-running child (logs -f, port-forward); the caller ends it."""
    home = server.data_dir / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": str(server.kubeconfig)}
    return subprocess.Popen([*netns_exec_prefix(server.client_netns), KUBECTL, *args], env=env, text=True, **kwargs)


async def eventually(check: Callable[[], Any], what: str = "", *, timeout: float = 30.0, every: float = 0.1) -> Any:
    """The async `wait_for`: `check` may be sync or return an awaitable; its first truthy result.  With `what`,
    running out of time is an AssertionError naming it (else the TimeoutError itself)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = check()
                if asyncio.iscoroutine(result):
                    result = await result
                if result:
                    return result
                await asyncio.sleep(every)
    except TimeoutError:
        if what:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None
        raise


async def kubectl_async(server: ServerProcess, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    """`server.kubectl` off the event loop, so in-process controllers keep working meanwhile."""
    return await asyncio.to_thread(server.kubectl, *args, **options)
