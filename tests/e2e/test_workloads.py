"""Workload controllers on a single-node cluster with real pods and the real kubectl: Deployments
(rollout, undo, history, pause, progress deadline), ReplicaSets, Jobs, CronJobs, cascading deletion and
namespace deletion.

The CronJobs are created by the first test and checked by the last one, so that the minute boundaries
they need pass while the other scenarios run."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

from kubernetes import client, config, watch

from kubelite.testing.cluster import get_json, wait_for
from kubelite.testing.server import ServerProcess

CRON_NS = "cron"


def _apply(cluster: ServerProcess, manifest: str, namespace: str = "default") -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=textwrap.dedent(manifest))


def _namespace(cluster: ServerProcess, name: str) -> str:
    cluster.kubectl("create", "namespace", name)
    return name


def _deployment(name: str, *, replicas: int = 3, image: str = "busybox:1", extra_spec: str = "") -> str:
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: {name}}}
    spec:
      replicas: {replicas}
      selector: {{matchLabels: {{app: {name}}}}}{extra_spec}
      template:
        metadata: {{labels: {{app: {name}}}}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: app
            image: {image}
            command: ["sleep", "3600"]
    """


def _get(cluster: ServerProcess, namespace: str, *args: str) -> dict[str, Any]:
    return get_json(cluster, "-n", namespace, *args)


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions") or ():
        if cond["type"] == kind:
            return dict(cond)
    return None


def _available(cluster: ServerProcess, namespace: str, name: str, replicas: int) -> bool:
    deploy = _get(cluster, namespace, "deployment", name)
    status = deploy.get("status", {})
    cond = _condition(deploy, "Available")
    return bool(
        cond
        and cond["status"] == "True"
        and status.get("availableReplicas") == replicas
        and status.get("updatedReplicas") == replicas
        and status.get("replicas") == replicas
        and status.get("observedGeneration") == deploy["metadata"]["generation"]
    )


