"""A private network of network namespaces for multi-node tests: a "switch" namespace with a Linux bridge,
and one namespace per host, each wired to the bridge by a veth pair.

    lab = NetnsLab()                 # or `with NetnsLab() as lab:`
    a = lab.add_host("server")       # Host(name="server", netns="kl1234ab-server", ip="10.251.0.1")
    b = lab.add_host("node1")
    b.run(["ping", "-c1", a.ip])
    lab.close()                      # kills every process in the namespaces, deletes them

Contracts:

* Nothing is added to the caller's own network namespace: the bridge and both ends of every veth pair are
  created directly inside the lab's namespaces (`ip -n <ns> link add ... peer ... netns <host>`), so there is
  no moment where an interface, route or firewall rule exists in the host's netns.
* Names are unique per instance (`kl<pid><random>`), so parallel test runs on one machine do not clash. Every
  lab uses its own bridge, so labs are isolated even when they use the same subnet.
* Commands enter a host with `nsenter --net=/run/netns/<ns>` rather than `ip netns exec`: the latter also
  unshares the mount namespace and remounts /sys, which hides /sys/fs/cgroup (the agent needs it) and keeps
  `ip netns add` (pod sandboxes) made inside from being visible outside. Only the network namespace changes.
* `close()` is idempotent and best-effort: it SIGTERMs, then SIGKILLs, every PID `ip netns pids` reports for
  the lab's namespaces (by PID, nothing by name), reaps the children it started, and deletes the namespaces
  (their veth ends go with them).
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

IP = "ip"
NSENTER = "nsenter"
BRIDGE = "br0"
# Private /24s tried in order; the first that overlaps none of the caller's routes or addresses is used.
SUBNET_CANDIDATES = ("10.251.0.0/24", "10.252.0.0/24", "10.253.0.0/24", "172.31.251.0/24", "192.168.251.0/24")
_MAX_HOSTS = 200  # addresses .1 .. .200; interface names stay short (veth names must be < 16 bytes)


def skip_reason() -> str | None:
    """Why a lab cannot be built on this machine, or None. Callers should fail with it, not skip: the
    project's CI runs as root, so a missing prerequisite is a broken environment, not an optional test."""
    if os.geteuid() != 0:
        return "NetnsLab needs root (network namespaces, bridges, veth pairs)"
    for tool in (IP, NSENTER):
        if shutil.which(tool) is None:
            return f"NetnsLab needs `{tool}` on PATH (iproute2 / util-linux)"
    return None


def netns_exec_prefix(netns: str | None) -> list[str]:
    """The argv prefix that runs a command inside the named namespace ([] for None: the caller's own)."""
    if netns is None:
        return []
    return [NSENTER, f"--net=/run/netns/{netns}", "--"]


