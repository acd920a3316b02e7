"""Volumes and configuration on a single-node cluster with real pods: a claim's data outlives its pods and a
restart of the whole node, a StatefulSet keeps its pods' names, claims and data, ConfigMap files follow
`kubectl apply`, env from Secrets and ConfigMaps, and an emptyDir over its sizeLimit evicts its pod.

Claims use the built-in `local-path` StorageClass (WaitForFirstConsumer); the e2e cluster keeps its storage
under its own temp dir and refreshes mounted ConfigMaps every 5 s (`--sync-frequency`)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from kubelite.testing.cluster import HOSTNAME_SERVER, get_json, wait_for
from kubelite.testing.server import ServerProcess


def _apply(cluster: ServerProcess, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=textwrap.dedent(manifest))


def _phase(cluster: ServerProcess, name: str) -> str:
    result = cluster.kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}", check=False)
    return result.stdout if result.returncode == 0 else ""


def _logs(cluster: ServerProcess, name: str) -> str:
    return cluster.kubectl("logs", name, check=False).stdout


def _pod_with_claim(name: str, claim: str, command: str) -> str:
    return f"""
    apiVersion: v1
    kind: Pod
    metadata: {{name: {name}}}
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: busybox
        command: ["sh", "-c", {json.dumps(command)}]
        volumeMounts: [{{name: data, mountPath: /data}}]
      volumes: [{{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}]
    """


def test_a_claims_data_outlives_its_pods_and_a_restart_of_server_and_agent(cluster: ServerProcess) -> None:
    _apply(
        cluster,
        """
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata: {name: keep}
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 10Mi}}
        """,
    )
    claim = get_json(cluster, "pvc", "keep")
    assert claim["spec"]["storageClassName"] == "local-path"  # the default class
    assert claim["status"]["phase"] == "Pending"  # WaitForFirstConsumer: nothing until a pod uses it

    _apply(cluster, _pod_with_claim("writer", "keep", "echo persisted > /data/file && cat /data/file"))
    wait_for(lambda: _phase(cluster, "writer") == "Succeeded", timeout=90, what="the writer to finish")
    claim = get_json(cluster, "pvc", "keep")
    assert claim["status"]["phase"] == "Bound"
    volume = get_json(cluster, "pv", claim["spec"]["volumeName"])
    assert volume["spec"]["claimRef"]["name"] == "keep"
    assert "kubernetes.io/pvc-protection" in claim["metadata"]["finalizers"]
    table = cluster.kubectl("get", "pvc", "keep").stdout
    assert "Bound" in table and "local-path" in table and "RWO" in table
    cluster.kubectl("delete", "pod", "writer")

    _apply(cluster, _pod_with_claim("reader", "keep", "cat /data/file"))
    wait_for(lambda: _phase(cluster, "reader") == "Succeeded", timeout=60, what="the reader to finish")
    assert _logs(cluster, "reader").strip() == "persisted"
    cluster.kubectl("delete", "pod", "reader")

    cluster.stop(cleanup=False)
    cluster.start()
    wait_for(lambda: _node_ready(cluster), timeout=60, what="the node after the restart")
    _apply(cluster, _pod_with_claim("after", "keep", "cat /data/file"))
    wait_for(lambda: _phase(cluster, "after") == "Succeeded", timeout=60, what="the reader after the restart")
    assert _logs(cluster, "after").strip() == "persisted"
    cluster.kubectl("delete", "pod", "after")


def _node_ready(cluster: ServerProcess) -> bool:
    nodes = get_json(cluster, "nodes")["items"]
    return bool(nodes) and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", [])) for n in nodes
    )


def test_a_statefulset_keeps_names_claims_and_data(cluster: ServerProcess) -> None:
    server = json.dumps(HOSTNAME_SERVER)
    _apply(
        cluster,
        f"""
        apiVersion: v1
        kind: Service
        metadata: {{name: web}}
        spec:
          clusterIP: None
          selector: {{app: sts-web}}
          ports: [{{name: http, port: 8080}}]
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {{name: web}}
        spec:
          serviceName: web
          replicas: 3
          selector: {{matchLabels: {{app: sts-web}}}}
          template:
            metadata: {{labels: {{app: sts-web}}}}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: web
                image: python:3.11
                command: ["sh", "-c", "hostname > /data/who; exec python3 -c \\"$0\\"", {server}]
                readinessProbe: {{httpGet: {{port: 8080, path: /}}, periodSeconds: 1}}
                volumeMounts: [{{name: www, mountPath: /data}}]
          volumeClaimTemplates:
          - metadata: {{name: www}}
            spec:
              accessModes: [ReadWriteOnce]
              resources: {{requests: {{storage: 1Mi}}}}
        """,
    )
    cluster.kubectl("rollout", "status", "statefulset/web", "--timeout=120s", timeout=130)
    pods = {p["metadata"]["name"]: p for p in get_json(cluster, "pods", "-l", "app=sts-web")["items"]}
    assert set(pods) == {"web-0", "web-1", "web-2"}
    created = sorted(pods, key=lambda n: pods[n]["metadata"]["creationTimestamp"])
    assert created == ["web-0", "web-1", "web-2"]  # OrderedReady
    claims = {c["metadata"]["name"] for c in get_json(cluster, "pvc", "-l", "app=sts-web")["items"]}
    assert claims == {"www-web-0", "www-web-1", "www-web-2"}

    # stable DNS through the governing headless Service
    address = cluster.kubectl(
        "exec", "web-0", "--", "python3", "-c", "import socket; print(socket.gethostbyname('web-1.web'))"
    ).stdout.strip()
    assert address == get_json(cluster, "pod", "web-1")["status"]["podIP"]

    uid = pods["web-1"]["metadata"]["uid"]
    cluster.kubectl("exec", "web-1", "--", "sh", "-c", "echo mine > /data/note")
    cluster.kubectl("delete", "pod", "web-1")

    def replaced() -> dict[str, Any] | None:
        pod = get_json(cluster, "pod", "web-1") if _phase(cluster, "web-1") == "Running" else None
        return pod if pod and pod["metadata"]["uid"] != uid else None

    wait_for(replaced, timeout=90, what="web-1 to come back")
    assert cluster.kubectl("exec", "web-1", "--", "cat", "/data/note").stdout.strip() == "mine"

    cluster.kubectl("scale", "statefulset/web", "--replicas=1")
    wait_for(lambda: not _phase(cluster, "web-2") and not _phase(cluster, "web-1"), timeout=90, what="scale down")
    claims = {c["metadata"]["name"] for c in get_json(cluster, "pvc", "-l", "app=sts-web")["items"]}
    assert claims == {"www-web-0", "www-web-1", "www-web-2"}  # claims are kept
    cluster.kubectl("delete", "statefulset", "web")
    cluster.kubectl("delete", "service", "web")


def test_configmap_files_follow_apply_and_env_comes_from_secrets_and_configmaps(cluster: ServerProcess) -> None:
    cluster.kubectl("create", "configmap", "app-config", "--from-literal=greeting=hello", "--from-literal=mode=a")
    cluster.kubectl("create", "secret", "generic", "app-secret", "--from-literal=password=s3cret")
    _apply(
        cluster,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: configured}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: app
            image: busybox
            command: ["sleep", "3600"]
            env:
            - name: PASSWORD
              valueFrom: {secretKeyRef: {name: app-secret, key: password}}
            envFrom: [{configMapRef: {name: app-config}}]
            volumeMounts: [{name: config, mountPath: /etc/app}]
          volumes: [{name: config, configMap: {name: app-config}}]
        """,
    )
    cluster.kubectl("wait", "--for=condition=Ready", "pod/configured", "--timeout=60s", timeout=70)
    env = cluster.kubectl("exec", "configured", "--", "env").stdout
    assert "PASSWORD=s3cret" in env and "greeting=hello" in env
    assert cluster.kubectl("exec", "configured", "--", "cat", "/etc/app/greeting").stdout == "hello"

    _apply(
        cluster,
        """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: app-config}
        data: {greeting: bonjour, mode: a}
        """,
    )
    wait_for(
        lambda: cluster.kubectl("exec", "configured", "--", "cat", "/etc/app/greeting").stdout == "bonjour",
        timeout=60,
        what="the mounted file to follow the ConfigMap",
    )
    cluster.kubectl("delete", "pod", "configured")

    _apply(
        cluster,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: missing-key}
        spec:
          containers:
          - name: app
            image: busybox
            command: ["sleep", "3600"]
            env:
            - name: NOPE
              valueFrom: {configMapKeyRef: {name: app-config, key: nope}}
        """,
    )

    def waiting() -> dict[str, Any] | None:
        statuses = get_json(cluster, "pod", "missing-key")["status"].get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting")

    state = wait_for(waiting, timeout=60, what="the container to wait")
    assert state["reason"] == "CreateContainerConfigError"
    assert state["message"] == "couldn't find key nope in ConfigMap default/app-config"
    cluster.kubectl("delete", "pod", "missing-key")


def test_an_emptydir_over_its_size_limit_evicts_the_pod(cluster: ServerProcess) -> None:
    _apply(
        cluster,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: hog}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: app
            image: busybox
            command: ["sh", "-c", "head -c 3000000 /dev/zero > /scratch/big; sleep 3600"]
            volumeMounts: [{name: scratch, mountPath: /scratch}]
          volumes: [{name: scratch, emptyDir: {sizeLimit: 1Mi}}]
        """,
    )
    wait_for(lambda: _phase(cluster, "hog") == "Failed", timeout=90, what="the pod to be evicted")
    status = get_json(cluster, "pod", "hog")["status"]
    assert status["reason"] == "Evicted"
    assert 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi".' in status["message"]
    cluster.kubectl("delete", "pod", "hog")


