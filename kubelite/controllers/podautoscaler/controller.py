"""The HorizontalPodAutoscaler controller (upstream's pkg/controller/podautoscaler), for resource metrics.

Every `sync_period` (15 s) each HPA (autoscaling/v2; v1 objects are the same objects converted) is
reconciled: read the target's scale, compute a proposal per metric from ``metrics.k8s.io`` PodMetrics
(`replicas`), take the largest, normalize it (`behavior`), write the scale when it changes, then write
the status (currentReplicas, desiredReplicas, currentMetrics, lastScaleTime, conditions AbleToScale /
ScalingActive / ScalingLimited) if it changed.  Events and condition words are upstream's.

State kept in memory per HPA, as upstream: recent recommendations (stabilization windows) and recent
scale events (rate policies).  It is lost on restart, which only makes the first decisions after a
restart less damped — the same trade-off upstream makes.  Reconciles of one HPA never overlap (work
queue), so that state needs no lock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from kubelite.client.interface import builtin, resource_for
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.podautoscaler import behavior as rules
from kubelite.controllers.podautoscaler.replicas import (
    CPU_INITIALIZATION_PERIOD,
    INITIAL_READINESS_DELAY,
    TOLERANCE,
    MetricsError,
    Proposal,
    raw_resource_replicas,
    resource_replicas,
)
from kubelite.controllers.podautoscaler.source import ClientScales, ScaleAccess, resource_metrics
from kubelite.controllers.podautoscaler.status import metric_status, set_condition
from kubelite.machinery import selectors
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import deep_copy, rfc3339
from kubelite.machinery.quantity import QuantityError, milli_value

__all__ = ["DEFAULT_SYNC_PERIOD", "HPAS", "HorizontalPodAutoscalerController"]

log = logging.getLogger(__name__)

HPAS = builtin("autoscaling", "horizontalpodautoscalers", "v2")
PODS = builtin("", "pods")
DEFAULT_SYNC_PERIOD = 15.0


class _Failed(Exception):
    """A metric could not be evaluated: `reason` and `detail` for the event and the condition, the
    message (`detail` wrapped, as upstream) for the summary error."""

    def __init__(self, reason: str, detail: str, message: str = "") -> None:
        super().__init__(message or detail)
        self.reason = reason
        self.detail = detail


class HorizontalPodAutoscalerController(Controller):
    name = "horizontal-pod-autoscaler"

    def __init__(
        self,
        context: ControllerContext,
        *,
        sync_period: float = DEFAULT_SYNC_PERIOD,
        downscale_stabilization: timedelta = rules.DEFAULT_DOWNSCALE_STABILIZATION,
        tolerance: float = TOLERANCE,
        cpu_initialization_period: timedelta = CPU_INITIALIZATION_PERIOD,
        initial_readiness_delay: timedelta = INITIAL_READINESS_DELAY,
        scales: ScaleAccess | None = None,
    ) -> None:
        super().__init__(context)
        self.sync_period = sync_period
        self.downscale_stabilization = downscale_stabilization
        self.tolerance = tolerance
        self.periods = {
            "cpu_initialization_period": cpu_initialization_period,
            "initial_readiness_delay": initial_readiness_delay,
        }
        self.scales: ScaleAccess = scales if scales is not None else ClientScales(self.client)
        self.hpas = self.informer(HPAS)
        self.pods = self.informer(PODS)
        self.hpas.add_handler(self.enqueue, self._updated, self._deleted)
        self.recommendations: dict[str, list[rules.Recommendation]] = {}
        self.scale_ups: dict[str, list[rules.ScaleEvent]] = {}
        self.scale_downs: dict[str, list[rules.ScaleEvent]] = {}

    def _updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old.get("spec") != new.get("spec"):  # our own status writes wait for the next period
            self.enqueue(new)

    def _deleted(self, hpa: dict[str, Any]) -> None:
        self.enqueue(hpa)

    # -- reconcile -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        cached = self.hpas.get(key)
        if cached is None:
            for memory in (self.recommendations, self.scale_ups, self.scale_downs):
                memory.pop(key, None)
            return
        try:
            await self._reconcile(key, deep_copy(cached))
        finally:
            self.queue.add_after(key, self.sync_period)

    async def _reconcile(self, key: str, hpa: dict[str, Any]) -> None:
        now = self.clock.utcnow()
        original = deep_copy(hpa.get("status") or {})
        status = hpa.setdefault("status", {})
        spec = hpa.get("spec") or {}
        namespace = hpa["metadata"]["namespace"]
        ref = spec.get("scaleTargetRef") or {}
        reference = f"{ref.get('kind')}/{namespace}/{ref.get('name')}"
        try:
            target = resource_for(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        except LookupError:
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            message = (
                "unable to determine resource for scale target reference: "
                f'no matches for kind "{ref.get("kind")}" in group "{group}"'
            )
            self.recorder.event(hpa, "Warning", "FailedGetScale", message)
            await self._fail_scale(hpa, original, message, now)
            return
        try:
            scale = await self.scales.get_scale(target, str(ref.get("name", "")), namespace)
        except ApiError as exc:
            self.recorder.event(hpa, "Warning", "FailedGetScale", str(exc))
            await self._fail_scale(hpa, original, str(exc), now)
            if exc.code == 404:
                return
            raise
        set_condition(
            status,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
            now=now,
        )
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        self.recommendations.setdefault(key, [])
        if not self.recommendations[key]:
            self.recommendations[key].append(rules.Recommendation(current, now))
        min_replicas = int(spec.get("minReplicas") or 1)
        max_replicas = int(spec.get("maxReplicas") or 0)
        metric_statuses = status.get("currentMetrics")
        desired, reason = 0, ""
        if current == 0 and min_replicas != 0:
            set_condition(
                status,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now=now,
            )
        elif current > max_replicas:
            desired, reason = max_replicas, "Current number of replicas above Spec.MaxReplicas"
        elif current < min_replicas:
            desired, reason = min_replicas, "Current number of replicas below Spec.MinReplicas"
        else:
            proposed, metric, metric_statuses, error = await self._compute(hpa, scale, current, now)
            if proposed < 0:
                self._set_status(hpa, current, int(status.get("desiredReplicas") or 0), metric_statuses, False, now)
                await self._write_status(hpa, original)
                message = (
                    f"failed to compute desired number of replicas based on listed metrics for {reference}: {error}"
                )
                self.recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas", message)
                return
            desired = proposed
            if desired > current:
                reason = f"{metric} above target"
            elif desired < current:
                reason = "All metrics below target"
            desired = self._normalize(key, hpa, current, desired, min_replicas, max_replicas, now)
        rescale = desired != current
        if rescale:
            try:
                await self.scales.update_scale(target, str(ref.get("name", "")), namespace, desired)
            except ApiError as exc:
                self.recorder.event(
                    hpa, "Warning", "FailedRescale", f"New size: {desired}; reason: {reason}; error: {exc}"
                )
                set_condition(
                    status,
                    "AbleToScale",
                    "False",
                    "FailedUpdateScale",
                    f"the HPA controller was unable to update the target scale: {exc}",
                    now=now,
                )
                self._set_status(hpa, current, int(status.get("desiredReplicas") or 0), metric_statuses, False, now)
                await self._write_status(hpa, original)
                raise
            set_condition(
                status,
                "AbleToScale",
                "True",
                "SucceededRescale",
                f"the HPA controller was able to update the target scale to {desired}",
                now=now,
            )
            self.recorder.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            self._record_scale_event(key, spec.get("behavior"), current, desired, now)
            log.info("scaled target", extra={"hpa": key, "from": current, "to": desired, "reason": reason})
        self._set_status(hpa, current, desired, metric_statuses, rescale, now)
        await self._write_status(hpa, original)

    async def _fail_scale(self, hpa: dict[str, Any], original: dict[str, Any], error: str, now: datetime) -> None:
        status = hpa.setdefault("status", {})
        set_condition(
            status,
            "AbleToScale",
            "False",
            "FailedGetScale",
            f"the HPA controller was unable to get the target's current scale: {error}",
            now=now,
        )
        await self._write_status(hpa, original)

    # -- metrics ------------------------------------------------------------------------------------

    async def _compute(
        self, hpa: dict[str, Any], scale: dict[str, Any], current: int, now: datetime
    ) -> tuple[int, str, list[dict[str, Any]], str]:
        """(replicas or -1, metric name, metric statuses, error text): computeReplicasForMetrics."""
        status = hpa["status"]
        selector_text = str((scale.get("status") or {}).get("selector") or "")
        if not selector_text:
            self.recorder.event(hpa, "Warning", "SelectorRequired", "selector is required")
            set_condition(
                status,
                "ScalingActive",
                "False",
                "InvalidSelector",
                "the HPA target's scale is missing a selector",
                now=now,
            )
            return -1, "", [], "selector is required"
        try:
            selector = selectors.parse_label_selector(selector_text)
        except selectors.SelectorError as exc:
            message = f"couldn't convert selector into a corresponding internal selector object: {exc}"
            self.recorder.event(hpa, "Warning", "InvalidSelector", message)
            set_condition(status, "ScalingActive", "False", "InvalidSelector", message, now=now)
            return -1, "", [], message
        namespace = hpa["metadata"]["namespace"]
        pods = [
            p
            for p in self.pods.list()
            if (p.get("metadata") or {}).get("namespace") == namespace
            and selector.matches((p.get("metadata") or {}).get("labels") or {})
        ]
        specs = list((hpa.get("spec") or {}).get("metrics") or [])
        statuses: list[dict[str, Any]] = []
        replicas, metric = 0, ""
        invalid, first_error, first_condition = 0, "", ("", "")
        for spec in specs:
            try:
                proposal, name = await self._one_metric(spec, current, namespace, selector_text, pods, now)
            except _Failed as failure:
                self.recorder.event(hpa, "Warning", failure.reason, failure.detail)
                if invalid == 0:
                    first_error = str(failure)
                    first_condition = (
                        failure.reason,
                        f"the HPA was unable to compute the replica count: {failure.detail}",
                    )
                invalid += 1
                statuses.append({"type": ""})
                continue
            statuses.append(metric_status(spec, proposal.utilization, proposal.raw_average))
            if replicas == 0 or proposal.replicas > replicas:
                replicas, metric = proposal.replicas, name
        error = (
            f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first_error}" if invalid else ""
        )
        if (specs and invalid >= len(specs)) or (invalid > 0 and replicas < current):
            set_condition(status, "ScalingActive", "False", first_condition[0], first_condition[1], now=now)
            return -1, "", statuses, error
        set_condition(
            status,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            f"the HPA was able to successfully calculate a replica count from {metric}",
            now=now,
        )
        return replicas, metric, statuses, error

    async def _one_metric(
        self,
        spec: dict[str, Any],
        current: int,
        namespace: str,
        selector: str,
        pods: list[dict[str, Any]],
        now: datetime,
    ) -> tuple[Proposal, str]:
        kind = spec.get("type")
        if kind == "Resource":
            source, container, reason, what = spec.get("resource") or {}, "", "FailedGetResourceMetric", "resource"
        elif kind == "ContainerResource":
            source = spec.get("containerResource") or {}
            container, reason, what = (
                str(source.get("container") or ""),
                "FailedGetContainerResourceMetric",
                "container",
            )
        elif kind in ("Pods", "Object", "External"):
            raise _Failed(
                f"FailedGet{kind}Metric",
                f"unable to get {kind.lower()} metric: kubelite serves no custom or external metrics API",
            )
        else:
            raise _Failed("InvalidMetricSourceType", f'unknown metric source type "{kind}"')
        resource = str(source.get("name") or "")
        target = source.get("target") or {}
        try:
            proposal = await self._resource_proposal(
                resource, container, target, current, namespace, selector, pods, now
            )
        except MetricsError as exc:
            raise _Failed(reason, str(exc), f"failed to get {resource} {what} metric value: {exc}") from None
        if target.get("averageValue") is not None:
            return proposal, f"{resource} resource"
        label = "container resource" if kind == "ContainerResource" else "resource"
        return proposal, f"{resource} {label} utilization (percentage of request)"

    async def _resource_proposal(
        self,
        resource: str,
        container: str,
        target: dict[str, Any],
        current: int,
        namespace: str,
        selector: str,
        pods: list[dict[str, Any]],
        now: datetime,
    ) -> Proposal:
        average_value = target.get("averageValue")
        utilization = target.get("averageUtilization")
        if average_value is None and utilization is None:
            raise MetricsError(
                "invalid resource metric source: neither an average utilization target nor an average value "
                "(usage) target was set"
            )
        kind = "usage" if average_value is not None else "utilization"
        try:
            try:
                metrics, _ = await resource_metrics(self.client, namespace, selector, resource, container)
            except MetricsError as exc:
                raise MetricsError(f"unable to get metrics for resource {resource}: {exc}") from None
            if average_value is not None:
                try:
                    target_milli = milli_value(str(average_value))
                except QuantityError:
                    raise MetricsError(f"invalid averageValue {average_value!r}") from None
                return raw_resource_replicas(
                    current, target_milli, resource, pods, metrics, now=now, tolerance=self.tolerance, **self.periods
                )
            return resource_replicas(
                current,
                int(utilization),
                resource,
                pods,
                metrics,
                now=now,
                container=container,
                tolerance=self.tolerance,
                **self.periods,
            )
        except MetricsError as exc:
            raise MetricsError(f"failed to get {resource} {kind}: {exc}") from None

    # -- normalization --------------------------------------------------------------------------------

    def _normalize(
        self,
        key: str,
        hpa: dict[str, Any],
        current: int,
        desired: int,
        min_replicas: int,
        max_replicas: int,
        now: datetime,
    ) -> int:
        status = hpa["status"]
        behavior = (hpa.get("spec") or {}).get("behavior")
        history = self.recommendations.setdefault(key, [])
        if behavior is None:
            stabilized = rules.stabilize_down(desired, history, now=now, window=self.downscale_stabilization)
            words = rules.SCALE_DOWN_STABILIZED
            longest = self.downscale_stabilization
        else:
            down_seconds = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds")
            down_window = (
                timedelta(seconds=int(down_seconds)) if down_seconds is not None else self.downscale_stabilization
            )
            up_window = timedelta(seconds=int((behavior.get("scaleUp") or {}).get("stabilizationWindowSeconds") or 0))
            stabilized, *word_list = rules.stabilize(
                current, desired, history, now=now, up_window=up_window, down_window=down_window
            )
            words = (word_list[0], word_list[1])
            longest = max(up_window, down_window)
        history[:] = [r for r in history if r.at > now - longest] + [rules.Recommendation(desired, now)]
        if stabilized != desired:
            set_condition(status, "AbleToScale", "True", words[0], words[1], now=now)
        else:
            set_condition(status, "AbleToScale", "True", *rules.READY_FOR_NEW_SCALE, now=now)
        if behavior is None:
            limited = rules.limit_legacy(current, stabilized, min_replicas, max_replicas)
        else:
            limited = rules.limit_with_behavior(
                current,
                stabilized,
                min_replicas,
                max_replicas,
                behavior,
                self.scale_ups.get(key, []),
                self.scale_downs.get(key, []),
                now=now,
            )
        limited_status = "False" if limited.replicas == stabilized else "True"
        set_condition(status, "ScalingLimited", limited_status, limited.reason, limited.message, now=now)
        return limited.replicas

    def _record_scale_event(
        self, key: str, behavior: dict[str, Any] | None, before: int, after: int, now: datetime
    ) -> None:
        if behavior is None:
            return
        up = after > before
        events = (self.scale_ups if up else self.scale_downs).setdefault(key, [])
        period = rules.longest_policy_period(behavior.get("scaleUp" if up else "scaleDown") or {})
        events[:] = [e for e in events if e.at > now - timedelta(seconds=period)]
        events.append(rules.ScaleEvent(abs(after - before), now))

    # -- status ---------------------------------------------------------------------------------------

    def _set_status(
        self,
        hpa: dict[str, Any],
        current: int,
        desired: int,
        metric_statuses: list[dict[str, Any]] | None,
        rescaled: bool,
        now: datetime,
    ) -> None:
        old = hpa.get("status") or {}
        status: dict[str, Any] = {}
        if rescaled:
            status["lastScaleTime"] = rfc3339(now)
        elif old.get("lastScaleTime"):
            status["lastScaleTime"] = old["lastScaleTime"]
        status["currentReplicas"] = current
        status["desiredReplicas"] = desired
        if metric_statuses:
            status["currentMetrics"] = metric_statuses
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        hpa["status"] = status

    async def _write_status(self, hpa: dict[str, Any], original: dict[str, Any]) -> None:
        if hpa.get("status") == original:
            return
        await self.client.update(HPAS, hpa, hpa["metadata"]["namespace"], subresource="status")
