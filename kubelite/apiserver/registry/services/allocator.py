"""Address and port ranges: which values are taken, and which free one to hand out next.

Pure, in-memory and synchronous (upstream's `ipallocator.Range` and `portallocator.PortAllocator`
over a bitmap, without the snapshot in storage: kubelite rebuilds the taken set from the stored
Services, see `ledger.py`).

Dynamic allocation prefers the upper part of a range, as upstream does since KEP-3070/3668: the
first `offset` values are a band kept for values users ask for by number (the `kubernetes` and
`kube-dns` ClusterIPs live there), and random picks come from above it until that part is full.
The band is `min(max(16, size / 16), 256)` values for a service CIDR (`size` counts the whole CIDR)
and `min(max(16, size / 32), 128)` for a node-port range; ranges of 16 or fewer have no band.

Errors (messages are upstream's, callers wrap them into field errors)::

    AllocationError
     ├── NotInRange      the value is outside the range
     ├── AlreadyAllocated the value is taken
     └── RangeFull       nothing is free
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable


class AllocationError(Exception):
    """A value could not be allocated; `str()` is upstream's message."""


class NotInRange(AllocationError):
    pass


class AlreadyAllocated(AllocationError):
    pass


class RangeFull(AllocationError):
    def __init__(self) -> None:
        super().__init__("range is full")


def band_size(size: int, *, minimum: int, maximum: int, step: int) -> int:
    """Upstream's `calculateRangeOffset`: `min(max(minimum, size // step), maximum)`, 0 for tiny ranges."""
    if size <= minimum:
        return 0
    return min(max(minimum, size // step), maximum)


class RangeAllocator:
    """Offsets `0 … size-1`; the first `band` of them are only taken dynamically once the rest is full.

    Not thread-safe: the API server calls it from its event loop only.
    """

    def __init__(self, size: int, band: int = 0) -> None:
        self.size = max(size, 0)
        self.band = min(band, self.size)
        self._used: set[int] = set()

    @property
    def used(self) -> int:
        return len(self._used)

    @property
    def free(self) -> int:
        return self.size - len(self._used)

    def has(self, offset: int) -> bool:
        return offset in self._used

    def take(self, offset: int) -> bool:
        """Mark `offset` taken; False when it already was.  The caller checked it is in range."""
        if offset in self._used:
            return False
        self._used.add(offset)
        return True

    def take_next(self, rng: random.Random) -> int:
        """A random free offset, from above the band first; raises `RangeFull`."""
        for low, high in ((self.band, self.size), (0, self.band)):
            found = self._scan(low, high, rng)
            if found is not None:
                self._used.add(found)
                return found
        raise RangeFull()

    def release(self, offset: int) -> None:
        """Idempotent: releasing a free offset does nothing."""
        self._used.discard(offset)

    def _scan(self, low: int, high: int, rng: random.Random) -> int | None:
        """From a random start, the first free offset in [low, high), wrapping around once."""
        width = high - low
        if width <= 0:
            return None
        start = rng.randrange(width)
        for step in range(width):
            offset = low + (start + step) % width
            if offset not in self._used:
                return offset
        return None


class IPAllocator:
    """Service ClusterIPs from one CIDR; the network address (and, for IPv4, the broadcast address)
    are never handed out."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.cidr = str(self.network)
        self.family = "IPv4" if self.network.version == 4 else "IPv6"
        total = self.network.num_addresses
        usable = total - 1 - (1 if self.network.version == 4 else 0)
        if self.network.version == 6:
            usable = min(usable, 65536)  # upstream bounds its bitmap the same way
        self._base = int(self.network.network_address) + 1
        self._range = RangeAllocator(usable, band_size(total, minimum=16, maximum=256, step=16))

    @classmethod
    def with_allocated(cls, cidr: str, ips: Iterable[str]) -> IPAllocator:
        """The repair pass: a range with `ips` taken (values outside it are skipped)."""
        allocator = cls(cidr)
        for ip in ips:
            if allocator.contains(ip) and not allocator.has(ip):
                allocator.allocate(ip)
        return allocator

    @property
    def free(self) -> int:
        return self._range.free

    @property
    def used(self) -> int:
        return self._range.used

    def contains(self, ip: str) -> bool:
        return self._offset(ip) is not None

    def has(self, ip: str) -> bool:
        offset = self._offset(ip)
        return offset is not None and self._range.has(offset)

    def allocate(self, ip: str) -> None:
        offset = self._offset(ip)
        if offset is None:
            raise NotInRange(f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is {self.cidr}")
        if not self._range.take(offset):
            raise AlreadyAllocated("provided IP is already allocated")

    def allocate_next(self, rng: random.Random) -> str:
        return str(ipaddress.ip_address(self._base + self._range.take_next(rng)))

    def release(self, ip: str) -> None:
        offset = self._offset(ip)
        if offset is not None:
            self._range.release(offset)

    def _offset(self, ip: str) -> int | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if address.version != self.network.version or address not in self.network:
            return None
        offset = int(address) - self._base
        return offset if 0 <= offset < self._range.size else None


class PortAllocator:
    """Node ports from an inclusive range such as 30000-32767."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        size = high - low + 1
        self._range = RangeAllocator(size, band_size(size, minimum=16, maximum=128, step=32))

    @classmethod
    def with_allocated(cls, low: int, high: int, ports: Iterable[int]) -> PortAllocator:
        allocator = cls(low, high)
        for port in ports:
            if allocator.contains(port):
                allocator._range.take(port - low)
        return allocator

    @property
    def range_text(self) -> str:
        return f"{self.low}-{self.high}"

    @property
    def free(self) -> int:
        return self._range.free

    @property
    def used(self) -> int:
        return self._range.used

    def contains(self, port: int) -> bool:
        return self.low <= port <= self.high

    def has(self, port: int) -> bool:
        return self.contains(port) and self._range.has(port - self.low)

    def allocate(self, port: int) -> None:
        if not self.contains(port):
            raise NotInRange(f"provided port is not in the valid range. The range of valid ports is {self.range_text}")
        if not self._range.take(port - self.low):
            raise AlreadyAllocated("provided port is already allocated")

    def allocate_next(self, rng: random.Random) -> int:
        return self.low + self._range.take_next(rng)

    def release(self, port: int) -> None:
        if self.contains(port):
            self._range.release(port - self.low)


__all__ = [
    "AllocationError",
    "AlreadyAllocated",
    "IPAllocator",
    "NotInRange",
    "PortAllocator",
    "RangeAllocator",
    "RangeFull",
    "band_size",
]
