"""The node agent's streaming server — the kubelet API's logs, exec, attach and port-forward.

`KubeletServer` serves them for the containers of a `Runtime`, resolved through a `PodTarget` (the pod
manager).  The API server proxies ``pods/{name}/log|exec|attach|portforward`` to it.
"""

from kubelite.agent.streaming.interface import PodTarget
from kubelite.agent.streaming.server import KubeletServer

__all__ = ["KubeletServer", "PodTarget"]