def _ip(*args: str, netns: str | None = None) -> str:
    argv = [IP, *(["-n", netns] if netns else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 route destination and interface network in the caller's netns."""
    networks = []
    for route in json.loads(_ip("-4", "-j", "route", "show", "table", "all") or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            networks.append(ipaddress.IPv4Network(dst, strict=False))
    for link in json.loads(_ip("-4", "-j", "addr", "show") or "[]"):
        for info in link.get("addr_info", []):
            networks.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return networks


def pick_subnet(candidates: tuple[str, ...] = SUBNET_CANDIDATES) -> ipaddress.IPv4Network:
    """The first candidate that overlaps nothing routed or addressed in the caller's netns, so a lab host's
    address can never be confused with a real one (in logs, certificates or by a process outside the lab)."""
    used = _used_networks()
    for candidate in candidates:
        network = ipaddress.IPv4Network(candidate)
        if not any(network.overlaps(other) for other in used):
            return network
    raise RuntimeError(f"every candidate subnet {candidates} overlaps a route or address on this machine")


@dataclass
class Host:
    """One machine of the lab: a network namespace whose `eth0` has `ip` on the lab's subnet."""

    name: str
    netns: str
    ip: str
    _lab: NetnsLab = field(repr=False, compare=False)

    @property
    def exec_prefix(self) -> list[str]:
        return netns_exec_prefix(self.netns)

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start `args` inside this host's netns. The lab keeps the Popen and reaps it in `close()`; the
        caller may still stop and wait for it earlier (and should close any pipes it asked for)."""
        process: subprocess.Popen[Any] = subprocess.Popen([*self.exec_prefix, *args], **kwargs)
        self._lab._children.append(process)
        return process

    def run(
        self, args: list[str], *, check: bool = True, timeout: float = 60.0, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run `args` to completion inside this host's netns; text output captured unless told otherwise."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        result = subprocess.run([*self.exec_prefix, *args], timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} in {self.netns} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result


class NetnsLab:
    """A switch namespace with a bridge, plus hosts added with `add_host`. Not thread-safe; one owner."""

    def __init__(self, *, subnet: str | None = None, default_route: bool = True) -> None:
        """`subnet`: a /24-or-larger IPv4 network to use instead of picking one. `default_route`: give each
        host a default route out of `eth0`, so "the address of the default route's interface" (the agent's
        default node IP) is the lab address; traffic to anything outside the subnet is simply lost."""
        reason = skip_reason()
        if reason:
            raise RuntimeError(reason)
        self.prefix = f"kl{os.getpid():x}{secrets.token_hex(2)}"
        self.network = ipaddress.IPv4Network(subnet) if subnet else pick_subnet()
        self.default_route = default_route
        self.hosts: dict[str, Host] = {}
        self._children: list[subprocess.Popen[Any]] = []
        self._namespaces: list[str] = []
        self._closed = False
        self.switch = self._add_namespace("switch")
        try:
            _ip("link", "add", BRIDGE, "type", "bridge", netns=self.switch)
            _ip("link", "set", BRIDGE, "up", netns=self.switch)
            _ip("link", "set", "lo", "up", netns=self.switch)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> NetnsLab:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this lab made (switch first), for inspection and cleanup checks."""
        return list(self._namespaces)

    def add_host(self, name: str) -> Host:
        """A new namespace `<prefix>-<name>` joined to the switch; addresses are handed out in order (.1, .2 …).
        `name` must be unique in the lab; it is also what tests call the host (e.g. the node name)."""
        if self._closed:
            raise RuntimeError("NetnsLab is closed")
        if name in self.hosts:
            raise ValueError(f"host {name!r} already exists")
        index = len(self.hosts) + 1
        if index > min(_MAX_HOSTS, self.network.num_addresses - 2):
            raise RuntimeError(f"NetnsLab: no address left in {self.network}")
        ip = str(self.network.network_address + index)
        netns = self._add_namespace(name)
        switch_end = f"v{index}"
        try:
            _ip("link", "add", switch_end, "type", "veth", "peer", "name", "eth0", "netns", netns, netns=self.switch)
            _ip("link", "set", switch_end, "master", BRIDGE, "up", netns=self.switch)
            _ip("link", "set", "lo", "up", netns=netns)
            _ip("addr", "add", f"{ip}/{self.network.prefixlen}", "dev", "eth0", netns=netns)
            _ip("link", "set", "eth0", "up", netns=netns)
            if self.default_route:
                _ip("route", "add", "default", "dev", "eth0", netns=netns)
        except BaseException:
            self._delete_namespace(netns)
            raise
        host = Host(name=name, netns=netns, ip=ip, _lab=self)
        self.hosts[name] = host
        return host

    def close(self, *, timeout: float = 10.0) -> None:
        """Stop every process in the lab's namespaces and delete them. Safe to call more than once."""
        self._closed = True
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._pids() and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        self._signal_all(signal.SIGKILL)
        for child in self._children:
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process stuck in the kernel
                pass
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
        self._children.clear()
        for netns in reversed(self._namespaces):
            self._delete_namespace(netns)

    # -- internals ---------------------------------------------------------------------------------

    def _add_namespace(self, name: str) -> str:
        netns = f"{self.prefix}-{name}"
        _ip("netns", "add", netns)
        self._namespaces.append(netns)
        return netns

    def _delete_namespace(self, netns: str) -> None:
        if netns in self._namespaces:
            self._namespaces.remove(netns)
        subprocess.run([IP, "netns", "delete", netns], capture_output=True, timeout=30)

    def _pids(self) -> list[int]:
        pids = []
        for netns in self._namespaces:
            result = subprocess.run([IP, "netns", "pids", netns], capture_output=True, text=True, timeout=30)
            pids.extend(int(pid) for pid in result.stdout.split() if pid.isdigit())
        return [pid for pid in pids if pid != os.getpid()]

    def _signal_all(self, sig: signal.Signals) -> None:
        for pid in self._pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        self._reap()

    def _reap(self) -> None:
        """Collect our own exited children, so they do not linger as zombies (or ResourceWarnings)."""
        for child in self._children:
            child.poll()
