"""What a container is started with: its environment and its command line, as the kubelet builds them.

`container_env` follows the kubelet's makeEnvironmentVariables plus what a CRI runtime adds:

* The base is ``PATH`` (a default, as containerd adds for images without one) and ``HOSTNAME``
  (the pod's hostname: ``spec.hostname`` or the pod name cut to 63 characters; the node's for
  ``hostNetwork`` pods).  Everything below overrides it.
* Service links: for each Service of the pod's namespace with a cluster IP (not headless, not
  ExternalName) when ``spec.enableServiceLinks`` is not false, plus the ``kubernetes`` Service of
  ``default`` always: ``<NAME>_SERVICE_HOST``, ``<NAME>_SERVICE_PORT`` (first port),
  ``<NAME>_SERVICE_PORT_<PORTNAME>`` (named ports) and the Docker link variables ``<NAME>_PORT``,
  ``<NAME>_PORT_<port>_<PROTO>`` with ``_PROTO``, ``_PORT``, ``_ADDR``.  A service's own namespace
  wins over ``default`` for the name ``kubernetes``.  `services` is every Service the agent knows;
  this function picks.
* ``envFrom`` (in order; later sources win), then ``env`` (in order; ``$(VAR)`` in a ``value`` is
  expanded against envFrom, earlier env and the service variables).  Keys are taken as they are:
  kubelet 1.32 no longer skips envFrom keys that are not C identifiers (the API accepts any
  printable name without ``=``), so neither do we.
* A missing ConfigMap/Secret/key fails the container with reason ``CreateContainerConfigError``
  unless ``optional``; the messages are the kubelet's (``configmap "cfg" not found``, ``couldn't
  find key k in ConfigMap ns/cfg``).  Each object is read once per call.

`expand_command` turns ``command``/``args`` into the argv the process runtime starts.  That runtime
has no images, so an image's entrypoint comes from `KNOWN_IMAGES` (see there).

Error tree::

    EnvError        reason CreateContainerConfigError (environment) or CreateContainerError (command)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubelite.client.errors import TransportError
from kubelite.client.interface import Client, builtin
from kubelite.machinery.errors import ApiError
from kubelite.machinery.quantity import Quantity, QuantityError, quantity_from_json

__all__ = [
    "CREATE_CONTAINER_CONFIG_ERROR",
    "CREATE_CONTAINER_ERROR",
    "DEFAULT_PATH",
    "KNOWN_IMAGES",
    "EnvError",
    "ImageConfig",
    "container_env",
    "expand",
    "expand_command",
    "host_allocatable",
    "mapping_for",
    "pod_hostname",
    "service_env",
]

CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
CREATE_CONTAINER_ERROR = "CreateContainerError"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MASTER_SERVICES = frozenset({"kubernetes"})


class EnvError(Exception):
    """The container cannot be created: `reason` is its waiting reason, `message` the kubelet's words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# -- $(VAR) expansion ------------------------------------------------------------------------------


def mapping_for(*contexts: dict[str, str]) -> Callable[[str], str]:
    """Look a name up in each context in turn; an unknown name stays ``$(NAME)``."""

    def lookup(name: str) -> str:
        for context in contexts:
            if name in context:
                return context[name]
        return f"$({name})"

    return lookup


def expand(text: str, mapping: Callable[[str], str]) -> str:
    """Upstream's expansion: ``$(VAR)`` is replaced through `mapping`, ``$$`` is a literal ``$``,
    an unterminated ``$(`` and any other ``$x`` are kept as written."""
    out: list[str] = []
    checkpoint, cursor, size = 0, 0, len(text)
    while cursor < size:
        if text[cursor] == "$" and cursor + 1 < size:
            out.append(text[checkpoint:cursor])
            following = text[cursor + 1]
            if following == "$":
                out.append("$")
                cursor += 1
            elif following == "(":
                closer = text.find(")", cursor + 2)
                if closer < 0:
                    out.append("$(")
                    cursor += 1
                else:
                    out.append(mapping(text[cursor + 2 : closer]))
                    cursor = closer
            else:
                out.append("$" + following)
                cursor += 1
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


