"""What every component uses to reach the API: the `Client` protocol and its HTTPS implementation,
informers (list+watch into an indexed cache), a rate-limited work queue and Lease leader election.

The dependency rule: this package imports `kubelite.machinery` only — never the API server,
storage or the command line — so controllers, the scheduler, the node agent and the proxy stay
decoupled from how the API is served.
"""

from kubelite.client.clock import Clock, RealClock
from kubelite.client.errors import TransportError
from kubelite.client.http import HttpClient, resource_path
from kubelite.client.indexer import NAMESPACE_INDEX, Indexer
from kubelite.client.informer import EventHandler, Informer, SharedInformerFactory
from kubelite.client.interface import Client, ObjectKey, PatchType, WatchEvent, builtin, key_of, resource_for
from kubelite.client.kubeconfig import KubeConfig, KubeConfigError, kubeconfig_from_dict, load_kubeconfig
from kubelite.client.leader import LeaderElector
from kubelite.client.workqueue import QueueShutDown, WorkQueue
from kubelite.machinery.errors import ApiError

__all__ = [
    "NAMESPACE_INDEX",
    "ApiError",
    "Client",
    "Clock",
    "EventHandler",
    "HttpClient",
    "Indexer",
    "Informer",
    "KubeConfig",
    "KubeConfigError",
    "LeaderElector",
    "ObjectKey",
    "PatchType",
    "QueueShutDown",
    "RealClock",
    "SharedInformerFactory",
    "TransportError",
    "WatchEvent",
    "WorkQueue",
    "builtin",
    "key_of",
    "kubeconfig_from_dict",
    "load_kubeconfig",
    "resource_for",
    "resource_path",
]
