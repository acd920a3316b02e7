"""Port-forward sessions: SPDY/3.1 (kubectl) and the WebSocket channel protocol (Python clients).

SPDY (`SpdyPortForward`): for every local connection kubectl opens two streams with the headers
``streamtype: error|data``, ``port`` and ``requestid``.  Each SYN_STREAM is answered with a SYN_REPLY
at once (kubectl waits for it).  When both streams of a request are there, the pod port is dialled
(`PodTarget.open_port`) and bytes are copied both ways; a failure is written as text on the error
stream.  Half-closes are TCP half-closes: a client FIN on the data stream shuts the pod connection's
write side; the pod's EOF ends the pair (FIN on the data stream, then on the error stream, which is
what kubectl waits for).  A RST_STREAM from the client drops that pair.

Flow control (SPDY/3.1): every stream and the session start with a 64 KiB window.  The server sends
WINDOW_UPDATE (stream and session) for what it has handed to the pod.  kubectl's spdystream neither
sends WINDOW_UPDATE nor honours it, so the client's windows are enforced only once the client has shown
it does flow control (a WINDOW_UPDATE or a SETTINGS initial window from it); otherwise nothing would
be sent after the first 64 KiB.  Back-pressure then comes from the transport (a slow pod connection
stalls reading the session).

Channels (`serve_channel_port_forward`): ports from ``?ports=``; port *i* uses channel ``2i`` for data
and ``2i+1`` for errors; each channel first carries ``[ch, port & 0xff, port >> 8]``.  The session
ends (WebSocket closed) when every port's pod connection has ended or the client closes.

Into the pod's network (`open_connection_in_netns`): as the kubelet, the connection goes to the port on
the pod's loopback, inside its network namespace, so a server bound to 127.0.0.1 in the pod is reached.
A fresh thread (never a pooled one) enters the namespace with ``setns(CLONE_NEWNET)`` (a thread's network
namespace is its own), creates the socket there and leaves again; a socket stays in the namespace it was
created in, so the event loop connects and uses it from the node's namespace.  Should leaving fail, the
thread ends anyway, taking the foreign namespace with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from kubelite.agent.streaming import channels, spdy
from kubelite.agent.streaming.interface import PodTarget

__all__ = [
    "SpdyPortForward",
    "open_connection_in_netns",
    "parse_ports",
    "serve_channel_port_forward",
    "serve_spdy_port_forward",
]

log = logging.getLogger(__name__)

READ_SIZE = 32 * 1024
INCOMING_QUEUE_FRAMES = 16
CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _socket_in_netns(netns_path: str) -> socket.socket:
    """A TCP socket created inside the network namespace `netns_path` (run on a throwaway thread)."""
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    try:
        target = os.open(netns_path, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            _setns(own)
    finally:
        os.close(own)


async def open_connection_in_netns(
    netns_path: str, port: int, host: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to `host`:`port` as seen from inside the network namespace `netns_path` (module
    docstring).  Raises `OSError`."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[socket.socket] = loop.create_future()

    def work() -> None:
        try:
            sock = _socket_in_netns(netns_path)
        except BaseException as exc:  # handed to the waiting coroutine
            error = exc
            loop.call_soon_threadsafe(lambda: result.done() or result.set_exception(error))
            return
        loop.call_soon_threadsafe(lambda: result.set_result(sock) if not result.done() else sock.close())

    threading.Thread(target=work, name="netns-connect", daemon=True).start()
    sock = await result
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise


def parse_ports(values: list[str]) -> list[int]:
    """``?ports=80,443&ports=8080`` → [80, 443, 8080]; `ValueError` with the kubelet's wording."""
    ports: list[int] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                port = int(item)
            except ValueError:
                raise ValueError(f'unable to parse "{item}" as a port: invalid syntax') from None
            if not 0 < port < 65536:
                raise ValueError(f"port {port} must be > 0 and < 65536")
            ports.append(port)
    return ports


