"""The Deployment controller (upstream's pkg/controller/deployment): rollouts through ReplicaSets.

`controller` is the shell (informers, handlers, queue); `reconciler` runs one sync of one
Deployment; the decisions are pure functions in `sync` (new ReplicaSet, scaling, history),
`rolling`, `recreate` and `progress` (status and conditions), over the helpers of `util` and
`annotations`.
"""

from kubelite.controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