def _pods(cluster: ServerProcess, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["pods"] + (["-l", selector] if selector else [])
    return list(_get(cluster, namespace, *args)["items"])


class RolloutWatcher:
    """Watches a namespace's ReplicaSets and pods and records the worst moments of a rollout:
    the most pods asked for (sum of ReplicaSet spec.replicas) and the fewest ready pods not being deleted."""

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        # its own connections, closed on exit: that is what ends the blocked watch reads
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.namespace = namespace
        self.errors: list[str] = []
        self._stopping = False
        self.replica_sets: dict[str, int] = {}
        self.ready: dict[str, bool] = {}
        self.max_wanted = 0
        self.min_ready = 10**9
        self.trace: list[str] = []  # what happened, for the failure message
        self._watches: list[watch.Watch] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.started = threading.Event()

    def __enter__(self) -> RolloutWatcher:
        for target in (self._watch_replica_sets, self._watch_pods):
            thread = threading.Thread(target=self._guarded, args=(target,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        for w in self._watches:
            w.stop()
        self.api.close()
        for thread in self._threads:
            thread.join(timeout=10)

    def _guarded(self, target: Any) -> None:
        try:
            target()
        except Exception as error:  # a watch that breaks before the end makes the figures worthless
            if not self._stopping:
                self.errors.append(repr(error))

    def _stream(self, func: Any) -> Iterator[dict[str, Any]]:
        """The listed objects as ADDED, then one SYNCED marker, then the watch from the list."""
        w = watch.Watch()
        self._watches.append(w)
        listed = func(self.namespace)
        yield from ({"type": "ADDED", "object": item} for item in listed.items)
        yield {"type": "SYNCED", "object": None}
        yield from w.stream(
            func, self.namespace, resource_version=listed.metadata.resource_version, timeout_seconds=300
        )

    def _watch_replica_sets(self) -> None:
        for event in self._stream(self.apps.list_namespaced_replica_set):
            rs = event["object"]
            with self._lock:
                if event["type"] == "SYNCED":
                    continue
                if event["type"] == "DELETED":
                    self.replica_sets.pop(rs.metadata.name, None)
                else:
                    self.replica_sets[rs.metadata.name] = rs.spec.replicas or 0
                self.trace.append(f"rs {event['type']} {rs.metadata.name} spec={rs.spec.replicas}")
                self.max_wanted = max(self.max_wanted, sum(self.replica_sets.values()))

    def _watch_pods(self) -> None:
        synced = False
        for event in self._stream(self.core.list_namespaced_pod):
            pod = event["object"]
            with self._lock:
                if event["type"] == "SYNCED":
                    synced = True
                    self.started.set()
                elif event["type"] == "DELETED":
                    self.ready.pop(pod.metadata.name, None)
                else:
                    ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or ()))
                    self.ready[pod.metadata.name] = ready and pod.metadata.deletion_timestamp is None
                if synced:  # counting while the list is still arriving would see too few
                    self.trace.append(
                        f"pod {event['type']} {pod and pod.metadata.name} ready={sum(self.ready.values())}"
                    )
                    self.min_ready = min(self.min_ready, sum(self.ready.values()))


def test_cronjobs_are_created_first_so_their_minutes_pass(cluster: ServerProcess) -> None:
    _namespace(cluster, CRON_NS)
    for name, policy, command in (("every-minute", "Allow", "true"), ("forbid", "Forbid", "sleep 3600")):
        _apply(
            cluster,
            f"""
            apiVersion: batch/v1
            kind: CronJob
            metadata: {{name: {name}}}
            spec:
              schedule: "* * * * *"
              concurrencyPolicy: {policy}
              successfulJobsHistoryLimit: 1
              jobTemplate:
                spec:
                  template:
                    spec:
                      restartPolicy: Never
                      terminationGracePeriodSeconds: 1
                      containers:
                      - name: job
                        image: busybox
                        command: ["sh", "-c", "{command}"]
            """,
            CRON_NS,
        )
    manual = cluster.kubectl("create", "job", "-n", CRON_NS, "--from=cronjob/every-minute", "by-hand")
    assert "job.batch/by-hand created" in manual.stdout
    job = _get(cluster, CRON_NS, "job", "by-hand")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    wait_for(
        lambda: _condition(_get(cluster, CRON_NS, "job", "by-hand"), "Complete"),
        timeout=60,
        what="the hand-made job to complete",
    )


def test_deployment_becomes_available_and_rolls_within_surge_and_unavailability(cluster: ServerProcess) -> None:
    ns = _namespace(cluster, "rollout")
    strategy = "\n      strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}"
    _apply(cluster, _deployment("web", extra_spec=strategy), ns)
    cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=90s", timeout=100)
    assert wait_for(lambda: _available(cluster, ns, "web", 3), timeout=30, what="web Available")
    replica_sets = _get(cluster, ns, "replicasets")["items"]
    assert len(replica_sets) == 1
    first = replica_sets[0]
    template_hash = first["metadata"]["labels"]["pod-template-hash"]
    assert first["metadata"]["name"] == f"web-{template_hash}"
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert all(p["metadata"]["labels"]["pod-template-hash"] == template_hash for p in _pods(cluster, ns))

    with RolloutWatcher(str(cluster.kubeconfig), ns) as watcher:
        assert watcher.started.wait(10)
        cluster.kubectl("set", "image", "-n", ns, "deployment/web", "app=busybox:2")
        cluster.kubectl("annotate", "-n", ns, "deployment/web", "kubernetes.io/change-cause=image 2")
        cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s", timeout=130)
        assert wait_for(lambda: _available(cluster, ns, "web", 3), timeout=30, what="web Available again")
        time.sleep(1)  # the last events reach the watcher
    assert not watcher.errors, watcher.errors
    assert watcher.max_wanted <= 3 + 1, f"more than maxSurge extra pods asked for: {watcher.max_wanted}"
    assert watcher.min_ready >= 3 - 1, (
        f"more than maxUnavailable pods missing: {watcher.min_ready} ready\n" + "\n".join(watcher.trace)
    )
    images = {
        p["spec"]["containers"][0]["image"] for p in _pods(cluster, ns) if not p["metadata"].get("deletionTimestamp")
    }
    assert images == {"busybox:2"}

    history = cluster.kubectl("rollout", "history", "-n", ns, "deployment/web").stdout
    rows = [line.split(None, 1) for line in history.strip().splitlines()[2:]]
    assert [row[0] for row in rows] == ["1", "2"]
    assert rows[1][1].strip() == "image 2"

    cluster.kubectl("rollout", "undo", "-n", ns, "deployment/web")
    cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s", timeout=130)
    deploy = _get(cluster, ns, "deployment", "web")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    history = cluster.kubectl("rollout", "history", "-n", ns, "deployment/web").stdout
    assert [line.split()[0] for line in history.strip().splitlines()[2:]] == ["2", "3"]
    assert len(_get(cluster, ns, "replicasets")["items"]) == 2  # the first RS came back as revision 3

    cluster.kubectl("rollout", "undo", "-n", ns, "deployment/web", "--to-revision=2")
    cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s", timeout=130)
    deploy = _get(cluster, ns, "deployment", "web")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2"
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"


def test_paused_deployment_does_not_roll_until_resumed(cluster: ServerProcess) -> None:
    ns = _namespace(cluster, "paused")
    _apply(cluster, _deployment("web", replicas=2), ns)
    assert wait_for(lambda: _available(cluster, ns, "web", 2), timeout=90, what="web Available")
    cluster.kubectl("rollout", "pause", "-n", ns, "deployment/web")
    cluster.kubectl("set", "image", "-n", ns, "deployment/web", "app=busybox:2")
    progressing = wait_for(
        lambda: (
            (c := _condition(_get(cluster, ns, "deployment", "web"), "Progressing"))
            and c["reason"] == "DeploymentPaused"
            and c
        ),
        timeout=30,
        what="the Progressing condition to say DeploymentPaused",
    )
    assert progressing["status"] == "Unknown"
    time.sleep(3)  # the controller had time to act on the new template, and must not
    assert len(_get(cluster, ns, "replicasets")["items"]) == 1
    assert {p["spec"]["containers"][0]["image"] for p in _pods(cluster, ns)} == {"busybox:1"}
    cluster.kubectl("rollout", "resume", "-n", ns, "deployment/web")
    cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s", timeout=130)
    assert wait_for(lambda: _available(cluster, ns, "web", 2), timeout=30, what="web Available after resume")


def test_pausing_mid_rollout_freezes_it_until_resumed(cluster: ServerProcess) -> None:
    ns = _namespace(cluster, "midway")
    slow = """
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: slow}
    spec:
      replicas: 4
      strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
      selector: {matchLabels: {app: slow}}
      template:
        metadata: {labels: {app: slow}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: app
            image: IMAGE
            command: ["sleep", "3600"]
            readinessProbe: {exec: {command: ["true"]}, initialDelaySeconds: 2, periodSeconds: 1}
    """
    _apply(cluster, slow.replace("IMAGE", "busybox:1"), ns)
    assert wait_for(lambda: _available(cluster, ns, "slow", 4), timeout=120, what="slow Available")
    _apply(cluster, slow.replace("IMAGE", "busybox:2"), ns)
    wait_for(
        lambda: 1 <= _get(cluster, ns, "deployment", "slow")["status"].get("updatedReplicas", 0) < 4,
        timeout=60,
        what="the rollout to be under way",
    )
    cluster.kubectl("rollout", "pause", "-n", ns, "deployment/slow")
    wait_for(
        lambda: (
            (_condition(_get(cluster, ns, "deployment", "slow"), "Progressing") or {}).get("reason")
            == "DeploymentPaused"
        ),
        timeout=30,
        what="DeploymentPaused",
    )

    def sizes() -> dict[str, int]:
        return {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in _get(cluster, ns, "replicasets")["items"]}

    frozen = sizes()
    time.sleep(5)  # longer than a rollout step takes here (a new pod is ready after ~2 s)
    assert sizes() == frozen, "a paused rollout went on"
    assert len(frozen) == 2 and min(frozen.values()) >= 1  # caught half-way: old and new ReplicaSets both have pods
    cluster.kubectl("rollout", "resume", "-n", ns, "deployment/slow")
    cluster.kubectl("rollout", "status", "-n", ns, "deployment/slow", "--timeout=120s", timeout=130)
    images = {
        p["spec"]["containers"][0]["image"] for p in _pods(cluster, ns) if not p["metadata"].get("deletionTimestamp")
    }
    assert images == {"busybox:2"}


def test_rollout_that_never_becomes_ready_exceeds_its_progress_deadline(cluster: ServerProcess) -> None:
    ns = _namespace(cluster, "deadline")
    manifest = """
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: stuck}
    spec:
      replicas: 1
      progressDeadlineSeconds: 6
      selector: {matchLabels: {app: stuck}}
      template:
        metadata: {labels: {app: stuck}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: app
            image: busybox
            command: ["sleep", "3600"]
            readinessProbe: {exec: {command: ["false"]}, periodSeconds: 1}
    """
    _apply(cluster, manifest, ns)
    status = cluster.kubectl(
        "rollout", "status", "-n", ns, "deployment/stuck", "--timeout=90s", check=False, timeout=100
    )
    assert status.returncode != 0
    assert 'deployment "stuck" exceeded its progress deadline' in status.stderr
    progressing = _condition(_get(cluster, ns, "deployment", "stuck"), "Progressing")
    assert progressing is not None and progressing["status"] == "False"
    assert progressing["reason"] == "ProgressDeadlineExceeded"


def test_replicaset_replaces_deleted_pods_and_scales(cluster: ServerProcess) -> None:
    ns = _namespace(cluster, "rs")
    _apply(
        cluster,
        """
        apiVersion: apps/v1
        kind: ReplicaSet
        metadata: {name: rs}
        spec:
          replicas: 2
          selector: {matchLabels: {app: rs}}
          template:
            metadata: {labels: {app: rs}}
            spec:
              terminationGracePeriodSeconds: 1
              containers: [{name: app, image: busybox, command: ["sleep", "3600"]}]
        """,
        ns,
    )

    def ready_pods() -> list[str]:
        return sorted(
            p["metadata"]["name"]
            for p in _pods(cluster, ns, "app=rs")
            if _condition(p, "Ready")
            and _condition(p, "Ready")["status"] == "True"  # type: ignore[index]
            and not p["metadata"].get("deletionTimestamp")
        )

    first = wait_for(lambda: len(ready_pods()) == 2 and ready_pods(), timeout=60, what="2 ready pods")
    cluster.kubectl("delete", "pod", "-n", ns, first[0], "--wait=false")
    replaced = wait_for(
        lambda: len(ready_pods()) == 2 and first[0] not in ready_pods() and ready_pods(),
        timeout=60,
        what="the deleted pod to be replaced",
    )
    assert first[1] in replaced
    rs = _get(cluster, ns, "rs", "rs")
    assert rs["status"]["readyReplicas"] == 2 and rs["status"]["availableReplicas"] == 2
    cluster.kubectl("scale", "-n", ns, "rs/rs", "--replicas=4")
    wait_for(lambda: len(ready_pods()) == 4, timeout=60, what="4 ready pods")
    cluster.kubectl("scale", "-n", ns, "rs/rs", "--replicas=1")
    wait_for(lambda: len(_pods(cluster, ns, "app=rs")) == 1, timeout=60, what="scale down to 1 pod")
    table = cluster.kubectl("get", "rs", "-n", ns, "rs").stdout.split("\n")[1].split()
    assert table[:4] == ["rs", "1", "1", "1"]  # NAME DESIRED CURRENT READY


def test_jobs_complete_fail_at_backoff_limit_and_index_their_pods(cluster: ServerProcess) -> None:
    ns = _namespace(cluster, "jobs")
    job_spec = """
    apiVersion: batch/v1
    kind: Job
    metadata: {{name: {name}}}
    spec:
      {spec}
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: job
            image: busybox
            command: ["sh", "-c", "{command}"]
    """
    _apply(cluster, job_spec.format(name="five", spec="completions: 5\n      parallelism: 2", command="sleep 1"), ns)
    _apply(cluster, job_spec.format(name="fails", spec="backoffLimit: 1", command="exit 3"), ns)
    indexed = "completions: 3\n      parallelism: 3\n      completionMode: Indexed"
    _apply(cluster, job_spec.format(name="indexed", spec=indexed, command="echo index=$JOB_COMPLETION_INDEX"), ns)

    most_active = 0

    def five_complete() -> bool:
        nonlocal most_active
        job = _get(cluster, ns, "job", "five")
        most_active = max(most_active, job.get("status", {}).get("active", 0))
        cond = _condition(job, "Complete")
        return bool(cond and cond["status"] == "True")

    wait_for(five_complete, timeout=120, what="job five to complete")
    job = _get(cluster, ns, "job", "five")
    assert job["status"]["succeeded"] == 5 and not job["status"].get("failed")
    assert most_active <= 2
    succeeded = [p for p in _pods(cluster, ns, "job-name=five") if p["status"]["phase"] == "Succeeded"]
    assert len(succeeded) == 5
    assert all(not p["metadata"].get("finalizers") for p in succeeded)  # counted, tracking finalizer gone

    failed = wait_for(
        lambda: _condition(_get(cluster, ns, "job", "fails"), "Failed"), timeout=120, what="job fails to fail"
    )
    assert failed["reason"] == "BackoffLimitExceeded"
    assert _get(cluster, ns, "job", "fails")["status"]["failed"] == 2

    wait_for(lambda: _condition(_get(cluster, ns, "job", "indexed"), "Complete"), timeout=120, what="indexed job")
    assert _get(cluster, ns, "job", "indexed")["status"]["completedIndexes"] == "0-2"
    outputs = set()
    for pod in _pods(cluster, ns, "job-name=indexed"):
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        log = cluster.kubectl("logs", "-n", ns, pod["metadata"]["name"]).stdout.strip()
        assert log == f"index={index}"
        outputs.add(log)
    assert outputs == {"index=0", "index=1", "index=2"}


def test_cascading_deletion_background_foreground_and_orphan(cluster: ServerProcess) -> None:
    ns = _namespace(cluster, "cascade")
    for name in ("bg", "fg", "orphan"):
        _apply(cluster, _deployment(name, replicas=2), ns)
    for name in ("bg", "fg", "orphan"):
        wait_for(lambda n=name: _available(cluster, ns, n, 2), timeout=90, what=f"{name} Available")

    cluster.kubectl("delete", "-n", ns, "deployment/bg", "--cascade=background")
    wait_for(lambda: not _pods(cluster, ns, "app=bg"), timeout=60, what="bg's pods to go")
    assert not [rs for rs in _get(cluster, ns, "rs")["items"] if rs["metadata"]["name"].startswith("bg-")]

    cluster.kubectl("delete", "-n", ns, "deployment/fg", "--cascade=foreground", "--wait=false")
    deploy = _get(cluster, ns, "deployment", "fg")  # held by its dependents
    assert "foregroundDeletion" in deploy["metadata"]["finalizers"]
    assert deploy["metadata"]["deletionTimestamp"]
    wait_for(
        lambda: cluster.kubectl("get", "-n", ns, "deployment/fg", check=False).returncode != 0,
        timeout=60,
        what="fg to be deleted after its dependents",
    )
    assert not _pods(cluster, ns, "app=fg")

    cluster.kubectl("delete", "-n", ns, "deployment/orphan", "--cascade=orphan")
    time.sleep(2)  # the garbage collector had time to act, and must not delete the orphans
    orphaned_rs = [rs for rs in _get(cluster, ns, "rs")["items"] if rs["metadata"]["name"].startswith("orphan-")]
    assert len(orphaned_rs) == 1 and not orphaned_rs[0]["metadata"].get("ownerReferences")
    pods = _pods(cluster, ns, "app=orphan")
    assert len(pods) == 2 and all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in pods)