# -- service links ---------------------------------------------------------------------------------


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _has_cluster_ip(service: dict[str, Any]) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def _join_host_port(host: str, port: int | str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _service_vars(service: dict[str, Any]) -> dict[str, str]:
    spec = service.get("spec") or {}
    ip = str(spec.get("clusterIP"))
    ports = [p for p in spec.get("ports") or () if isinstance(p, dict)]
    prefix = _env_name(str((service.get("metadata") or {}).get("name") or ""))
    out = {f"{prefix}_SERVICE_HOST": ip}
    if ports:
        out[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
    for port in ports:
        if port.get("name"):
            out[f"{prefix}_SERVICE_PORT_{_env_name(str(port['name']))}"] = str(port.get("port"))
    for index, port in enumerate(ports):
        protocol = str(port.get("protocol") or "TCP")
        url = f"{protocol.lower()}://{_join_host_port(ip, port.get('port'))}"
        if index == 0:
            out[f"{prefix}_PORT"] = url
        base = f"{prefix}_PORT_{port.get('port')}_{protocol.upper()}"
        out[base] = url
        out[f"{base}_PROTO"] = protocol.lower()
        out[f"{base}_PORT"] = str(port.get("port"))
        out[f"{base}_ADDR"] = ip
    return out


def service_env(namespace: str, services: Iterable[dict[str, Any]], *, enable_service_links: bool) -> dict[str, str]:
    """The service link variables for a pod of `namespace` (see the module docstring)."""
    chosen: dict[str, dict[str, Any]] = {}
    for service in services:
        if not _has_cluster_ip(service):
            continue
        meta = service.get("metadata") or {}
        name, where = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        if where == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif where == namespace and enable_service_links:
            chosen[name] = service
    out: dict[str, str] = {}
    for name in sorted(chosen):
        out.update(_service_vars(chosen[name]))
    return out


# -- downward API ----------------------------------------------------------------------------------


def _split_subscript(path: str) -> tuple[str, str] | None:
    if not path.endswith("']"):
        return None
    head, sep, key = path[:-2].partition("['")
    return (head, key) if sep and head else None


def _format_map(values: dict[str, Any]) -> str:
    return "\n".join(f"{key}={json.dumps(str(values[key]), ensure_ascii=False)}" for key in sorted(values))


def pod_hostname(pod: dict[str, Any], *, node_hostname: str | None = None) -> str:
    """``spec.hostname`` or the pod's name, cut to 63 characters without a trailing ``-``/``.``;
    the node's hostname for ``hostNetwork`` pods."""
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        return node_hostname or socket.gethostname()
    name = str(spec.get("hostname") or (pod.get("metadata") or {}).get("name") or "")
    return name[:63].rstrip("-.") if len(name) > 63 else name


def _field_value(path: str, pod: dict[str, Any], *, node_name: str, node_ip: str, pod_ip: str) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    subscripted = _split_subscript(path)
    if subscripted is not None:
        head, key = subscripted
        if head in ("metadata.labels", "metadata.annotations"):
            return str((meta.get(head.partition(".")[2]) or {}).get(key, ""))
        raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, f"field label does not support subscript: {path}")
    simple: dict[str, Callable[[], str]] = {
        "metadata.name": lambda: str(meta.get("name") or ""),
        "metadata.namespace": lambda: str(meta.get("namespace") or ""),
        "metadata.uid": lambda: str(meta.get("uid") or ""),
        "metadata.labels": lambda: _format_map(meta.get("labels") or {}),
        "metadata.annotations": lambda: _format_map(meta.get("annotations") or {}),
        "spec.nodeName": lambda: str(spec.get("nodeName") or node_name),
        "spec.host": lambda: str(spec.get("nodeName") or node_name),
        "spec.serviceAccountName": lambda: str(spec.get("serviceAccountName") or ""),
        "status.hostIP": lambda: node_ip,
        "status.hostIPs": lambda: node_ip,
        "status.podIP": lambda: pod_ip,
        "status.podIPs": lambda: pod_ip,
    }
    if path not in simple:
        raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, f"unsupported fieldPath: {path}")
    return simple[path]()


def host_allocatable() -> dict[str, str]:
    """This machine's CPU count, memory and root filesystem size: the default allocatable for limits."""
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": str(memory),
        "ephemeral-storage": str(shutil.disk_usage("/").total),
    }


