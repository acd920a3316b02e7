"""NoExecute toleration arithmetic: when a pod must leave a tainted node."""

from __future__ import annotations

import pytest

from kubelite.controllers.taints import eviction_delay

UR = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
NR = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
SOFT = {"key": "soft", "effect": "NoSchedule"}


def tol(key: str, seconds: int | None = None) -> dict:
    found: dict = {"key": key, "operator": "Exists", "effect": "NoExecute"}
    if seconds is not None:
        found["tolerationSeconds"] = seconds
    return found


@pytest.mark.parametrize(
    ("taints", "tolerations", "delay"),
    [
        ([], [], None),
        ([SOFT], [], None),
        ([UR], [], 0.0),
        ([UR], [tol(UR["key"], 300)], 300.0),
        ([UR], [tol(UR["key"])], None),  # forever
        ([UR, NR], [tol(UR["key"], 300), tol(NR["key"], 30)], 30.0),  # earliest over matching taints
        ([UR, NR], [tol(UR["key"], 300)], 0.0),  # one not tolerated
        ([UR], [tol(UR["key"], 300), tol(NR["key"], 5)], 300.0),  # unused tolerations do not count
        ([UR], [tol(UR["key"], -5)], 0.0),
        ([UR], [{"operator": "Exists"}], None),
    ],
)
def test_eviction_delay(taints: list, tolerations: list, delay: float | None) -> None:
    assert eviction_delay(taints, tolerations) == delay
