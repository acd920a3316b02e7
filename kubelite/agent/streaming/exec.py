"""Exec and attach sessions over an upgraded WebSocket (channel protocol, see `channels`).

exec: the command's stdout/stderr go out on channels 1/2 (with a tty, one merged stream on 1); stdin
(channel 0) goes to the command; resize (4) sets the terminal size; v5's close (255) ends stdin.  When
the command exits, its remaining output is sent (at most `OUTPUT_DRAIN_TIMEOUT` seconds more, for
children that keep the pipes open), then the Status on channel 3, then the WebSocket is closed —
the Python client's ``stream()`` reads until the socket closes.  If the client goes away first, the
command is killed.

attach: the process runtime has no terminal to attach to, so attach streams the container's live
output (its log, from the end, as raw bytes) until the container exits, then sends Success.  Input goes
to the container's stdin when it was created with ``stdin: true`` (as upstream requires for
``attach -i``); otherwise the client is told so once (on stderr, or stdout with a tty) and its input
is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from pathlib import Path

from aiohttp import WSMsgType, web

from kubelite.agent.runtime.interface import ByteReader, ByteWriter, ContainerRuntimeError, ExecProcess
from kubelite.agent.streaming import channels
from kubelite.agent.streaming.logs import follow_records

__all__ = ["ATTACH_STDIN_UNSUPPORTED", "OUTPUT_DRAIN_TIMEOUT", "StreamOptions", "run_attach", "run_exec"]

log = logging.getLogger(__name__)

OUTPUT_DRAIN_TIMEOUT = 1.0
ATTACH_STDIN_UNSUPPORTED = b"kubelite: the container was not created with stdin: true; showing its output only\r\n"


class StreamOptions:
    """The ``stdin``/``stdout``/``stderr``/``tty`` query flags of exec and attach."""

    __slots__ = ("stderr", "stdin", "stdout", "tty")

    def __init__(self, *, stdin: bool = False, stdout: bool = True, stderr: bool = True, tty: bool = False) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr and not tty  # a tty merges stderr into stdout
        self.tty = tty


async def _send(ws: web.WebSocketResponse, channel: int, payload: bytes) -> None:
    if not ws.closed:
        await ws.send_bytes(channels.encode_message(channel, payload))


async def _pump(ws: web.WebSocketResponse, reader: ByteReader, channel: int, forward: bool) -> None:
    """Copy `reader` to `channel` (or just drain it, so the command never blocks on a full pipe)."""
    while data := await reader.read():
        if forward:
            with contextlib.suppress(ConnectionResetError):
                await _send(ws, channel, data)


async def _client_loop(ws: web.WebSocketResponse, process: ExecProcess | None, options: StreamOptions) -> None:
    """Read the client's messages until it closes the WebSocket; returns then."""
    stdin = process.stdin if process is not None else None
    async for message in ws:
        if message.type != WSMsgType.BINARY:
            if message.type == WSMsgType.ERROR:
                return
            continue
        decoded = channels.decode_message(message.data)
        if decoded is None:
            continue
        channel, payload = decoded
        if channel == channels.STDIN and stdin is not None and payload:
            try:
                stdin.write(payload)
                await stdin.drain()
            except OSError:
                stdin = None  # the command closed its input; drop the rest
        elif channel == channels.RESIZE and process is not None and options.tty:
            size = channels.parse_resize(payload)
            if size is not None and size != (0, 0):
                with contextlib.suppress(ContainerRuntimeError, OSError):
                    process.resize(*size)
        elif channel == channels.CLOSE and ws.ws_protocol == channels.V5:
            if payload[:1] == bytes((channels.STDIN,)) and stdin is not None:
                with contextlib.suppress(OSError):
                    await stdin.drain()
                    stdin.close()
                stdin = None


async def _finish(ws: web.WebSocketResponse, status: bytes) -> None:
    with contextlib.suppress(ConnectionResetError):
        await _send(ws, channels.ERROR, status)
    await ws.close()


async def _until_first(main: Awaitable[object], client: asyncio.Task[None]) -> bool:
    """Wait for `main` or for the client to leave; ``True`` if `main` finished."""
    main_task = asyncio.ensure_future(main)
    try:
        await asyncio.wait([main_task, client], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not main_task.done():
            main_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await main_task
    return main_task.done() and not main_task.cancelled()


async def run_exec(
    ws: web.WebSocketResponse, process: ExecProcess, *, command: list[str], options: StreamOptions
) -> int | None:
    """Run the session to its end; returns the exit code (``None`` if the client left first).  Always
    closes `process` and `ws`."""
    try:
        async with asyncio.TaskGroup() as group:
            client = group.create_task(_client_loop(ws, process, options))
            pumps = [group.create_task(_pump(ws, process.stdout, channels.STDOUT, options.stdout or options.tty))]
            if process.stderr is not None:
                pumps.append(group.create_task(_pump(ws, process.stderr, channels.STDERR, options.stderr)))
            exited = await _until_first(process.wait(), client)
            if not exited:  # the client went away: kill the command
                for task in pumps:
                    task.cancel()
                return None
            exit_code = await process.wait()
            _done, pending = await asyncio.wait(pumps, timeout=OUTPUT_DRAIN_TIMEOUT)
            for task in pending:
                task.cancel()
            status = channels.status_success() if exit_code == 0 else channels.status_exit_code(command, exit_code)
            await _finish(ws, status)
            client.cancel()
            return exit_code
    finally:
        await process.aclose()
        await ws.close()


class _AttachedInput:
    """What `_client_loop` needs of a process, for attach: the container's stdin, no terminal to resize."""

    def __init__(self, stdin: ByteWriter | None) -> None:
        self.stdin = stdin

    def resize(self, width: int, height: int) -> None:
        pass


async def run_attach(
    ws: web.WebSocketResponse,
    log_path: Path,
    *,
    container_exit: asyncio.Future[object],
    options: StreamOptions,
    stdin: ByteWriter | None = None,
) -> None:
    """Stream the container's output from now until `container_exit` completes (it is cancelled if the
    client leaves first); then Success.  Client input goes to `stdin` (the container's, when it was
    created with ``stdin: true``).  Always closes `ws` and `stdin`."""

    async def output() -> None:
        if options.stdin and stdin is None:
            notice_channel = channels.STDERR if options.stderr else channels.STDOUT
            await _send(ws, notice_channel, ATTACH_STDIN_UNSUPPORTED)
        async for record in follow_records(log_path, from_end=True, until=container_exit):
            if record.stream == "stderr":
                channel = channels.STDOUT if options.tty else channels.STDERR if options.stderr else None
            else:
                channel = channels.STDOUT if options.stdout or options.tty else None
            if channel is not None:
                await _send(ws, channel, record.content + (b"" if record.partial else b"\n"))

    try:
        async with asyncio.TaskGroup() as group:
            attached = _AttachedInput(stdin if options.stdin else None)
            client = group.create_task(_client_loop(ws, attached, options))  # type: ignore[arg-type]
            if await _until_first(output(), client):
                await _finish(ws, channels.status_success())
            client.cancel()
    finally:
        container_exit.cancel()
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()
        await ws.close()
