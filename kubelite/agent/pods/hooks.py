"""Lifecycle hooks (postStart, preStop): run one handler and word its failure as the kubelet does.

The returned message is the text of the kubelet's FailedPostStartHook / FailedPreStopHook event:

* exec: ``Exec lifecycle hook ([cmd args]) for Container "c" in Pod "name_ns(uid)" failed - error:
  command 'cmd args' exited with 1: <stderr>, message: "<stdout+stderr>"``.  The command is not
  ``$(VAR)``-expanded (upstream does not either).
* httpGet: any HTTP response succeeds, whatever its status (upstream checks none); no response
  fails with ``HTTP lifecycle hook (/path) for Container "c" in Pod "..." failed - error: <Go's
  error>``.  An https hook answered in plain HTTP is retried over http without ``Authorization``,
  as the kubelet does.  User-Agent ``kube-lifecycle/1.32``.
* sleep: waits ``seconds``; cut short by `timeout` it fails with ``Sleep lifecycle hook (<n>) for
  Container "c" in Pod "..." failed - error: container terminated before sleep hook finished``.

`timeout` bounds the whole handler (the caller passes what is left of the grace period).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.agent.pods.httpget import HttpGetError, http_get, probe_url
from kubelite.agent.pods.probes import ProbeContext, go_quote
from kubelite.agent.runtime.interface import ContainerRuntimeError

log = logging.getLogger(__name__)

__all__ = ["format_pod", "run_handler"]

HTTP_FALLBACK = "http: server gave HTTP response to HTTPS client"


def format_pod(pod: dict[str, Any] | None) -> str:
    """The kubelet's pod name in messages: ``name_namespace(uid)``."""
    meta = (pod or {}).get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def _go_list(items: list[Any]) -> str:
    return "[" + " ".join(str(i) for i in items) + "]"


async def _exec_hook(action: dict[str, Any], ctx: ProbeContext, timeout: float) -> str | None:
    command = [str(part) for part in action.get("command") or ()]
    joined = " ".join(command)
    output = ""
    try:
        async with asyncio.timeout(timeout + 5):  # a guard: exec_sync enforces `timeout` itself
            result = await ctx.exec_sync(command, timeout)
    except TimeoutError:
        error = f"command {go_quote(joined)} timed out"
    except ContainerRuntimeError as exc:
        error = str(exc)
    else:
        if result.exit_code == 0:
            return None
        stderr = result.stderr.decode("utf-8", errors="replace")
        error = f"command '{joined}' exited with {result.exit_code}: {stderr}"
        output = (result.stdout + result.stderr).decode("utf-8", errors="replace")
    where = f"for Container {go_quote(str(ctx.container.get('name', '')))} in Pod {go_quote(format_pod(ctx.pod))}"
    return f"Exec lifecycle hook ({_go_list(command)}) {where} failed - error: {error}, message: {go_quote(output)}"


async def _http_hook(action: dict[str, Any], ctx: ProbeContext, timeout: float) -> str | None:
    headers = list(action.get("httpHeaders") or ())
    try:
        url = probe_url(action, ctx.container, ctx.pod_ip)
        try:
            await http_get(url, headers, timeout=timeout, purpose="lifecycle")
        except HttpGetError as exc:
            if not (url.startswith("https:") and exc.message.endswith(HTTP_FALLBACK)):
                raise
            log.info("HTTPS lifecycle hook got an HTTP response, retrying with HTTP", extra={"url": url})
            plain = [h for h in headers if str(h.get("name") or "").lower() != "authorization"]
            await http_get("http:" + url[len("https:") :], plain, timeout=timeout, purpose="lifecycle")
    except (HttpGetError, ValueError) as exc:
        error = exc.message if isinstance(exc, HttpGetError) else str(exc)
    else:
        return None
    path = str(action.get("path") or "")
    where = f"for Container {go_quote(str(ctx.container.get('name', '')))} in Pod {go_quote(format_pod(ctx.pod))}"
    return f"HTTP lifecycle hook ({path}) {where} failed - error: {error}"


async def _sleep_hook(action: dict[str, Any], ctx: ProbeContext, timeout: float) -> str | None:
    seconds = int(action.get("seconds") or 0)
    if seconds <= timeout:
        await asyncio.sleep(seconds)
        return None
    await asyncio.sleep(max(timeout, 0.0))
    where = f"for Container {go_quote(str(ctx.container.get('name', '')))} in Pod {go_quote(format_pod(ctx.pod))}"
    return f"Sleep lifecycle hook ({seconds}) {where} failed - error: container terminated before sleep hook finished"


async def run_handler(handler: dict[str, Any], ctx: ProbeContext, *, timeout: float) -> str | None:
    """Run a postStart/preStop handler; None on success, else the kubelet's failure message."""
    if handler.get("exec") is not None:
        return await _exec_hook(handler["exec"], ctx, timeout)
    if handler.get("httpGet") is not None:
        return await _http_hook(handler["httpGet"], ctx, timeout)
    if handler.get("sleep") is not None:
        return await _sleep_hook(handler["sleep"], ctx, timeout)
    return f"Cannot run handler: invalid handler: {handler}"