def _quantity(value: object, what: str) -> Quantity:
    try:
        return quantity_from_json(value)
    except QuantityError as exc:
        raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, f"invalid {what} quantity {value!r}: {exc}") from exc


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _resource_value(selector: dict[str, Any], container: dict[str, Any], allocatable: dict[str, Any]) -> str:
    """resourceFieldRef: cpu in ``ceil(milli / divisor milli)``, the others ``ceil(value / divisor)``;
    a missing (or zero) cpu/memory/ephemeral-storage limit is the node's allocatable."""
    resource = str(selector.get("resource") or "")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, f"unsupported container resource : {resource}")
    values = (container.get("resources") or {}).get(kind) or {}
    amount = _quantity(values.get(name), name)
    if kind == "limits" and amount.is_zero() and name in allocatable:
        amount = _quantity(allocatable[name], name)
    divisor = _quantity(selector.get("divisor"), "divisor")
    if divisor.is_zero():
        divisor = Quantity.from_int(1)
    if name == "cpu":
        return str(_ceil_div(amount.milli_value(), divisor.milli_value() or 1))
    return str(_ceil_div(amount.value(), divisor.value() or 1))


def _find_container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
        if container.get("name") == name:
            return dict(container)
    raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, f"container {name} not found")


# -- ConfigMaps and Secrets ------------------------------------------------------------------------


@dataclass
class _Sources:
    """Reads each ConfigMap/Secret of the pod's namespace once; ``None`` = absent."""

    client: Client
    namespace: str

    def __post_init__(self) -> None:
        self._cache: dict[tuple[str, str], dict[str, str] | None] = {}

    async def data(self, kind: str, name: str, *, optional: bool) -> dict[str, str] | None:
        """The object's data (Secret values decoded); None when it is absent and `optional`."""
        key = (kind, name)
        if key not in self._cache:
            self._cache[key] = await self._read(kind, name)
        found = self._cache[key]
        if found is None and not optional:
            raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, f'{kind} "{name}" not found')
        return found

    async def _read(self, kind: str, name: str) -> dict[str, str] | None:
        try:
            obj = await self.client.get(builtin("", f"{kind}s"), name, self.namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, str(exc)) from exc
        except TransportError as exc:
            message = f"couldn't get {kind} {self.namespace}/{name}: {exc}"
            raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, message) from exc
        if kind == "configmap":
            return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
        return {str(k): _decode(v) for k, v in (obj.get("data") or {}).items()}


def _decode(value: Any) -> str:
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8", errors="surrogateescape")
    except (binascii.Error, ValueError):
        return str(value)


_KIND_TITLE = {"configmap": "ConfigMap", "secret": "Secret"}


async def _key_value(sources: _Sources, kind: str, ref: dict[str, Any]) -> str | None:
    name, key, optional = str(ref.get("name") or ""), str(ref.get("key") or ""), bool(ref.get("optional"))
    data = await sources.data(kind, name, optional=optional)
    if data is None:
        return None
    if key not in data:
        if optional:
            return None
        message = f"couldn't find key {key} in {_KIND_TITLE[kind]} {sources.namespace}/{name}"
        raise EnvError(CREATE_CONTAINER_CONFIG_ERROR, message)
    return data[key]


# -- the environment -------------------------------------------------------------------------------


