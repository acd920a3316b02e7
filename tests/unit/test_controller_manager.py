"""The controller manager builds every default controller on one shared set of informers."""

from __future__ import annotations

import pytest

from kubelite.controllers.manager import ControllerManager, default_controllers
from kubelite.testing.fake_client import FakeClient


def test_every_default_controller_is_built_on_shared_informers() -> None:
    # controllers asking for the same informer index (pods by node, …) must agree on its function
    manager = ControllerManager(FakeClient())
    assert set(manager.controllers) == set(default_controllers())
    sources = {recorder._component for recorder in manager.recorders}
    assert {
        "deployment-controller",
        "endpoint-slice-controller",
        "node-controller",
        "horizontal-pod-autoscaler",
    } <= sources


def test_unknown_controller_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown controllers: nope"):
        ControllerManager(FakeClient(), enabled=["replicaset", "nope"])
