"""Facts about the machine a node agent runs on, as the kubelet reports them in a Node's status.

`read_machine` does blocking file I/O (``/proc``, ``/etc``, ``statvfs``): call it through
`asyncio.to_thread`.  Every fact has a fallback, so a container or an unusual system never stops an
agent from registering; a fact that cannot be read is reported empty (as the kubelet does) rather than
invented.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

KUBELET_VERSION = "v1.32.4+kubelite"

# platform.machine() → GOARCH, the names Kubernetes uses in kubernetes.io/arch and nodeInfo.architecture
_ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "i686": "386",
    "i386": "386",
}


@dataclass(frozen=True)
class Machine:
    """What a Node's ``status.capacity`` and ``status.nodeInfo`` say about this machine."""

    hostname: str
    cpus: int
    memory_kib: int
    ephemeral_storage_kib: int
    machine_id: str
    system_uuid: str
    boot_id: str
    kernel_version: str
    os_image: str
    architecture: str
    operating_system: str = "linux"


def architecture(machine: str | None = None) -> str:
    """The Go architecture name of `machine` (default: this one), e.g. ``amd64`` for ``x86_64``."""
    machine = (machine if machine is not None else platform.machine()).lower()
    return _ARCHITECTURES.get(machine, machine)


def kubelite_version() -> str:
    try:
        return metadata.version("kubelite")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def read_machine(data_dir: Path) -> Machine:
    """Read this machine's facts; `data_dir` is the filesystem whose size is the ephemeral storage."""
    machine_id = _read_first_line(Path("/etc/machine-id")) or _read_first_line(Path("/var/lib/dbus/machine-id"))
    return Machine(
        hostname=platform.node().lower(),
        cpus=_cpu_count(),
        memory_kib=_mem_total_kib(),
        ephemeral_storage_kib=_filesystem_kib(data_dir),
        machine_id=machine_id,
        system_uuid=_system_uuid(machine_id),
        boot_id=_read_first_line(Path("/proc/sys/kernel/random/boot_id")),
        kernel_version=platform.release(),
        os_image=os_image(Path("/etc/os-release")),
        architecture=architecture(),
    )


def os_image(path: Path) -> str:
    """``PRETTY_NAME`` of an os-release file (quotes removed), else ``"Linux"``."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "Linux"
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() == "PRETTY_NAME":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            return value or "Linux"
    return "Linux"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _mem_total_kib() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _filesystem_kib(directory: Path) -> int:
    path = Path(directory)
    # the data directory may not exist yet: measure the filesystem that will hold it
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_blocks * st.f_frsize // 1024


def _system_uuid(machine_id: str) -> str:
    uuid = _read_first_line(Path("/sys/class/dmi/id/product_uuid"))
    if uuid:
        return uuid.lower()
    # no DMI (virtual machines without firmware tables, containers): the machine id in UUID form
    if len(machine_id) == 32:
        m = machine_id.lower()
        return f"{m[:8]}-{m[8:12]}-{m[12:16]}-{m[16:20]}-{m[20:]}"
    return ""


def _read_first_line(path: Path) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.readline().strip()
    except OSError:
        return ""


__all__ = ["KUBELET_VERSION", "Machine", "architecture", "kubelite_version", "os_image", "read_machine"]