def forward_error(namespace: str, pod: str, port: int, exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    return f"error forwarding port {port} to pod {namespace}/{pod}: {detail}"


# -- SPDY -------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Stream:
    stream_id: int
    kind: str  # "data" | "error"
    port_text: str
    request_id: str
    incoming: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(INCOMING_QUEUE_FRAMES))
    remote_closed: bool = False  # the client sent FIN
    local_closed: bool = False  # we sent FIN
    reset: bool = False
    send_window: int = spdy.INITIAL_WINDOW_SIZE


class SpdyPortForward:
    """One SPDY session.  `run(incoming, send)` reads the client's bytes from `incoming` (any
    chunking) and writes frames with `send`; it returns when the client ends the session."""

    def __init__(self, pods: PodTarget, namespace: str, pod: str) -> None:
        self.pods = pods
        self.namespace = namespace
        self.pod = pod
        self._parser = spdy.FrameParser()
        self._writer = spdy.FrameWriter()
        self._send: Callable[[bytes], Awaitable[None]] | None = None
        self._send_lock = asyncio.Lock()
        self._streams: dict[int, _Stream] = {}
        self._pairs: dict[str, dict[str, _Stream]] = {}
        self._last_client_stream = 0
        self._peer_flow_control = False
        self._initial_window = spdy.INITIAL_WINDOW_SIZE
        self._session_window = spdy.INITIAL_WINDOW_SIZE
        self._window_changed = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, incoming: AsyncIterator[bytes], send: Callable[[bytes], Awaitable[None]]) -> None:
        self._send = send
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                async for chunk in incoming:
                    for frame in self._parser.feed(chunk):
                        if not await self._handle(frame):
                            return
            except spdy.ProtocolError as exc:
                log.info("port-forward: bad SPDY from the client", extra={"error": str(exc)})
                with contextlib.suppress(ConnectionError):
                    await self._write(spdy.GoAwayFrame(self._last_client_stream, spdy.GOAWAY_PROTOCOL_ERROR))
            finally:  # the client is gone: so are its connections
                self._group = None
                for task in self._tasks:
                    task.cancel()
                self._cancel_all()

    def _cancel_all(self) -> None:
        for stream in self._streams.values():
            stream.reset = True
            with contextlib.suppress(asyncio.QueueFull):
                stream.incoming.put_nowait(None)
        self._window_changed.set()

    async def _write(self, frame: spdy.Frame) -> None:
        assert self._send is not None
        async with self._send_lock:  # the header compressor's state follows the send order
            await self._send(self._writer.encode(frame))

    async def _handle(self, frame: spdy.Frame) -> bool:
        """Act on one frame; ``False`` ends the session."""
        match frame:
            case spdy.SynStreamFrame():
                await self._on_syn_stream(frame)
            case spdy.DataFrame():
                await self._on_data(frame)
            case spdy.RstStreamFrame(stream_id):
                stream = self._streams.pop(stream_id, None)
                if stream is not None:
                    stream.reset = True
                    self._drop_incoming(stream)
                    self._window_changed.set()
            case spdy.WindowUpdateFrame(stream_id, delta):
                self._peer_flow_control = True
                if stream_id == 0:
                    self._session_window += delta
                elif (stream := self._streams.get(stream_id)) is not None:
                    stream.send_window += delta
                self._window_changed.set()
            case spdy.SettingsFrame():
                window = frame.get(spdy.SETTINGS_INITIAL_WINDOW_SIZE)
                if window is not None:
                    self._peer_flow_control = True
                    for stream in self._streams.values():
                        stream.send_window += window - self._initial_window
                    self._initial_window = window
                    self._window_changed.set()
            case spdy.PingFrame(ping_id):
                if ping_id % 2 == 1:  # the client's ping: echo it
                    await self._write(frame)
            case spdy.GoAwayFrame():
                return False
        return True

    @staticmethod
    def _drop_incoming(stream: _Stream) -> None:
        while not stream.incoming.empty():
            stream.incoming.get_nowait()
        stream.incoming.put_nowait(None)

    async def _on_syn_stream(self, frame: spdy.SynStreamFrame) -> None:
        stream_id = frame.stream_id
        if stream_id % 2 == 0 or stream_id <= self._last_client_stream:
            await self._write(spdy.RstStreamFrame(stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        self._last_client_stream = stream_id
        kind = frame.header("streamtype") or ""
        if kind not in ("data", "error"):
            await self._write(spdy.RstStreamFrame(stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        # Clients before requestID paired the error stream n with the data stream n + 2.
        request_id = frame.header("requestid") or str(stream_id if kind == "error" else stream_id - 2)
        stream = _Stream(stream_id, kind, frame.header("port") or "", request_id, send_window=self._initial_window)
        stream.remote_closed = frame.fin
        self._streams[stream_id] = stream
        await self._write(spdy.SynReplyFrame(stream_id, {}))
        if frame.fin:
            stream.incoming.put_nowait(None)
        pair = self._pairs.setdefault(request_id, {})
        if kind in pair:
            await self._write(spdy.RstStreamFrame(stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        pair[kind] = stream
        if "data" in pair and "error" in pair:
            del self._pairs[request_id]
            if self._group is not None:
                task = self._group.create_task(self._forward(pair["data"], pair["error"]))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _on_data(self, frame: spdy.DataFrame) -> None:
        stream = self._streams.get(frame.stream_id)
        if stream is None or stream.reset:
            if frame.data:  # keep the client's windows open even for data we drop
                await self._write(spdy.WindowUpdateFrame(0, len(frame.data)))
            return
        if frame.data:
            if stream.kind == "data" and not stream.remote_closed:
                await stream.incoming.put(frame.data)
            else:
                await self._write(spdy.WindowUpdateFrame(0, len(frame.data)))
        if frame.fin and not stream.remote_closed:
            stream.remote_closed = True
            await stream.incoming.put(None)
        self._forget_if_done(stream)

    def _forget_if_done(self, stream: _Stream) -> None:
        if stream.reset or (stream.remote_closed and stream.local_closed):
            self._streams.pop(stream.stream_id, None)

    async def _fin(self, stream: _Stream, data: bytes = b"") -> None:
        if stream.local_closed or stream.reset:
            return
        stream.local_closed = True
        await self._write(spdy.DataFrame(stream.stream_id, data, spdy.DATA_FLAG_FIN))
        self._forget_if_done(stream)

    async def _send_data(self, stream: _Stream, data: bytes) -> bool:
        """Send `data` on `stream` within the client's windows; ``False`` if the stream is gone."""
        view = memoryview(data)
        while view:
            if stream.reset or stream.local_closed:
                return False
            size = len(view)
            if self._peer_flow_control:
                size = min(size, stream.send_window, self._session_window)
                if size <= 0:
                    self._window_changed.clear()
                    await self._window_changed.wait()
                    continue
                stream.send_window -= size
                self._session_window -= size
            await self._write(spdy.DataFrame(stream.stream_id, bytes(view[:size])))
            view = view[size:]
        return True

    async def _forward(self, data: _Stream, error: _Stream) -> None:
        try:
            port = int(data.port_text)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            await self._fin(error, f'unable to parse "{data.port_text}" as a port: invalid syntax'.encode())
            await self._fin(data)
            return
        try:
            reader, writer = await self.pods.open_port(self.namespace, self.pod, port)
        except (OSError, LookupError) as exc:
            with contextlib.suppress(ConnectionError):
                await self._fin(error, forward_error(self.namespace, self.pod, port, exc).encode())
                await self._fin(data)
            return
        try:
            async with asyncio.TaskGroup() as group:
                upstream = group.create_task(self._to_pod(data, writer))
                await self._from_pod(data, reader)
                upstream.cancel()
        except* OSError:  # the pod or the client connection broke: this pair is over
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            with contextlib.suppress(ConnectionError):
                await self._fin(data)
                await self._fin(error)

    async def _to_pod(self, stream: _Stream, writer: asyncio.StreamWriter) -> None:
        while (chunk := await stream.incoming.get()) is not None:
            writer.write(chunk)
            await writer.drain()
            await self._write(spdy.WindowUpdateFrame(stream.stream_id, len(chunk)))
            await self._write(spdy.WindowUpdateFrame(0, len(chunk)))
        if not stream.reset and writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()

    async def _from_pod(self, stream: _Stream, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(READ_SIZE):
                if not await self._send_data(stream, chunk):
                    return


async def _ws_binary(ws: web.WebSocketResponse) -> AsyncIterator[bytes]:
    async for message in ws:
        if message.type == WSMsgType.BINARY:
            yield message.data
        elif message.type == WSMsgType.ERROR:
            return


async def serve_spdy_port_forward(ws: web.WebSocketResponse, pods: PodTarget, namespace: str, pod: str) -> None:
    """SPDY/3.1 carried in the WebSocket's binary messages (``SPDY/3.1+portforward.k8s.io``)."""

    async def send(data: bytes) -> None:
        if ws.closed:
            raise ConnectionResetError("the WebSocket is closed")
        await ws.send_bytes(data)

    try:
        await SpdyPortForward(pods, namespace, pod).run(_ws_binary(ws), send)
    except* OSError:  # the client went away mid-write
        pass
    finally:
        await ws.close()


# -- WebSocket channels ---------------------------------------------------------------------------------


async def serve_channel_port_forward(
    ws: web.WebSocketResponse, pods: PodTarget, namespace: str, pod: str, ports: list[int]
) -> None:
    """The channel protocol (see the module docstring).  Always closes `ws`."""
    writers: dict[int, asyncio.StreamWriter] = {}
    ready: dict[int, asyncio.Event] = {index: asyncio.Event() for index in range(len(ports))}

    async def send(channel: int, payload: bytes) -> None:
        if not ws.closed:
            await ws.send_bytes(channels.encode_message(channel, payload))

    async def forward(index: int, port: int) -> None:
        try:
            reader, writer = await pods.open_port(namespace, pod, port)
        except (OSError, LookupError) as exc:
            with contextlib.suppress(ConnectionError):
                await send(2 * index + 1, forward_error(namespace, pod, port, exc).encode())
            return
        finally:
            ready[index].set()
        writers[index] = writer
        try:
            with contextlib.suppress(OSError):  # ConnectionError included
                while chunk := await reader.read(READ_SIZE):
                    await send(2 * index, chunk)
        finally:
            writers.pop(index, None)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def client() -> None:
        async for data in _ws_binary(ws):
            decoded = channels.decode_message(data)
            if decoded is None:
                continue
            channel, payload = decoded
            index, is_error = divmod(channel, 2)
            if is_error or index >= len(ports) or not payload:
                continue
            await ready[index].wait()
            writer = writers.get(index)
            if writer is not None:
                writer.write(payload)
                with contextlib.suppress(OSError):
                    await writer.drain()

    try:
        for index, port in enumerate(ports):
            prefix = bytes((port & 0xFF, port >> 8))
            await send(2 * index, prefix)
            await send(2 * index + 1, prefix)
        async with asyncio.TaskGroup() as group:
            client_task = group.create_task(client())
            forwards = [group.create_task(forward(index, port)) for index, port in enumerate(ports)]
            all_forwards = asyncio.gather(*forwards, return_exceptions=True)
            await asyncio.wait([client_task, all_forwards], return_when=asyncio.FIRST_COMPLETED)
            for task in [client_task, *forwards]:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await all_forwards
    except* OSError:  # the client went away mid-write
        pass
    finally:
        for writer in writers.values():
            writer.close()
        await ws.close()
