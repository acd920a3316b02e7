"""Run a real `kubelite agent` process (a node that joins a server) for multi-node tests.

Readiness contract with the CLI: once the agent has joined (or found its credentials from an earlier join)
and registered its Node, it prints exactly one line `kubelite agent <node-name> ready` on stdout.
`start()` waits for that line; it fails, with the tail of the log, if the process exits first or the line
does not come within the timeout.

stdout and stderr both go to `<data_dir>/agent.log` (appended across restarts), which `start()` polls: no
pipe is kept open, so a chatty agent can never block on a full pipe after the test stopped reading.

`stop()` ends the agent by PID (SIGTERM, then SIGKILL after a grace period); the agent stops its pods on
SIGTERM. `kill()` is SIGKILL only, for tests that need a node to vanish and leave its pods orphaned.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kubelite.testing.netns import netns_exec_prefix
from kubelite.testing.server import ServerProcess, cleanup_node, terminate

READY_MARKER = "kubelite agent"


@dataclass
class AgentProcess:
    server_url: str
    token: str
    data_dir: Path
    node_name: str
    node_ip: str
    netns: str | None = None
    kubelet_port: int = 0
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "agent.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def argv(self) -> list[str]:
        """The full command line, netns prefix included (useful in failure messages)."""
        return [
            *netns_exec_prefix(self.netns),
            sys.executable,
            "-m",
            "kubelite.cli",
            "agent",
            "--server",
            self.server_url,
            "--token",
            self.token,
            "--data-dir",
            str(self.data_dir),
            "--node-name",
            self.node_name,
            "--node-ip",
            self.node_ip,
            "--kubelet-port",
            str(self.kubelet_port),
            *self.extra_args,
        ]

    def start(self, timeout: float = 60.0) -> AgentProcess:
        """Start the agent and wait until it reports ready. Restartable after `stop()`/`kill()` (same data dir,
        so a restarted agent reuses its credentials)."""
        if self.process is not None:
            raise RuntimeError(f"agent {self.node_name} is already running (pid {self.process.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        ready = f"{READY_MARKER} {self.node_name} ready"
        deadline = time.monotonic() + timeout
        with open(self.log_path, "rb") as reader:
            reader.seek(offset)
            seen = ""
            while time.monotonic() < deadline:
                exited = self.process.poll() is not None
                seen += _read_new(reader)
                if ready in seen:
                    return self
                if exited:
                    break
                time.sleep(0.1)
        code = self.process.poll()
        self.stop()
        why = f"exited with {code}" if code is not None else f"did not print {ready!r} within {timeout}s"
        raise RuntimeError(f"kubelite agent {self.node_name} {why}; log tail:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0, *, cleanup: bool = True) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL; with `cleanup`, `kubelite cleanup` stops the pods the agent
        leaves running on purpose (`cleanup=False`: a graceful restart follows). Idempotent."""
        if self.process is None:
            return
        terminate(self.process, timeout)
        self.process = None
        if cleanup:
            cleanup_node(self.data_dir, self.netns)

    def kill(self) -> None:
        """SIGKILL by PID and reap: no graceful shutdown, the agent's pods are left behind as they are."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(15.0)
        self.process = None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def create_join_token(server: ServerProcess, *, timeout: float = 60.0) -> str:
    """A fresh join token from `kubelite token create` on `server` (run in the server's netns, with its data
    dir's admin kubeconfig), for `AgentProcess(token=...)`."""
    argv = [
        *netns_exec_prefix(server.netns),
        sys.executable,
        "-m",
        "kubelite.cli",
        "token",
        "create",
        "--data-dir",
        str(server.data_dir),
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"kubelite token create exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout.strip()


def _read_new(reader: IO[bytes]) -> str:
    return reader.read().decode(errors="replace")
