"""DefaultTolerationSeconds admission: every new pod tolerates a not-ready or unreachable node for a while.

As upstream's plugin (plugin/pkg/admission/defaulttolerationseconds): on pod create, unless the pod
already has a toleration that covers the taint, it gets

    {key: node.kubernetes.io/not-ready,   operator: Exists, effect: NoExecute, tolerationSeconds: N}
    {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: M}

(N = M = 300 by default; the server's `--default-not-ready-toleration-seconds` /
`--default-unreachable-toleration-seconds`).  A toleration "covers" the taint as upstream decides it:
its key is the taint's key or empty, and its effect is NoExecute or empty.  Updates and subresources
are left alone.  So a pod on a node that stops reporting is evicted by the taint eviction controller
after N/M seconds rather than at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOT_READY_TAINT_KEY = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT_KEY = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300


@dataclass(frozen=True)
class DefaultTolerationSeconds:
    """The plugin's two settings; `admit(pod)` applies them to a pod being created."""

    not_ready_seconds: int = DEFAULT_TOLERATION_SECONDS
    unreachable_seconds: int = DEFAULT_TOLERATION_SECONDS

    def admit(self, pod: dict[str, Any]) -> None:
        """Add the missing default tolerations; mutates `pod` (the caller's own copy).  Idempotent."""
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            return  # validation reports the missing spec
        existing = spec.get("tolerations")
        tolerations = list(existing) if isinstance(existing, list) else []
        added = False
        for key, seconds in (
            (NOT_READY_TAINT_KEY, self.not_ready_seconds),
            (UNREACHABLE_TAINT_KEY, self.unreachable_seconds),
        ):
            if not any(_covers(t, key) for t in tolerations):
                tolerations.append(
                    {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
                )
                added = True
        if added:
            spec["tolerations"] = tolerations


def _covers(toleration: Any, key: str) -> bool:
    if not isinstance(toleration, dict):
        return False
    return (toleration.get("key") or "") in ("", key) and (toleration.get("effect") or "") in ("", "NoExecute")


__all__ = [
    "DEFAULT_TOLERATION_SECONDS",
    "NOT_READY_TAINT_KEY",
    "UNREACHABLE_TAINT_KEY",
    "DefaultTolerationSeconds",
]
