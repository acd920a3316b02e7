"""`Balancer`: which endpoint a new userspace-proxied connection tries, in which order.

Round robin over the endpoints; with ClientIP session affinity a client that connected within the timeout goes
to the same endpoint first (as long as it is still an endpoint).  `candidates` returns every endpoint in the
order to try, so a failed connect moves on to the next one.  The affinity table is bounded (oldest dropped).
No I/O; time comes in as an argument.
"""

from __future__ import annotations

from collections import OrderedDict

from kubelite.proxy.model import Endpoint

__all__ = ["MAX_AFFINITY_ENTRIES", "Balancer"]

MAX_AFFINITY_ENTRIES = 65536


class Balancer:
    def __init__(self, endpoints: tuple[Endpoint, ...] = (), affinity_seconds: int = 0) -> None:
        self.endpoints: tuple[Endpoint, ...] = ()
        self.affinity_seconds = 0
        self._next = 0
        self._affinity: OrderedDict[str, tuple[Endpoint, float]] = OrderedDict()
        self.update(endpoints, affinity_seconds)

    def update(self, endpoints: tuple[Endpoint, ...], affinity_seconds: int) -> None:
        """New endpoints/affinity; remembered clients of endpoints that went away are forgotten."""
        self.endpoints = tuple(endpoints)
        if affinity_seconds != self.affinity_seconds:
            self._affinity.clear()
        self.affinity_seconds = affinity_seconds
        current = set(self.endpoints)
        for client in [c for c, (e, _) in self._affinity.items() if e not in current]:
            del self._affinity[client]

    def candidates(self, client_ip: str, now: float) -> list[Endpoint]:
        """Every endpoint in the order to try: the client's affine endpoint first (if any and not expired),
        then round robin from the next position."""
        if not self.endpoints:
            return []
        count = len(self.endpoints)
        start = self._next % count
        self._next = (start + 1) % count
        order = [self.endpoints[(start + i) % count] for i in range(count)]
        remembered = self._affinity.get(client_ip) if self.affinity_seconds else None
        if remembered is not None:
            endpoint, expires = remembered
            if expires > now:
                order.remove(endpoint)
                order.insert(0, endpoint)
            else:
                del self._affinity[client_ip]
        return order

    def connected(self, client_ip: str, endpoint: Endpoint, now: float) -> None:
        """Record that `client_ip` reached `endpoint` (refreshes its affinity timeout)."""
        if not self.affinity_seconds:
            return
        self._affinity[client_ip] = (endpoint, now + self.affinity_seconds)
        self._affinity.move_to_end(client_ip)
        while len(self._affinity) > MAX_AFFINITY_ENTRIES:
            self._affinity.popitem(last=False)
