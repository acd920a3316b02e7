"""Who holds which ClusterIP and node port: the API server's single source for Service allocation.

Upstream keeps a bitmap per range in storage and a repair controller that reconciles it with the
Services.  kubelite derives the state from the Services themselves instead, so it cannot drift:

* **owned** values are those of the stored Services.  `observe()` is fed every Service change the
  watch cache applies (create, update, delete, whatever path caused it: a DELETE, the last finalizer
  going away, namespace clean-up), so a value is released exactly when no stored Service has it
  any more; updates release what they drop only once the update is stored (upstream's release on
  commit).  `rebuild()` is the repair pass at start-up (a restart never hands out a value twice).
* **pending** values are reserved by an `Allocation` for a write in flight: taken before the write,
  so of two concurrent creates asking for the same value exactly one gets it.  `finish()` after the
  write, whatever its outcome: values the write stored are owned by then (the store waits until its
  cache has seen the write), the others go back to the range.  A write that failed therefore leaves
  nothing behind.

Everything here is synchronous and runs on the API server's event loop; there is no await between
checking a value and taking it.  Dry runs check the same things and reserve nothing.
Multi-server (etcd) deployments share no pending state: two API servers could hand out the same
value concurrently (upstream serialises through the stored bitmap); see the module's report.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubelite.apiserver.registry.services import fields
from kubelite.apiserver.registry.services.allocator import AllocationError, IPAllocator, PortAllocator
from kubelite.apiserver.registry.validation import field as field_errors
from kubelite.machinery import errors
from kubelite.machinery.errors import Cause
from kubelite.machinery.network import ClusterNetwork

log = logging.getLogger(__name__)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Holdings:
    """What one stored Service occupies."""

    ips: frozenset[str] = frozenset()
    ports: frozenset[int] = frozenset()


NOTHING = Holdings()


def holdings_of(service: Obj | None) -> Holdings:
    """ClusterIPs (not for ExternalName or headless) and every node port, health check port included."""
    if not service:
        return NOTHING
    spec = service.get("spec") or {}
    ips: frozenset[str] = frozenset()
    if fields.needs_cluster_ip(spec) and not fields.is_headless(spec):
        ips = frozenset(fields.cluster_ips(spec))
    ports = set(fields.node_ports(spec))
    if fields.health_check_node_port(spec):
        ports.add(fields.health_check_node_port(spec))
    return Holdings(ips, frozenset(ports))


@dataclass(eq=False)
class Allocation:
    """Values reserved for one write.  Call `finish()` once the write succeeded or failed."""

    ledger: ServiceLedger | None
    ips: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    def finish(self) -> None:
        """Idempotent: the first call hands unstored values back, later calls do nothing."""
        if self.ledger is not None:
            self.ledger._settle(self)
            self.ledger = None


class ServiceLedger:
    def __init__(self, network: ClusterNetwork, *, rng: random.Random | None = None) -> None:
        self.network = network
        self.rng = rng or random.Random()
        self.ips = IPAllocator(network.service_cidr)
        self.ports = PortAllocator(network.node_port_min, network.node_port_max)
        self._ip_owners: dict[str, set[str]] = {}
        self._port_owners: dict[int, set[str]] = {}
        self._pending_ips: set[str] = set()
        self._pending_ports: set[int] = set()
        self._held: dict[str, Holdings] = {}

    # -- what is stored -----------------------------------------------------------------------------

    def rebuild(self, services: Iterable[tuple[str, Obj]]) -> None:
        """Forget everything and take the values of `services` (key, object): the repair pass."""
        self.ips = IPAllocator(self.network.service_cidr)
        self.ports = PortAllocator(self.network.node_port_min, self.network.node_port_max)
        self._ip_owners.clear()
        self._port_owners.clear()
        self._pending_ips.clear()
        self._pending_ports.clear()
        self._held.clear()
        for key, service in services:
            self.observe(key, service)

    def observe(self, key: str, service: Obj | None) -> None:
        """The stored state of Service `key` is now `service` (None: deleted).  Idempotent."""
        before = self._held.pop(key, NOTHING)
        after = holdings_of(service)
        if after != NOTHING:
            self._held[key] = after
        for ip in before.ips - after.ips:
            self._disown(self._ip_owners, ip, key)
            self._release_ip_if_free(ip)
        for port in before.ports - after.ports:
            self._disown(self._port_owners, port, key)
            self._release_port_if_free(port)
        for ip in after.ips - before.ips:
            self._own(self._ip_owners, ip, key)
            if self.ips.contains(ip) and not self.ips.has(ip):
                self.ips.allocate(ip)
            elif not self.ips.contains(ip):
                log.warning("service cluster IP outside the service CIDR", extra={"service": key, "ip": ip})
        for port in after.ports - before.ports:
            self._own(self._port_owners, port, key)
            if self.ports.contains(port) and not self.ports.has(port):
                self.ports.allocate(port)

    def owners_of_ip(self, ip: str) -> set[str]:
        return set(self._ip_owners.get(ip, ()))

    def owners_of_port(self, port: int) -> set[str]:
        return set(self._port_owners.get(port, ()))

    # -- writes ------------------------------------------------------------------------------------

    def allocate_create(self, service: Obj, *, dry_run: bool = False) -> Allocation:
        """Fill in IP families, ClusterIPs and node ports of a Service about to be created.

        Mutates `service` (the caller's copy).  Raises `ApiError` (422 for a requested value that is
        out of range or taken, 500 for an exhausted range) with nothing reserved.
        """
        spec = service.setdefault("spec", {})
        name = _name(service)
        fields.normalize_cluster_ips(spec, None)
        self._init_ip_families(spec, None, name)
        txn = Allocation(None if dry_run else self)
        try:
            if fields.needs_cluster_ip(spec) and not fields.is_headless(spec):
                self._allocate_cluster_ip(spec, txn, name, dry_run)
            if fields.needs_node_port(spec):
                self._allocate_node_ports_on_create(spec, txn, name, dry_run)
            if fields.needs_health_check(spec):
                self._allocate_health_check(spec, txn, dry_run)
        except BaseException:
            txn.finish()
            raise
        return txn

    def allocate_update(self, new: Obj, old: Obj, *, dry_run: bool = False) -> Allocation:
        """Carry over allocated values the update left out, clear those of the old type, and allocate
        what the new type needs.  Old values the update drops are released once it is stored."""
        spec = new.setdefault("spec", {})
        old_spec = old.get("spec") or {}
        name = _name(new)
        fields.normalize_cluster_ips(spec, old_spec)
        fields.drop_type_dependent_fields(spec, old_spec)
        fields.patch_allocated_values(spec, old_spec)
        self._init_ip_families(spec, old_spec, name)
        held = holdings_of(old)
        txn = Allocation(None if dry_run else self)
        try:
            if fields.needs_cluster_ip(spec) and not fields.is_headless(spec):
                requested = fields.cluster_ips(spec)
                if not requested or requested[0] not in held.ips:
                    self._allocate_cluster_ip(spec, txn, name, dry_run)
            if fields.needs_node_port(spec):
                self._allocate_node_ports_on_update(spec, held, txn, name, dry_run)
            if fields.needs_health_check(spec):
                self._update_health_check(spec, old_spec, txn, name, dry_run)
        except BaseException:
            txn.finish()
            raise
        return txn

    # -- cluster IPs -------------------------------------------------------------------------------

    def _init_ip_families(self, spec: Obj, old: Obj | None, name: str) -> None:
        """Upstream's `initIPFamilyFields` for a single-stack cluster."""
        if not fields.needs_cluster_ip(spec):
            return
        family = self.ips.family
        if spec.get("ipFamilyPolicy") is None:
            if old and old.get("ipFamilyPolicy") is not None and fields.needs_cluster_ip(old):
                spec["ipFamilyPolicy"] = old["ipFamilyPolicy"]
            elif spec.get("clusterIP") == "None" and not spec.get("selector"):
                spec["ipFamilyPolicy"] = "RequireDualStack"
            else:
                spec["ipFamilyPolicy"] = "SingleStack"
        policy = spec["ipFamilyPolicy"]
        families = list(spec.get("ipFamilies") or [])
        causes: list[Cause] = []
        ips = fields.cluster_ips(spec)
        for i, ip in enumerate(ips):
            if ip == "None":
                break
            ip_family = _family_of(ip)
            if ip_family is None or i < len(families):
                continue
            if ip_family != family:
                causes.append(
                    field_errors.invalid(f"spec.clusterIPs[{i}]", ips, f"{ip_family} is not configured on this cluster")
                )
            else:
                families.append(ip_family)
        if causes:
            raise errors.invalid("Service", "", name, causes)
        if fields.is_headless(spec) and not spec.get("selector"):
            families = families or [family]
            if len(families) < 2 and policy != "SingleStack":
                families.append("IPv6" if families[0] == "IPv4" else "IPv4")
            spec["ipFamilies"] = families
            return
        if policy == "RequireDualStack":
            causes.append(
                field_errors.invalid(
                    "spec.ipFamilyPolicy", policy, "this cluster is not configured for dual-stack services"
                )
            )
        for i, requested in enumerate(families):
            if requested != family:
                causes.append(
                    field_errors.invalid(f"spec.ipFamilies[{i}]", requested, "not configured on this cluster")
                )
        if causes:
            raise errors.invalid("Service", "", name, causes)
        spec["ipFamilies"] = families or [family]

    def _allocate_cluster_ip(self, spec: Obj, txn: Allocation, name: str, dry_run: bool) -> None:
        requested = fields.cluster_ips(spec)
        if requested:
            ip = requested[0]
            if _family_of(ip) is None:
                return  # not an IP address: validation reports it
            try:
                if dry_run:
                    self._check_ip(ip)
                else:
                    self._take_ip(ip, txn)
            except AllocationError as exc:
                shown = list(spec.get("clusterIPs") or requested)
                cause = field_errors.invalid("spec.clusterIPs", shown, f"failed to allocate IP {ip}: {exc}")
                raise errors.invalid("Service", "", name, [cause]) from None
        else:
            try:
                ip = self.ips.allocate_next(self.rng)
            except AllocationError as exc:
                raise errors.internal(f"failed to allocate a serviceIP: {exc}") from None
            if dry_run:
                self.ips.release(ip)
            else:
                self._pending_ips.add(ip)
                txn.ips.append(ip)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def _check_ip(self, ip: str) -> None:
        if not self.ips.contains(ip):
            self.ips.allocate(ip)  # raises NotInRange with the range in its message
        if self.ips.has(ip):
            self.ips.allocate(ip)  # raises AlreadyAllocated

    def _take_ip(self, ip: str, txn: Allocation) -> None:
        self.ips.allocate(ip)
        self._pending_ips.add(ip)
        txn.ips.append(ip)

    # -- node ports --------------------------------------------------------------------------------

    def _allocate_node_ports_on_create(self, spec: Obj, txn: Allocation, name: str, dry_run: bool) -> None:
        """Ports with the same number share one node port (TCP and UDP 53 of a DNS Service)."""
        by_number: dict[Any, int] = {}
        allocate = fields.should_allocate_node_ports(spec)
        ports = [p for p in spec.get("ports") or () if isinstance(p, dict)]
        for i, port in enumerate(ports):
            wanted = _int(port.get("nodePort"))
            if not wanted and not allocate:
                continue
            shared = by_number.get(port.get("port"), 0)
            if not shared:
                requested = wanted or _requested_for_number(port.get("port"), ports)
                if requested:
                    self._take_port_or_fail(requested, txn, name, f"spec.ports[{i}].nodePort", dry_run)
                    port["nodePort"] = requested
                else:
                    port["nodePort"] = self._next_port(txn, dry_run)
                by_number[port.get("port")] = port["nodePort"]
            elif not wanted:
                port["nodePort"] = shared
            elif wanted != shared:
                self._take_port_or_fail(wanted, txn, name, f"spec.ports[{i}].nodePort", dry_run)

    def _allocate_node_ports_on_update(
        self, spec: Obj, held: Holdings, txn: Allocation, name: str, dry_run: bool
    ) -> None:
        allocate = fields.should_allocate_node_ports(spec)
        taken_here: set[int] = set()
        for i, port in enumerate(p for p in spec.get("ports") or () if isinstance(p, dict)):
            wanted = _int(port.get("nodePort"))
            if not wanted and not allocate:
                continue
            if wanted:
                if wanted not in held.ports and wanted not in taken_here:
                    self._take_port_or_fail(wanted, txn, name, f"spec.ports[{i}].nodePort", dry_run)
                    taken_here.add(wanted)
            else:
                port["nodePort"] = self._next_port(txn, dry_run)

    def _allocate_health_check(self, spec: Obj, txn: Allocation, dry_run: bool) -> None:
        wanted = fields.health_check_node_port(spec)
        if wanted:
            try:
                self._take_port(wanted, txn, dry_run)
            except AllocationError as exc:
                raise errors.internal(f"failed to allocate requested HealthCheck NodePort {wanted}: {exc}") from None
        else:
            try:
                spec["healthCheckNodePort"] = self._next_port(txn, dry_run, internal=False)
            except AllocationError as exc:
                raise errors.internal(f"failed to allocate a HealthCheck NodePort 0: {exc}") from None

    def _update_health_check(self, spec: Obj, old: Obj, txn: Allocation, name: str, dry_run: bool) -> None:
        if not fields.needs_health_check(old):
            self._allocate_health_check(spec, txn, dry_run)
            return
        before, after = fields.health_check_node_port(old), fields.health_check_node_port(spec)
        if before != after:
            cause = field_errors.invalid(
                "spec.healthCheckNodePort",
                after,
                "cannot change healthCheckNodePort on loadBalancer service with externalTraffic=Local during update",
            )
            raise errors.invalid("Service", "", name, [cause])

    def _take_port_or_fail(self, port: int, txn: Allocation, name: str, path: str, dry_run: bool) -> None:
        try:
            self._take_port(port, txn, dry_run)
        except AllocationError as exc:
            raise errors.invalid("Service", "", name, [field_errors.invalid(path, port, str(exc))]) from None

    def _take_port(self, port: int, txn: Allocation, dry_run: bool) -> None:
        if dry_run:
            if not self.ports.contains(port) or self.ports.has(port):
                self.ports.allocate(port)  # raises with upstream's message
            return
        self.ports.allocate(port)
        self._pending_ports.add(port)
        txn.ports.append(port)

    def _next_port(self, txn: Allocation, dry_run: bool, *, internal: bool = True) -> int:
        try:
            port = self.ports.allocate_next(self.rng)
        except AllocationError as exc:
            if not internal:
                raise
            raise errors.internal(f"failed to allocate a nodePort: {exc}") from None
        if dry_run:
            self.ports.release(port)
        else:
            self._pending_ports.add(port)
            txn.ports.append(port)
        return port

    # -- bookkeeping -------------------------------------------------------------------------------

    def _settle(self, txn: Allocation) -> None:
        for ip in txn.ips:
            self._pending_ips.discard(ip)
            self._release_ip_if_free(ip)
        for port in txn.ports:
            self._pending_ports.discard(port)
            self._release_port_if_free(port)

    def _release_ip_if_free(self, ip: str) -> None:
        if not self._ip_owners.get(ip) and ip not in self._pending_ips:
            self.ips.release(ip)

    def _release_port_if_free(self, port: int) -> None:
        if not self._port_owners.get(port) and port not in self._pending_ports:
            self.ports.release(port)

    @staticmethod
    def _own(owners: dict[Any, set[str]], value: Any, key: str) -> None:
        holders = owners.setdefault(value, set())
        if holders and key not in holders:
            log.warning(
                "value allocated to more than one service", extra={"value": value, "services": sorted(holders | {key})}
            )
        holders.add(key)

    @staticmethod
    def _disown(owners: dict[Any, set[str]], value: Any, key: str) -> None:
        holders = owners.get(value)
        if holders is not None:
            holders.discard(key)
            if not holders:
                del owners[value]


def _requested_for_number(number: Any, ports: list[Obj]) -> int:
    """A node port the client asked for on any port with this number (upstream's findRequestedNodePort)."""
    for port in ports:
        if port.get("port") == number and _int(port.get("nodePort")):
            return _int(port.get("nodePort"))
    return 0


def _family_of(ip: str) -> str | None:
    try:
        return "IPv4" if ipaddress.ip_address(ip).version == 4 else "IPv6"
    except ValueError:
        return None


def _name(service: Obj) -> str:
    return str((service.get("metadata") or {}).get("name") or "")


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


__all__ = ["Allocation", "Holdings", "ServiceLedger", "holdings_of"]