def test_projected_token_downward_api_and_memory_emptydir_reach_the_container(cluster: ServerProcess) -> None:
    _apply(
        cluster,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: projected, labels: {tier: front}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: app
            image: busybox
            command: ["sleep", "3600"]
            volumeMounts:
            - {name: bundle, mountPath: /var/run/bundle}
            - {name: fast, mountPath: /fast}
          volumes:
          - name: bundle
            projected:
              sources:
              - serviceAccountToken: {path: token, audience: vault, expirationSeconds: 3600}
              - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
          - name: fast
            emptyDir: {medium: Memory, sizeLimit: 8Mi}
        """,
    )
    cluster.kubectl("wait", "--for=condition=Ready", "pod/projected", "--timeout=60s", timeout=70)
    token = cluster.kubectl("exec", "projected", "--", "cat", "/var/run/bundle/token").stdout
    claims = json.loads(_b64url(token.split(".")[1]))
    assert claims["aud"] == ["vault"] and claims["sub"] == "system:serviceaccount:default:default"
    assert claims["kubernetes.io"]["pod"]["name"] == "projected"
    assert cluster.kubectl("exec", "projected", "--", "cat", "/var/run/bundle/labels").stdout == 'tier="front"'
    mounts = cluster.kubectl("exec", "projected", "--", "cat", "/proc/mounts").stdout
    assert any(line.split()[1] == "/fast" and line.split()[2] == "tmpfs" for line in mounts.splitlines())
    cluster.kubectl("delete", "pod", "projected")


def _b64url(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