def test_deleting_a_namespace_removes_its_objects_then_itself(cluster: ServerProcess) -> None:
    ns = _namespace(cluster, "doomed")
    _apply(cluster, _deployment("web", replicas=2), ns)
    cluster.kubectl("create", "configmap", "-n", ns, "settings", "--from-literal=a=b")
    cluster.kubectl("create", "secret", "generic", "-n", ns, "creds", "--from-literal=p=q")
    wait_for(lambda: _available(cluster, ns, "web", 2), timeout=90, what="web Available")
    accounts = wait_for(
        lambda: [a["metadata"]["name"] for a in _get(cluster, ns, "serviceaccounts")["items"]],
        timeout=30,
        what="the default service account",
    )
    assert accounts == ["default"]
    assert "ca.crt" in _get(cluster, ns, "configmap", "kube-root-ca.crt")["data"]

    cluster.kubectl("delete", "namespace", ns, "--wait=false")
    phase = _get(cluster, ns, "namespace", ns)["status"]["phase"]
    assert phase == "Terminating"
    refused = cluster.kubectl("create", "configmap", "-n", ns, "late", check=False)
    assert refused.returncode != 0 and "being terminated" in refused.stderr
    wait_for(
        lambda: cluster.kubectl("get", "namespace", ns, check=False).returncode != 0,
        timeout=90,
        what="the namespace to be gone",
    )
    leftovers = json.loads(cluster.kubectl("get", "pods,rs,deploy,cm,secrets", "-A", "-o", "json").stdout)["items"]
    assert not [o for o in leftovers if o["metadata"].get("namespace") == ns]


