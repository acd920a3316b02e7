"""Pod event handlers shared by the controllers that follow Services' pods (EndpointSlice, Endpoints)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubelite.client.informer import Informer
from kubelite.controllers.servicepods import service_selector
from kubelite.machinery.meta import labels_of, namespace_of


class ServicePodHandlers:
    """Mixin: a pod event enqueues every Service in its namespace whose selector matches it (before and after a
    label change).  The controller provides `services` (a Service informer with the namespace index) and
    `enqueue`."""

    services: Informer
    enqueue: Callable[[dict[str, Any]], None]  # Controller.enqueue (an annotation only: nothing is overridden)

    def _enqueue_selecting(self, pod: dict[str, Any]) -> None:
        labels = labels_of(pod)
        for service in self.services.by_index("namespace", namespace_of(pod)):
            selector = service_selector(service)
            if selector is not None and selector.matches(labels):
                self.enqueue(service)

    def _on_pod(self, pod: dict[str, Any]) -> None:
        self._enqueue_selecting(pod)

    def _on_pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if (old.get("metadata") or {}).get("resourceVersion") == (new.get("metadata") or {}).get("resourceVersion"):
            return
        self._enqueue_selecting(new)
        if labels_of(old) != labels_of(new):
            self._enqueue_selecting(old)