async def container_env(
    client: Client,
    pod: dict[str, Any],
    container: dict[str, Any],
    *,
    node_name: str,
    node_ip: str,
    pod_ip: str,
    services: list[dict[str, Any]],
    node_allocatable: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The container's environment (see the module docstring for order and precedence).  Raises
    `EnvError` (CreateContainerConfigError) when a required source is missing or unreadable.
    `node_allocatable` (resource name → quantity) defaults limits for resourceFieldRef; without it
    this machine's capacity is used."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    namespace = str(meta.get("namespace") or "default")
    services_vars = service_env(namespace, services, enable_service_links=spec.get("enableServiceLinks") is not False)
    sources = _Sources(client, namespace)
    declared: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        prefix = str(source.get("prefix") or "")
        for kind, field in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(field)
            if ref is None:
                continue
            data = await sources.data(kind, str(ref.get("name") or ""), optional=bool(ref.get("optional")))
            for key, value in (data or {}).items():
                declared[prefix + key] = value
    lookup = mapping_for(declared, services_vars)
    for var in container.get("env") or ():
        value = await _env_value(var, pod, container, sources, lookup, node_name, node_ip, pod_ip, node_allocatable)
        if value is not None:
            declared[str(var.get("name"))] = value
    out = {"PATH": DEFAULT_PATH, "HOSTNAME": pod_hostname(pod, node_hostname=None)}
    out.update({k: v for k, v in services_vars.items() if k not in declared})
    out.update(declared)
    return out


async def _env_value(
    var: dict[str, Any],
    pod: dict[str, Any],
    container: dict[str, Any],
    sources: _Sources,
    lookup: Callable[[str], str],
    node_name: str,
    node_ip: str,
    pod_ip: str,
    node_allocatable: dict[str, Any] | None,
) -> str | None:
    """One ``env`` entry's value; None when an optional source is missing (the variable is left out)."""
    value = var.get("value")
    if value:
        return expand(str(value), lookup)
    source = var.get("valueFrom")
    if not source:
        return ""
    if source.get("fieldRef") is not None:
        path = str(source["fieldRef"].get("fieldPath") or "")
        return _field_value(path, pod, node_name=node_name, node_ip=node_ip, pod_ip=pod_ip)
    if source.get("resourceFieldRef") is not None:
        selector = source["resourceFieldRef"]
        target = _find_container(pod, selector["containerName"]) if selector.get("containerName") else container
        allocatable = host_allocatable() if node_allocatable is None else node_allocatable
        return _resource_value(selector, target, allocatable)
    if source.get("configMapKeyRef") is not None:
        return await _key_value(sources, "configmap", source["configMapKeyRef"])
    if source.get("secretKeyRef") is not None:
        return await _key_value(sources, "secret", source["secretKeyRef"])
    return ""


# -- the command line ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image's config that decide what runs: ENTRYPOINT and CMD."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


# What the process runtime runs for images it cannot pull, keyed by repository name (no registry,
# no ``library/``, no tag).  Only images whose default command exists on an ordinary Linux host are
# listed; the pause image sleeps forever as /pause does.
KNOWN_IMAGES: dict[str, ImageConfig] = {
    "busybox": ImageConfig(cmd=("sh",)),
    "alpine": ImageConfig(cmd=("/bin/sh",)),
    "debian": ImageConfig(cmd=("bash",)),
    "ubuntu": ImageConfig(cmd=("/bin/bash",)),
    "python": ImageConfig(cmd=("python3",)),
    "pause": ImageConfig(entrypoint=("sleep", "infinity")),
    "google_containers/pause": ImageConfig(entrypoint=("sleep", "infinity")),
    "google-containers/pause": ImageConfig(entrypoint=("sleep", "infinity")),
}


def _image_names(image: str) -> list[str]:
    """The names `image` may be known by, most specific first: as written without tag or digest,
    the repository path without registry and ``library/``, and its last component."""
    ref = image.partition("@")[0]
    slash = ref.rfind("/")
    if ref.rfind(":") > slash:
        ref = ref[: ref.rfind(":")]
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    names = [ref, "/".join(parts), parts[-1]]
    return list(dict.fromkeys(n for n in names if n))


def _image_config(image: str, overrides: dict[str, list[str]] | None) -> ImageConfig | None:
    names = _image_names(image)
    for name in names:
        if overrides and name in overrides:
            return ImageConfig(entrypoint=tuple(overrides[name]))
    for name in names:
        if name in KNOWN_IMAGES:
            return KNOWN_IMAGES[name]
    return None


def expand_command(
    container: dict[str, Any], env: dict[str, str], *, image_entrypoints: dict[str, list[str]] | None = None
) -> list[str]:
    """The argv to start: ``command`` + ``args`` with ``$(VAR)`` expanded against `env`.

    Without ``command`` the image decides, as a container runtime does: its ENTRYPOINT followed by
    ``args``, or by its CMD when there are no ``args``.  Images come from `image_entrypoints` (name →
    ENTRYPOINT; ``args`` are appended) and then `KNOWN_IMAGES`.  For an unknown image ``args`` alone
    are run as the command; with neither, `EnvError` (CreateContainerError) is raised.
    """
    lookup = mapping_for(env)
    command = [expand(str(part), lookup) for part in container.get("command") or ()]
    args = [expand(str(part), lookup) for part in container.get("args") or ()]
    if command:
        return command + args
    image = str(container.get("image") or "")
    config = _image_config(image, image_entrypoints)
    if config is not None:
        argv = [*config.entrypoint, *(args or config.cmd)]
    else:
        argv = args
    if not argv:
        message = f'process runtime: image "{image}" has no known entrypoint; set command or args'
        raise EnvError(CREATE_CONTAINER_ERROR, message)
    return argv
