"""Auto-scaling on a single-node cluster with real pods: CPU usage flows from cgroups through the agent's
/metrics/resource to metrics.k8s.io (`kubectl top`), and a HorizontalPodAutoscaler at 50 % scales a Deployment
out under load and back in after it stops.

The load is switched by a file in the host's /tmp (containers share the host's /tmp): while it exists every
replica burns a core; the HPA's scale-down stabilization is shortened in its `behavior`, the server scrapes every
5 s and syncs autoscalers every 5 s (flags set by the e2e cluster fixture).
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

from kubelite.testing.cluster import get_json, wait_for
from kubelite.testing.server import ServerProcess


def _burner(marker: Path) -> str:
    """Python for a container: a busy loop while `marker` exists, idle otherwise."""
    return (
        "import os, time\n"
        "while True:\n"
        f"    if os.path.exists({str(marker)!r}):\n"
        "        end = time.time() + 0.5\n"
        "        while time.time() < end: pass\n"
        "    else:\n"
        "        time.sleep(0.5)\n"
    )


def _replicas(cluster: ServerProcess) -> int:
    return int(get_json(cluster, "deployment", "burn").get("spec", {}).get("replicas") or 0)


def test_hpa_scales_out_under_cpu_load_and_back_in_after_it_stops(cluster: ServerProcess) -> None:
    marker = Path("/tmp") / f"kubelite-burn-{uuid.uuid4().hex[:8]}"
    manifest = f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: burn}}
    spec:
      replicas: 1
      selector: {{matchLabels: {{app: burn}}}}
      template:
        metadata: {{labels: {{app: burn}}}}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: burn
            image: python:3.11
            command: ["python3", "-c", {json.dumps(_burner(marker))}]
            resources: {{requests: {{cpu: 100m}}}}
    ---
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata: {{name: burn}}
    spec:
      scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: burn}}
      minReplicas: 1
      maxReplicas: 3
      metrics:
      - type: Resource
        resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}
      behavior:
        scaleDown: {{stabilizationWindowSeconds: 10}}
    """
    try:
        cluster.kubectl("apply", "-f", "-", input=textwrap.dedent(manifest))
        cluster.kubectl("rollout", "status", "deployment/burn", "--timeout=60s", timeout=70)

        # idle: metrics appear, the HPA reports its target and stays at one replica
        wait_for(
            lambda: cluster.kubectl("top", "pod", "-l", "app=burn", check=False).returncode == 0,
            timeout=60,
            what="pod metrics",
        )
        assert "cpu:" in cluster.kubectl("get", "hpa", "burn").stdout

        marker.write_text("burn")
        wait_for(lambda: _replicas(cluster) == 3, timeout=150, what="the HPA to scale out to 3")
        top = cluster.kubectl("top", "pod", "-l", "app=burn", "--containers").stdout
        assert "burn" in top and "m" in top
        status = get_json(cluster, "hpa", "burn")["status"]
        assert status["currentMetrics"][0]["resource"]["current"]["averageUtilization"] > 50
        reasons = cluster.kubectl(
            "get", "events", "--field-selector", "involvedObject.name=burn,reason=SuccessfulRescale", "-o", "name"
        ).stdout
        assert reasons.strip()
        assert cluster.kubectl("top", "node").returncode == 0

        marker.unlink()
        wait_for(lambda: _replicas(cluster) == 1, timeout=150, what="the HPA to scale back in to 1")
    finally:
        marker.unlink(missing_ok=True)
        cluster.kubectl("delete", "hpa", "burn", check=False)
        cluster.kubectl("delete", "deployment", "burn", check=False)


def test_kubectl_autoscale_creates_an_hpa_that_reports_its_target(cluster: ServerProcess) -> None:
    cluster.kubectl("create", "deployment", "idle", "--image=busybox", "--", "sleep", "3600")
    cluster.kubectl("set", "resources", "deployment/idle", "--requests=cpu=50m")
    cluster.kubectl("rollout", "status", "deployment/idle", "--timeout=60s", timeout=70)
    cluster.kubectl("autoscale", "deployment", "idle", "--cpu-percent=60", "--min=1", "--max=2")
    try:
        hpa = get_json(cluster, "hpa", "idle")
        assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60

        def table() -> str | None:
            text = cluster.kubectl("get", "hpa", "idle").stdout
            return text if "/60%" in text and "<unknown>" not in text else None

        text = wait_for(table, timeout=60, what="the HPA to report current usage")
        header, row = text.splitlines()[:2]
        assert header.split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
        assert row.split()[1] == "Deployment/idle"
    finally:
        cluster.kubectl("delete", "hpa", "idle", check=False)
        cluster.kubectl("delete", "deployment", "idle", check=False)
