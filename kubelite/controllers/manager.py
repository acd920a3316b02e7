"""The controller manager: every workload controller in one process, sharing one set of informers.

Contracts:

* Each controller gets its own `EventRecorder` whose component is the controller's name (so
  `kubectl describe` shows "deployment-controller", "replicaset-controller", … in the From column,
  as upstream) and the shared `SharedInformerFactory`, so a resource watched by several controllers
  is listed and watched once.
* `run()` runs the factory, the recorders and the controllers until cancelled.  A controller that
  fails (a bug, not a failed reconcile — those are retried inside the controller) ends `run()` with
  its exception: the process supervisor (`kubelite server`) treats it as a failed component.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from kubelite.client.clock import Clock, RealClock
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import Client
from kubelite.client.metrics import ReflectorMetrics, WorkQueueMetrics
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.cronjob import CronJobController
from kubelite.controllers.daemonset import DaemonSetController
from kubelite.controllers.deployment import DeploymentController
from kubelite.controllers.disruption import DisruptionController
from kubelite.controllers.endpoints import EndpointsController
from kubelite.controllers.endpointslice import EndpointSliceController
from kubelite.controllers.garbagecollector import GarbageCollector
from kubelite.controllers.job import JobController
from kubelite.controllers.localpath import LocalPathProvisioner
from kubelite.controllers.namespace import NamespaceController
from kubelite.controllers.nodeipam import NodeIpamController
from kubelite.controllers.nodelifecycle import NodeLifecycleController
from kubelite.controllers.persistentvolume import (
    PersistentVolumeBinder,
    PVCProtectionController,
    PVProtectionController,
)
from kubelite.controllers.podautoscaler import HorizontalPodAutoscalerController
from kubelite.controllers.podgc import PodGarbageCollector
from kubelite.controllers.replicaset import ReplicaSetController, ReplicationControllerController
from kubelite.controllers.rootca import RootCACertPublisher
from kubelite.controllers.serviceaccount import ServiceAccountController
from kubelite.controllers.servicelb import ServiceLBController
from kubelite.controllers.statefulset import StatefulSetController
from kubelite.controllers.tainteviction import TaintEvictionController
from kubelite.controllers.ttlafterfinished import TTLAfterFinishedController
from kubelite.machinery.network import ClusterNetwork

log = logging.getLogger(__name__)

ControllerFactory = Callable[[ControllerContext], Controller]


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    """The settings controllers take from the server's flags (kube-controller-manager's flags, in seconds)."""

    ca_pem: bytes | None = None
    network: ClusterNetwork = field(default_factory=ClusterNetwork)
    node_monitor_grace_period: float = 40.0
    hpa_sync_period: float = 15.0
    default_local_storage_path: str = "/var/lib/kubelite/storage"
    # where workqueue_* and reflector_* metrics go (the API server's registry in `kubelite server`); None: nowhere
    prometheus_registry: CollectorRegistry | None = None


def default_controllers(options: ControllerOptions | None = None) -> dict[str, ControllerFactory]:
    """Name → constructor of every controller `kubelite server` runs, in upstream's names."""
    options = options or ControllerOptions()
    ca_pem = options.ca_pem
    return {
        "replicaset": ReplicaSetController,
        "replicationcontroller": ReplicationControllerController,
        "deployment": DeploymentController,
        "daemonset": DaemonSetController,
        "statefulset": StatefulSetController,
        "job": JobController,
        "cronjob": CronJobController,
        # upstream's TTL controller deletes in the foreground: the Job goes only after its pods
        "ttl-after-finished": lambda context: TTLAfterFinishedController(context, propagation_policy="Foreground"),
        "garbage-collector": GarbageCollector,
        "podgc": PodGarbageCollector,
        "namespace": NamespaceController,
        "serviceaccount": ServiceAccountController,
        "root-ca-cert-publisher": lambda context: RootCACertPublisher(context, ca_pem=ca_pem),
        "endpoint": EndpointsController,
        "endpointslice": EndpointSliceController,
        "nodeipam": lambda context: NodeIpamController(context, network=options.network),
        "service-lb": ServiceLBController,
        "persistentvolume-binder": PersistentVolumeBinder,
        "persistentvolumeclaim-protection": PVCProtectionController,
        "persistentvolume-protection": PVProtectionController,
        "local-path-provisioner": lambda context: LocalPathProvisioner(
            context, default_path=options.default_local_storage_path
        ),
        "nodelifecycle": lambda context: NodeLifecycleController(
            context, node_monitor_grace_period=options.node_monitor_grace_period
        ),
        "taint-eviction-controller": TaintEvictionController,
        "disruption": DisruptionController,
        "horizontalpodautoscaling": lambda context: HorizontalPodAutoscalerController(
            context, sync_period=options.hpa_sync_period
        ),
    }


class ControllerManager:
    """Builds the controllers named in `enabled` (default: all of `default_controllers()`)."""

    def __init__(
        self,
        client: Client,
        *,
        clock: Clock | None = None,
        options: ControllerOptions | None = None,
        enabled: Sequence[str] | None = None,
    ) -> None:
        self.client = client
        self.clock: Clock = clock or RealClock()
        registry = options.prometheus_registry if options is not None else None
        reflectors = ReflectorMetrics(registry) if registry is not None else None
        queues = WorkQueueMetrics(registry) if registry is not None else None
        self.informers = SharedInformerFactory(client, clock=self.clock, metrics=reflectors)
        factories = default_controllers(options)
        unknown = sorted(set(enabled or ()) - set(factories))
        if unknown:
            raise ValueError(f"unknown controllers: {', '.join(unknown)}")
        self.recorders: list[EventRecorder] = []
        self.controllers: dict[str, Controller] = {}
        for name, factory in factories.items():
            if enabled is not None and name not in enabled:
                continue
            recorder = EventRecorder(client, _component(name), clock=self.clock)
            self.recorders.append(recorder)
            context = ControllerContext(client, self.informers, recorder, self.clock, queue_metrics=queues)
            self.controllers[name] = factory(context)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.informers.run())
            for recorder in self.recorders:
                tasks.create_task(recorder.run())
            for controller in self.controllers.values():
                tasks.create_task(controller.run())
            log.info("controller manager started", extra={"controllers": sorted(self.controllers)})


def _component(name: str) -> str:
    """The event source: `<name>-controller` as upstream's ("deployment-controller", …)."""
    special = {
        "replicationcontroller": "replication-controller",
        "endpointslice": "endpoint-slice-controller",
        "nodeipam": "cidrAllocator",
        "service-lb": "service-controller",
        "horizontalpodautoscaling": "horizontal-pod-autoscaler",
        "root-ca-cert-publisher": "root-ca-cert-publisher",
        "nodelifecycle": "node-controller",
        "persistentvolume-binder": "persistentvolume-controller",
        "local-path-provisioner": "kubelite.io/local-path",
        "taint-eviction-controller": "taint-eviction-controller",
    }
    if name in special:
        return special[name]
    return f"{name}-controller"


__all__ = ["ControllerManager", "ControllerOptions", "default_controllers"]
