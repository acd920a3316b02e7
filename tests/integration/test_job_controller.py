"""The Job and TTL-after-finished controllers in this process against a real `kubelite server` (its
own controllers and agent off).  The API server defaults and validates the Jobs; nothing runs the
pods, so the test reports their outcome through `pods/status` as a kubelet would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubelite.client import HttpClient, SharedInformerFactory, builtin
from kubelite.client.events import EventRecorder
from kubelite.controllers.base import ControllerContext
from kubelite.controllers.job import JobController
from kubelite.controllers.job_pods import COMPLETION_INDEX_KEY, JOB_TRACKING_FINALIZER
from kubelite.controllers.ttlafterfinished import TTLAfterFinishedController
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import rfc3339
from kubelite.testing.server import ServerProcess

JOBS = builtin("batch", "jobs")
PODS = builtin("", "pods")
EVENTS = builtin("", "events")
NAMESPACES = builtin("", "namespaces")
WAIT = 30.0
T = TypeVar("T")


@pytest.fixture(scope="module")
def job_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--disable-agent", "--disable-controllers"]
    process = ServerProcess(Path(tmp_path_factory.mktemp("kubelite-jobs")), extra_args=args).start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def controllers(server: ServerProcess, namespace: str) -> AsyncIterator[HttpClient]:
    """The two controllers over HTTPS, in a fresh namespace."""
    async with HttpClient.from_kubeconfig(server.kubeconfig) as client:
        await client.create(NAMESPACES, {"metadata": {"name": namespace}})
        factory = SharedInformerFactory(client)
        job_recorder = EventRecorder(client, "job-controller")
        ttl_recorder = EventRecorder(client, "ttl-after-finished-controller")
        jobs = JobController(ControllerContext(client, factory, job_recorder), sync_batch_seconds=0.1)
        ttl = TTLAfterFinishedController(ControllerContext(client, factory, ttl_recorder))
        runs = (factory.run(), job_recorder.run(), ttl_recorder.run(), jobs.run(), ttl.run())
        tasks = [asyncio.create_task(run) for run in runs]
        try:
            await asyncio.wait_for(factory.wait_for_sync(), WAIT)
            yield client
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    # closed TLS connections finish closing a few loop iterations later; let them, before the loop ends
    await asyncio.sleep(0.1)


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = WAIT) -> T:
    async with asyncio.timeout(timeout):
        while True:
            if result := await check():
                return result
            await asyncio.sleep(0.05)


def job_manifest(name: str, **spec: Any) -> dict[str, Any]:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {"template": template, **spec}}


async def pods_of(client: HttpClient, namespace: str, job: str) -> list[dict[str, Any]]:
    found = await client.list(PODS, namespace, label_selector=f"batch.kubernetes.io/job-name={job}")
    return list(found["items"])


async def running_pods(client: HttpClient, namespace: str, job: str) -> list[dict[str, Any]]:
    return [
        p
        for p in await pods_of(client, namespace, job)
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        and not p["metadata"].get("deletionTimestamp")
    ]


async def finish(client: HttpClient, pod: dict[str, Any], exit_code: int = 0) -> None:
    stamp = rfc3339(datetime.now(UTC))
    terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error", "finishedAt": stamp}
    status = {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": stamp}],
        "containerStatuses": [
            {"name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0,
             "state": {"terminated": terminated}}
        ],
    }  # fmt: skip
    meta = pod["metadata"]
    await client.patch(PODS, meta["name"], {"status": status}, meta["namespace"], subresource="status")


async def job_conditions(client: HttpClient, namespace: str, name: str) -> list[str]:
    job = await client.get(JOBS, name, namespace)
    return [c["type"] for c in (job.get("status") or {}).get("conditions") or ()]


async def test_job_runs_its_pods_to_completion(job_server: ServerProcess) -> None:
    namespace = "jobs-complete"
    async with controllers(job_server, namespace) as client:
        created = await client.create(JOBS, job_manifest("count", completions=3, parallelism=2), namespace)
        uid = created["metadata"]["uid"]
        first = await eventually(lambda: running_pods(client, namespace, "count"))
        labels = first[0]["metadata"]["labels"]
        assert labels["batch.kubernetes.io/controller-uid"] == uid and labels["controller-uid"] == uid
        assert labels["batch.kubernetes.io/job-name"] == "count" and labels["job-name"] == "count"
        assert first[0]["metadata"]["finalizers"] == [JOB_TRACKING_FINALIZER]
        assert first[0]["metadata"]["ownerReferences"][0]["uid"] == uid
        finished = 0
        while finished < 3:
            pods = await eventually(lambda: running_pods(client, namespace, "count"))
            assert len(pods) <= 2
            await finish(client, pods[0])
            finished += 1
            await eventually(_succeeded_at_least(client, namespace, "count", finished))
        assert await eventually(lambda: _has(client, namespace, "count", "Complete"))
        job = await client.get(JOBS, "count", namespace)
        status = job["status"]
        assert status["succeeded"] == 3 and status["ready"] == 0 and status["uncountedTerminatedPods"] == {}
        assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
        assert status["conditions"][1]["reason"] == "CompletionsReached"
        assert status["completionTime"] and status["startTime"]
        for pod in await pods_of(client, namespace, "count"):
            assert JOB_TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or ())

        async def completed_event() -> bool:
            found = await client.list(EVENTS, namespace, field_selector="involvedObject.name=count")
            return any(
                e["reason"] == "Completed" and e["source"]["component"] == "job-controller" for e in found["items"]
            )

        assert await eventually(completed_event)


def _succeeded_at_least(client: HttpClient, namespace: str, name: str, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        job = await client.get(JOBS, name, namespace)
        return int((job.get("status") or {}).get("succeeded") or 0) >= count

    return check


async def _has(client: HttpClient, namespace: str, name: str, condition: str) -> bool:
    return condition in await job_conditions(client, namespace, name)


async def test_indexed_job_pods_carry_their_index(job_server: ServerProcess) -> None:
    namespace = "jobs-indexed"
    async with controllers(job_server, namespace) as client:
        manifest = job_manifest("idx", completions=2, parallelism=2, completionMode="Indexed")
        await client.create(JOBS, manifest, namespace)
        pods = await eventually(lambda: _when(running_pods(client, namespace, "idx"), lambda found: len(found) == 2))
        assert sorted(p["metadata"]["annotations"][COMPLETION_INDEX_KEY] for p in pods) == ["0", "1"]
        for pod in pods:
            index = pod["metadata"]["annotations"][COMPLETION_INDEX_KEY]
            assert pod["spec"]["hostname"] == f"idx-{index}"
            env = pod["spec"]["containers"][0]["env"]
            assert env[0]["name"] == "JOB_COMPLETION_INDEX"
            await finish(client, pod)
        assert await eventually(lambda: _has(client, namespace, "idx", "Complete"))
        job = await client.get(JOBS, "idx", namespace)
        assert job["status"]["completedIndexes"] == "0,1"


async def _when(found: Awaitable[T], predicate: Callable[[T], bool]) -> T | None:
    value = await found
    return value if predicate(value) else None


async def test_failed_job_is_failed_and_then_deleted_by_its_ttl(job_server: ServerProcess) -> None:
    namespace = "jobs-ttl"
    async with controllers(job_server, namespace) as client:
        manifest = job_manifest("fail", backoffLimit=0, ttlSecondsAfterFinished=5)  # time to see Failed first
        await client.create(JOBS, manifest, namespace)
        pod = (await eventually(lambda: running_pods(client, namespace, "fail")))[0]
        await finish(client, pod, exit_code=3)
        assert await eventually(lambda: _has(client, namespace, "fail", "Failed"))
        job = await client.get(JOBS, "fail", namespace)
        failed = job["status"]["conditions"][-1]
        assert (failed["reason"], failed["message"]) == (
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        )
        assert job["status"]["failed"] == 1

        async def gone() -> bool:
            try:
                await client.get(JOBS, "fail", namespace)
            except ApiError as exc:
                return exc.code == 404
            return False

        assert await eventually(gone)
