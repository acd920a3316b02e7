"""Pod address management for one node's pod CIDR, kept in files as CNI's host-local plugin keeps it.

State lives in one directory (``<data_dir>/network/``):

* ``cidr`` — the pod CIDR the addresses below belong to;
* one file per allocated address, named after it (``10.42.1.7``) and holding the pod's uid; it is created
  with ``O_CREAT | O_EXCL``, so two allocations can never get the same address, even from two processes;
* ``last_reserved_ip`` — the address handed out last; the next allocation starts after it, so an address
  that was just released is not handed to the next pod at once (connections of the old pod then reach
  nothing instead of the new one), as host-local does.

Contracts:

* `allocate` is idempotent per uid: a uid that holds an address gets it back.
* Addresses are the CIDR's hosts minus the network address, the gateway (first host: the node bridge) and
  the broadcast address.
* The state survives an agent restart (nothing is in memory but the directory path).  A file left empty
  by a crash between create and write holds no uid; `allocations` reports it with uid ``""`` so that
  orphan clean-up frees it.
* Not safe for concurrent use of the same uid; different uids may allocate concurrently.

File I/O is blocking: callers on the event loop run these methods in a thread.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kubelite.agent.network.interface import NetworkError

__all__ = ["HostLocalIpam", "IpamExhausted", "candidate_order", "usable_addresses"]

CIDR_FILE = "cidr"
LAST_FILE = "last_reserved_ip"


class IpamExhausted(NetworkError):
    """Every address of the node's pod CIDR is in use."""


def usable_addresses(cidr: str) -> list[str]:
    """The addresses pods may get in `cidr`: its hosts without the gateway (the first host)."""
    network = ipaddress.IPv4Network(cidr)
    if network.num_addresses < 4:
        raise NetworkError(f"pod CIDR {cidr} is too small for a gateway and a pod")
    first, last = int(network.network_address) + 2, int(network.broadcast_address) - 1
    return [str(ipaddress.IPv4Address(value)) for value in range(first, last + 1)]


def candidate_order(addresses: list[str], last: str | None) -> list[str]:
    """`addresses` in the order allocation tries them: starting after `last`, wrapping around."""
    if last in addresses:
        start = addresses.index(last) + 1
        return addresses[start:] + addresses[:start]
    return list(addresses)


def _is_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


class HostLocalIpam:
    """Addresses of one pod CIDR, one file per allocation under `directory` (module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # -- the CIDR ----------------------------------------------------------------------------------

    def cidr(self) -> str | None:
        """The pod CIDR the state belongs to, or None before the first `set_cidr`."""
        try:
            return (self.directory / CIDR_FILE).read_text().strip() or None
        except FileNotFoundError:
            return None

    def set_cidr(self, cidr: str) -> None:
        """Bind the state to `cidr`.  Changing it is refused while any address is allocated (pods would keep
        addresses outside the node's new CIDR); with none allocated the old state is dropped."""
        cidr = str(ipaddress.IPv4Network(cidr))
        current = self.cidr()
        if current == cidr:
            return
        if current is not None:
            held = self.allocations()
            if held:
                raise NetworkError(
                    f"the node's pod CIDR changed from {current} to {cidr} while {len(held)} pod(s) "
                    f"hold addresses from the old one; remove those pods first"
                )
            with contextlib.suppress(FileNotFoundError):
                (self.directory / LAST_FILE).unlink()
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.directory / CIDR_FILE, cidr + "\n")

    # -- allocations -------------------------------------------------------------------------------

    def allocations(self) -> dict[str, str]:
        """Every allocated address → the uid holding it (``""`` if the file was left empty)."""
        result: dict[str, str] = {}
        for path in self._address_files():
            try:
                result[path.name] = path.read_text().strip()
            except FileNotFoundError:  # released meanwhile
                continue
        return result

    def lookup(self, uid: str) -> str | None:
        """The address `uid` holds, or None."""
        for address, holder in self.allocations().items():
            if holder == uid:
                return address
        return None

    def allocate(self, uid: str) -> str:
        """An address for `uid` (the one it already holds, if any).  Raises `IpamExhausted`."""
        if not uid:
            raise ValueError("allocate needs a uid")
        held = self.lookup(uid)
        if held is not None:
            return held
        cidr = self.cidr()
        if cidr is None:
            raise NetworkError("the pod network has no pod CIDR yet")
        for address in candidate_order(usable_addresses(cidr), self._last()):
            try:
                fd = os.open(self.directory / address, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(uid + "\n")
            _write_atomically(self.directory / LAST_FILE, address + "\n")
            return address
        raise IpamExhausted(f"no free address left in the node's pod CIDR {cidr}")

    def release(self, uid: str) -> list[str]:
        """Free every address `uid` holds; returns them.  Idempotent."""
        freed = [address for address, holder in self.allocations().items() if holder == uid]
        for address in freed:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / address).unlink()
        return freed

    def release_address(self, address: str) -> None:
        """Free one address whatever holds it (orphan clean-up of files left empty).  Idempotent."""
        if _is_address(address):
            with contextlib.suppress(FileNotFoundError):
                (self.directory / address).unlink()

    # -- internals ---------------------------------------------------------------------------------

    def _last(self) -> str | None:
        try:
            return (self.directory / LAST_FILE).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _address_files(self) -> Iterator[Path]:
        if not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            if _is_address(path.name) and path.is_file():
                yield path


def _write_atomically(path: Path, text: str) -> None:
    """Readers see the old or the new content, never a part; concurrent writers each use their own
    temporary file (the last rename wins)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
