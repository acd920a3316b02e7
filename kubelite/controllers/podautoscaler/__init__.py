"""The HorizontalPodAutoscaler controller: `replicas` (the replica calculation), `behavior`
(stabilization and rate policies), `source` (scale and metrics access), `status`, `controller`."""

from kubelite.controllers.podautoscaler.controller import HorizontalPodAutoscalerController

__all__ = ["HorizontalPodAutoscalerController"]
