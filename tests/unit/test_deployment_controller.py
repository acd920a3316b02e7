"""The Deployment controller's shell against the FakeClient: the test plays the ReplicaSet
controller (it sets ReplicaSet status as the ReplicaSet controller would) and checks what the
Deployment controller does with ReplicaSets, the Deployment's status, annotations and events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.client.interface import builtin
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.deployment import DeploymentController
from kubelite.controllers.deployment.util import compute_hash
from kubelite.machinery.meta import deep_copy
from kubelite.testing.fake_client import FakeClient
from kubelite.testing.fake_clock import FakeClock

DEPLOYMENTS = builtin("apps", "deployments")
REPLICA_SETS = builtin("apps", "replicasets")
PODS = builtin("", "pods")
EVENTS = builtin("", "events")
NS = "ns"


class CacheGuard:
    """Remembers a copy of every object each informer delivered; `check()` fails if the controller
    changed a cached object in place."""

    def __init__(self, controller: DeploymentController) -> None:
        self.seen: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.informers = (controller.deployments, controller.replica_sets, controller.pods)
        for informer in self.informers:
            informer.add_handler(self._record, lambda _old, new: self._record(new))

    def _record(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.seen[(obj.get("kind", ""), f"{meta.get('namespace')}/{meta['name']}", meta["resourceVersion"])] = (
            deep_copy(obj)
        )

    def check(self) -> None:
        for informer in self.informers:
            for obj in informer.list():
                meta = obj["metadata"]
                key = (obj.get("kind", ""), f"{meta.get('namespace')}/{meta['name']}", meta["resourceVersion"])
                assert obj == self.seen[key], f"cached {key} was changed in place"


class Harness:
    def __init__(self, client: FakeClient, clock: FakeClock, controller: DeploymentController) -> None:
        self.client, self.clock, self.controller = client, clock, controller

    async def settle(self) -> None:
        """Until the controller has nothing left to do now: no write for a while, an empty queue.
        Moves the fake clock a little (at most one second) for rate-limited retries after 409s."""
        advanced = 0.0
        async with asyncio.timeout(10):
            quiet = 0
            revision = self.client.revision
            while quiet < 5:
                for _ in range(5):
                    await asyncio.sleep(0)
                queue = self.controller.queue
                busy = len(queue) or queue.processing() or self.client.revision != revision
                revision = self.client.revision
                if busy:
                    quiet = 0
                    continue
                if queue.waiting() and advanced < 1.0:
                    await self.clock.step(0.05)
                    advanced += 0.05
                    quiet = 0
                    continue
                quiet += 1

    async def deployment(self, name: str = "web") -> dict[str, Any]:
        return await self.client.get(DEPLOYMENTS, name, NS)

    def replica_sets(self) -> list[dict[str, Any]]:
        """Oldest revision first (creation times tie within a second)."""

        def revision(rs: dict[str, Any]) -> int:
            return int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision") or 0)

        return sorted(self.client.objects(REPLICA_SETS), key=revision)

    def by_name(self) -> dict[str, dict[str, Any]]:
        return {rs["metadata"]["name"]: rs for rs in self.client.objects(REPLICA_SETS)}

    async def play_replica_sets(
        self, *, ready: bool = True, healthy: Callable[[dict[str, Any]], bool] = lambda rs: True
    ) -> None:
        """Act as the ReplicaSet controller once: pods follow each ReplicaSet's size (new pods not
        available yet, the unavailable ones deleted first); with `ready`, healthy pods then become
        available.  Settles the Deployment controller after each part."""
        for rs in self.client.objects(REPLICA_SETS):
            spec = int(rs["spec"].get("replicas", 1))
            available = min(int((rs.get("status") or {}).get("availableReplicas") or 0), spec)
            await self._set_status(rs, spec, available)
        await self.settle()
        if ready:
            for rs in self.client.objects(REPLICA_SETS):
                spec = int(rs["spec"].get("replicas", 1))
                await self._set_status(rs, spec, spec if healthy(rs) else 0)
            await self.settle()

    async def _set_status(self, rs: dict[str, Any], replicas: int, available: int) -> None:
        status = {
            "replicas": replicas,
            "fullyLabeledReplicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if {k: (rs.get("status") or {}).get(k) for k in status} != status:
            await self.client.patch(REPLICA_SETS, rs["metadata"]["name"], {"status": status}, NS, subresource="status")

    def events(self, reason: str | None = None) -> list[str]:
        found = [e for e in self.client.objects(EVENTS) if e["involvedObject"]["kind"] == "Deployment"]
        return [e["message"] for e in found if reason is None or e["reason"] == reason]

    async def flush_events(self) -> None:
        await self.controller.recorder.flush()


@asynccontextmanager
async def running(client: FakeClient | None = None) -> AsyncIterator[Harness]:
    client = client or FakeClient()
    clock = FakeClock()
    factory = SharedInformerFactory(client, clock=clock)
    recorder = EventRecorder(client, "deployment-controller", clock=clock)
    controller = DeploymentController(ControllerContext(client, factory, recorder, clock))
    guard = CacheGuard(controller)
    tasks = [asyncio.create_task(t) for t in (factory.run(), recorder.run(), controller.run())]
    try:
        await factory.wait_for_sync()
        harness = Harness(client, clock, controller)
        await harness.settle()
        yield harness
        guard.check()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def template(image: str = "nginx:1") -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}


def manifest(replicas: int = 3, *, image: str = "nginx:1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": template(image),
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": body}


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return cond
    raise AssertionError(f"no {kind} condition in {obj.get('status')}")


async def set_image(h: Harness, image: str, **annotations: str) -> None:
    patch: dict[str, Any] = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}
    if annotations:
        patch["metadata"] = {"annotations": annotations}
    await h.client.patch(DEPLOYMENTS, "web", patch, NS, patch_type="strategic")
    await h.settle()


async def roll_to_completion(h: Harness, *, check: Callable[[], None] | None = None, rounds: int = 30) -> None:
    for _ in range(rounds):
        d = await h.deployment()
        status = d.get("status", {})
        if (
            status.get("observedGeneration") == d["metadata"]["generation"]
            and condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
            and status.get("replicas") == status.get("updatedReplicas") == d["spec"]["replicas"]
        ):
            return
        await h.play_replica_sets()
        if check:
            check()
    raise AssertionError(f"rollout did not finish: {(await h.deployment()).get('status')}")


# -- a fresh Deployment ---------------------------------------------------------------------------


async def test_fresh_deployment_creates_one_hashed_replica_set_and_becomes_available() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(3), NS)
        await h.settle()
        (rs,) = h.replica_sets()
        pod_hash = compute_hash(template())
        assert rs["metadata"]["name"] == f"web-{pod_hash}"
        assert rs["metadata"]["labels"]["pod-template-hash"] == pod_hash
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
        assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == pod_hash
        assert rs["spec"]["replicas"] == 3
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
        d = await h.deployment()
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert condition(d, "Progressing")["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated")
        assert condition(d, "Available")["status"] == "False"

        await h.play_replica_sets()
        d = await h.deployment()
        assert {
            k: d["status"].get(k) for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
        } == {
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
        }
        assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
        assert "unavailableReplicas" not in d["status"]
        assert (condition(d, "Available")["status"], condition(d, "Available")["reason"]) == (
            "True",
            "MinimumReplicasAvailable",
        )
        progressing = condition(d, "Progressing")
        assert progressing["reason"] == "NewReplicaSetAvailable"
        assert progressing["message"] == f'ReplicaSet "web-{pod_hash}" has successfully progressed.'
        await h.flush_events()
        assert h.events("ScalingReplicaSet") == [f"Scaled up replica set web-{pod_hash} from 0 to 3"]


# -- rolling update -------------------------------------------------------------------------------


async def test_template_change_rolls_within_surge_and_unavailable_at_every_step() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(10), NS)  # 25%: surge 3, unavailable 2
        await h.settle()
        await roll_to_completion(h)
        (old,) = h.replica_sets()

        def bounds() -> None:
            rss = h.client.objects(REPLICA_SETS)
            assert sum(rs["spec"]["replicas"] for rs in rss) <= 13
            assert sum(rs.get("status", {}).get("replicas", 0) for rs in rss) <= 13
            assert sum(rs.get("status", {}).get("availableReplicas", 0) for rs in rss) >= 8

        await set_image(h, "nginx:2", **{"kubernetes.io/change-cause": "kubectl set image nginx:2"})
        bounds()
        await roll_to_completion(h, check=bounds)
        rss = h.by_name()
        new_name = f"web-{compute_hash(template('nginx:2'))}"
        assert set(rss) == {old["metadata"]["name"], new_name}
        assert rss[old["metadata"]["name"]]["spec"]["replicas"] == 0
        new = rss[new_name]
        assert new["spec"]["replicas"] == 10
        assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        assert new["metadata"]["annotations"]["kubernetes.io/change-cause"] == "kubectl set image nginx:2"
        assert (await h.deployment())["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        await h.flush_events()
        scaling = h.events("ScalingReplicaSet")
        assert scaling[1] == f"Scaled up replica set {new_name} from 0 to 3"
        assert f"Scaled down replica set {old['metadata']['name']} from 10 to 8" in scaling
        assert scaling[-1].endswith(" to 0") or scaling[-1].endswith(" to 10")


async def test_scaling_mid_rollout_is_proportional() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(10), NS)
        await h.settle()
        await roll_to_completion(h)
        await set_image(h, "nginx:2")  # new RS at 3, old at 10: 13 of 13
        await h.play_replica_sets(ready=False)  # the new pods never get ready meanwhile
        sizes = {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["replicas"]
            for rs in h.replica_sets()
        }
        assert sizes == {"1": 8, "2": 5}  # old scaled down by the unavailable budget, new filled the surge
        await h.client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 20}}, NS)
        await h.settle()
        sizes = {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["replicas"]
            for rs in h.replica_sets()
        }
        assert sizes == {"1": 15, "2": 10}  # 13 → 25 (20 + 5 surge), in proportion
        for rs in h.replica_sets():
            assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "20"
            assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "25"


# -- Recreate -------------------------------------------------------------------------------------


async def test_recreate_scales_old_down_and_waits_for_old_pods_before_scaling_up() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(2, strategy={"type": "Recreate"}), NS)
        await h.settle()
        await roll_to_completion(h)
        (old,) = h.replica_sets()
        pod = {
            "metadata": {
                "name": "old-pod",
                "labels": {"app": "web", "pod-template-hash": old["metadata"]["labels"]["pod-template-hash"]},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": old["metadata"]["name"],
                        "uid": old["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running"},
        }
        await h.client.create(PODS, pod, NS)
        await h.client.patch(PODS, "old-pod", {"status": {"phase": "Running"}}, NS, subresource="status")
        await set_image(h, "nginx:2")
        assert [rs["spec"]["replicas"] for rs in h.replica_sets()] == [0]  # scaled down; no new RS yet
        await h.play_replica_sets()  # the old RS reports no pods, but its pod is still running
        assert len(h.replica_sets()) == 1
        await h.client.delete(PODS, "old-pod", NS)
        await h.settle()
        rss = h.replica_sets()
        assert [rs["spec"]["replicas"] for rs in rss] == [0, 2]  # the new one at full size at once
        await roll_to_completion(h)
        await h.flush_events()
        assert h.events("ScalingReplicaSet")[-2:] == [
            f"Scaled down replica set {old['metadata']['name']} from 2 to 0",
            f"Scaled up replica set {rss[1]['metadata']['name']} from 0 to 2",
        ]


# -- pause / resume -------------------------------------------------------------------------------


async def test_paused_deployment_does_not_roll_but_scales_and_resume_continues() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(2), NS)
        await h.settle()
        await roll_to_completion(h)
        await h.client.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}}, NS)
        await h.settle()
        paused = condition(await h.deployment(), "Progressing")
        assert (paused["status"], paused["reason"], paused["message"]) == (
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
        )
        await set_image(h, "nginx:2")
        assert len(h.replica_sets()) == 1  # no rollout while paused
        d = await h.deployment()
        assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
        await h.client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 4}}, NS)
        await h.settle()
        assert [rs["spec"]["replicas"] for rs in h.replica_sets()] == [4]  # scaling still applies
        await h.client.patch(DEPLOYMENTS, "web", {"spec": {"paused": None}}, NS)
        await h.settle()
        assert len(h.replica_sets()) == 2
        reasons = {condition(await h.deployment(), "Progressing")["reason"]}
        assert reasons <= {"DeploymentResumed", "NewReplicaSetCreated", "ReplicaSetUpdated"}
        await roll_to_completion(h)
        assert [rs["spec"]["replicas"] for rs in h.replica_sets()] == [0, 4]


# -- progress deadline ----------------------------------------------------------------------------


async def test_no_progress_within_the_deadline_sets_progress_deadline_exceeded() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(2, progressDeadlineSeconds=30), NS)
        await h.settle()
        await h.play_replica_sets(healthy=lambda rs: False)  # pods exist but never become available
        assert condition(await h.deployment(), "Progressing")["status"] == "True"
        assert h.controller.queue.waiting() == 1  # a re-check at the deadline, no polling
        await h.clock.step(32)
        await h.settle()
        progressing = condition(await h.deployment(), "Progressing")
        (rs,) = h.replica_sets()
        assert (progressing["status"], progressing["reason"], progressing["message"]) == (
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.',
        )
        await h.play_replica_sets()  # recovery: the pods come up
        assert condition(await h.deployment(), "Progressing")["reason"] == "NewReplicaSetAvailable"


# -- revision history and rollback ----------------------------------------------------------------


async def test_revision_history_limit_deletes_the_oldest_empty_replica_sets() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(1, revisionHistoryLimit=1), NS)
        await h.settle()
        await roll_to_completion(h)
        for image in ("nginx:2", "nginx:3", "nginx:4"):
            await set_image(h, image)
            await roll_to_completion(h)
            await h.settle()
        revisions = sorted(
            int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) for rs in h.replica_sets()
        )
        assert revisions == [3, 4]


async def test_rollback_by_template_makes_the_old_replica_set_new_with_a_new_revision() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(2), NS)
        await h.settle()
        await roll_to_completion(h)
        (first,) = h.replica_sets()
        await set_image(h, "nginx:2")
        await roll_to_completion(h)
        await set_image(h, "nginx:1")  # what `kubectl rollout undo` does: the old template back
        await roll_to_completion(h)
        rss = h.by_name()
        assert len(rss) == 2
        back = rss[first["metadata"]["name"]]
        assert back["spec"]["replicas"] == 2
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        assert (await h.deployment())["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


# -- ownership, selectors, deletion, collisions ---------------------------------------------------


async def test_orphan_replica_set_with_the_template_is_adopted_not_duplicated() -> None:
    client = FakeClient()
    orphan = {
        "metadata": {"name": "web-orphan", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
    }
    await client.create(REPLICA_SETS, orphan, NS)
    async with running(client) as h:
        await h.client.create(DEPLOYMENTS, manifest(3), NS)
        await h.settle()
        (rs,) = h.replica_sets()
        assert rs["metadata"]["name"] == "web-orphan"
        assert rs["metadata"]["ownerReferences"][0]["uid"] == (await h.deployment())["metadata"]["uid"]
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert condition(await h.deployment(), "Progressing")["reason"] in ("FoundNewReplicaSet", "ReplicaSetUpdated")


async def test_empty_selector_is_refused_with_a_warning() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(1, selector={}), NS)
        await h.settle()
        assert h.replica_sets() == []
        d = await h.deployment()
        assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
        await h.flush_events()
        assert h.events("SelectingAll") == ["This deployment is selecting all pods. A non-empty selector is required."]


async def test_deployment_being_deleted_gets_status_but_no_replica_set() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, {**manifest(2), "metadata": {"name": "web", "finalizers": ["hold"]}}, NS)
        await h.client.delete(DEPLOYMENTS, "web", NS)
        await h.settle()
        assert h.replica_sets() == []
        d = await h.deployment()
        assert d["status"]["observedGeneration"] == 1
        assert condition(d, "Available")["status"] == "False"


async def test_hash_collision_bumps_collision_count_and_uses_another_name() -> None:
    client = FakeClient()
    squatter = {
        "metadata": {"name": f"web-{compute_hash(template())}", "labels": {"other": "app"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"other": "app"}},
            "template": {"metadata": {"labels": {"other": "app"}}},
        },
    }
    await client.create(REPLICA_SETS, squatter, NS)
    async with running(client) as h:
        await h.client.create(DEPLOYMENTS, manifest(1), NS)
        await h.settle()
        d = await h.deployment()
        assert d["status"]["collisionCount"] == 1
        mine = [rs for rs in h.replica_sets() if rs["metadata"].get("ownerReferences")]
        assert [rs["metadata"]["name"] for rs in mine] == [f"web-{compute_hash(template(), 1)}"]


async def test_min_ready_seconds_is_copied_to_the_replica_set() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(1, minReadySeconds=7), NS)
        await h.settle()
        assert h.replica_sets()[0]["spec"]["minReadySeconds"] == 7
        await h.client.patch(DEPLOYMENTS, "web", {"spec": {"minReadySeconds": 3}}, NS)
        await h.settle()
        assert h.replica_sets()[0]["spec"]["minReadySeconds"] == 3


async def test_replica_set_relabelled_out_of_the_selector_is_released_and_replaced() -> None:
    async with running() as h:
        await h.client.create(DEPLOYMENTS, manifest(1), NS)
        await h.settle()
        (first,) = h.replica_sets()
        name = first["metadata"]["name"]
        relabel = {"metadata": {"labels": {"app": "elsewhere", "pod-template-hash": "x"}}}
        await h.client.patch(REPLICA_SETS, name, relabel, NS)
        await h.settle()
        assert not h.by_name()[name]["metadata"].get("ownerReferences")  # released
        d = await h.deployment()
        assert d["status"]["collisionCount"] == 1  # its name is taken by the released one
        owned = [rs for rs in h.replica_sets() if rs["metadata"].get("ownerReferences")]
        assert [rs["metadata"]["name"] for rs in owned] == [f"web-{compute_hash(template(), 1)}"]
