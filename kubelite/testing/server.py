"""Run a real `kubelite server` process for tests and benchmarks, and drive it with the real kubectl.

The server runs as a child process on an ephemeral port with its own data directory; `stop()` ends
it by PID (SIGTERM, then SIGKILL), so nothing outlives a test. With `netns` set (a name under /run/netns, e.g.
a `NetnsLab` host's), the server and every `kubectl()` run inside that network namespace; pass
`extra_args=["--bind-address", host.ip]` to serve on the lab address (the last --bind-address wins).
With `expose_on_loopback` as well, a `LoopbackForwarder` makes the server reachable from the test process at
127.0.0.1 (the serving certificate names it), `kubeconfig` points there, and kubectl runs in the caller's own
namespace — so the kubernetes client, `kubectl port-forward` listeners and the test share one network view.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelite.testing.forward import LoopbackForwarder
from kubelite.testing.netns import netns_exec_prefix

KUBECTL = "/usr/bin/kubectl"


@dataclass
class ServerProcess:
    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    url: str = ""
    port: int = 0
    netns: str | None = None
    expose_on_loopback: bool = False
    forwarder: LoopbackForwarder | None = None

    @property
    def kubeconfig(self) -> Path:
        if self.forwarder is not None:
            return self.data_dir / "kubeconfig-loopback.yaml"
        return self.data_dir / "kubeconfig.yaml"

    @property
    def client_netns(self) -> str | None:
        """Where kubectl must run to reach the server: nowhere special once it is forwarded to loopback."""
        return None if self.forwarder is not None else self.netns

    def _expose(self) -> None:
        host = self.url.removeprefix("https://").rsplit(":", 1)[0].strip("[]")
        assert self.netns is not None
        self.forwarder = LoopbackForwarder(self.netns, host, self.port)
        text = (self.data_dir / "kubeconfig.yaml").read_text()
        (self.data_dir / "kubeconfig-loopback.yaml").write_text(
            text.replace(self.url, f"https://127.0.0.1:{self.forwarder.port}")
        )

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.data_dir / "server.log", "a")
        args = [
            *netns_exec_prefix(self.netns),
            sys.executable,
            "-m",
            "kubelite.cli",
            "server",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--bind-address",
            "127.0.0.1",
            *self.extra_args,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log, text=True)
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if "listening on" in line:
                self.url = line.strip().rsplit(" ", 1)[-1]
                self.port = int(self.url.rsplit(":", 1)[-1])
            if line.startswith("export KUBECONFIG="):
                if self.expose_on_loopback and self.netns is not None:
                    self._expose()
                return self
        self.stop()
        raise RuntimeError(f"kubelite server did not start; log: {(self.data_dir / 'server.log').read_text()[-3000:]}")

    def stop(self, timeout: float = 30.0, *, cleanup: bool = True) -> None:
        """SIGTERM (then SIGKILL) the server; with `cleanup` also stop the pods its agent leaves running on purpose
        (`kubelite cleanup`), so nothing outlives the test.  `cleanup=False` is an agent restart."""
        if self.process is None:
            return
        terminate(self.process, timeout)
        if cleanup:
            cleanup_node(self.data_dir / "agent", self.netns)
        if self.forwarder is not None:
            self.forwarder.close()
            self.forwarder = None
        if self.process.stdout:
            self.process.stdout.close()
        self._log.close()
        self.process = None

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this server, with its own HOME (discovery cache)."""
        home = self.data_dir / "home"
        home.mkdir(exist_ok=True)
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "KUBECONFIG": str(self.kubeconfig),
            **(env or {}),
        }
        result = subprocess.run(
            [*netns_exec_prefix(self.client_netns), KUBECTL, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result


def cleanup_node(agent_data_dir: Path, netns: str | None) -> None:
    """`kubelite cleanup` for an agent's data dir (in the agent's network namespace); nothing if no agent ran."""
    if not (agent_data_dir / "agent.json").exists():
        return
    subprocess.run(
        [*netns_exec_prefix(netns), sys.executable, "-m", "kubelite.cli", "cleanup", "--data-dir", str(agent_data_dir)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def terminate(process: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM by PID, wait up to `timeout` for a clean shutdown, then SIGKILL; the process is reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