def test_cronjobs_ran_on_schedule_kept_history_and_forbid_skipped(cluster: ServerProcess) -> None:
    def scheduled_jobs(cron: str) -> list[dict[str, Any]]:
        return [
            j
            for j in _get(cluster, CRON_NS, "jobs")["items"]
            if (j["metadata"].get("ownerReferences") or [{}])[0].get("name") == cron
            and "cronjob.kubernetes.io/instantiate" not in (j["metadata"].get("annotations") or {})
        ]

    # at most ~2 minutes after the first test: two schedule times have passed for every-minute
    wait_for(
        lambda: (
            len(_get(cluster, CRON_NS, "cronjob", "forbid").get("status", {}).get("active") or []) == 1
            and _get(cluster, CRON_NS, "cronjob", "every-minute").get("status", {}).get("lastSuccessfulTime")
        ),
        timeout=150,
        what="both cron jobs to have run",
    )
    first_success = _get(cluster, CRON_NS, "cronjob", "every-minute")["status"]["lastSuccessfulTime"]
    wait_for(
        lambda: _get(cluster, CRON_NS, "cronjob", "every-minute")["status"].get("lastSuccessfulTime") != first_success,
        timeout=90,
        what="a second successful run",
    )
    jobs = scheduled_jobs("every-minute")
    assert len(jobs) == 1  # successfulJobsHistoryLimit: 1
    assert jobs[0]["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    forbid = scheduled_jobs("forbid")
    assert len(forbid) == 1, "Forbid must not start a second job while the first runs"
    cronjob = _get(cluster, CRON_NS, "cronjob", "forbid")
    assert cronjob["status"]["active"][0]["name"] == forbid[0]["metadata"]["name"]
