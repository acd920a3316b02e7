"""SPDY/3.1 framing: frames as small dataclasses, a push parser and a writer (no I/O here).

kubectl's port-forward speaks SPDY/3.1 through ``moby/spdystream`` (tunnelled inside WebSocket binary
messages in 1.32, or on a raw upgraded connection).  A session is a byte stream of frames::

    control: |1| version(15) | type(16) | flags(8) | length(24) | payload |
    data:    |0| stream id(31)           | flags(8) | length(24) | payload |

Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are ``count(32) (len(32) name len(32) value)*``, values
joined by NUL, compressed with *one zlib stream per direction* for the whole session, primed with the
SPDY/3 dictionary and sync-flushed after every block.  Names must be lowercase (spdystream rejects
others).

`FrameParser.feed` accepts arbitrary chunks (a frame may span WebSocket messages, or several frames may
share one) and returns the complete frames; `FrameWriter.encode` turns frames into bytes.  Both keep
the zlib state, so use one of each per session and direction.

Errors: `ProtocolError` for bytes that are not a valid SPDY/3 stream (the session should send GOAWAY
with status `GOAWAY_PROTOCOL_ERROR` and end).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

__all__ = [
    "DATA_FLAG_FIN",
    "DICTIONARY",
    "FLAG_FIN",
    "FLAG_UNIDIRECTIONAL",
    "INITIAL_WINDOW_SIZE",
    "SETTINGS_INITIAL_WINDOW_SIZE",
    "VERSION",
    "DataFrame",
    "Frame",
    "FrameParser",
    "FrameWriter",
    "GoAwayFrame",
    "HeadersFrame",
    "PingFrame",
    "ProtocolError",
    "RstStreamFrame",
    "SettingsFrame",
    "SynReplyFrame",
    "SynStreamFrame",
    "WindowUpdateFrame",
    "decode_header_block",
    "encode_header_block",
]

VERSION = 3
INITIAL_WINDOW_SIZE = 64 * 1024
MAX_FRAME_LENGTH = (1 << 24) - 1

TYPE_SYN_STREAM = 1
TYPE_SYN_REPLY = 2
TYPE_RST_STREAM = 3
TYPE_SETTINGS = 4
TYPE_PING = 6
TYPE_GOAWAY = 7
TYPE_HEADERS = 8
TYPE_WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
DATA_FLAG_FIN = 0x01

SETTINGS_INITIAL_WINDOW_SIZE = 7

# RST_STREAM status codes
RST_PROTOCOL_ERROR = 1
RST_INVALID_STREAM = 2
RST_REFUSED_STREAM = 3
RST_CANCEL = 5
RST_INTERNAL_ERROR = 6
RST_FLOW_CONTROL_ERROR = 7

GOAWAY_OK = 0
GOAWAY_PROTOCOL_ERROR = 1

_STREAM_ID_MASK = 0x7FFFFFFF


def _build_dictionary() -> bytes:
    """The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy / SPDY/3 spec §2.6.10.1):
    common header names and tokens, each prefixed with its 32-bit big-endian length, then a run of
    status codes, reason phrases, dates and media types without prefixes."""
    words = (
        "options head post put delete trace accept accept-charset accept-encoding accept-language "
        "accept-ranges age allow authorization cache-control connection content-base content-encoding "
        "content-language content-length content-location content-md5 content-range content-type date "
        "etag expect expires from host if-match if-modified-since if-none-match if-range "
        "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
        "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
        "user-agent vary via warning www-authenticate method get status"
    ).split()
    prefixed = [*words, "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information"
        "204 No Content"
        "301 Moved Permanently"
        "400 Bad Request"
        "401 Unauthorized"
        "403 Forbidden"
        "404 Not Found"
        "500 Internal Server Error"
        "501 Not Implemented"
        "503 Service Unavailable"
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,"
        "text/plain,text/javascript,public"
        "private"
        "max-age="
        "gzip,deflate,sdch"
        "charset=utf-8"
        "charset=iso-8859-1,utf-,*,enq=0."
    )
    out = bytearray()
    for word in prefixed:
        encoded = word.encode("ascii")
        out += struct.pack(">I", len(encoded)) + encoded
    out += tail.encode("ascii")
    return bytes(out)


DICTIONARY = _build_dictionary()


class ProtocolError(Exception):
    """The peer sent something that is not valid SPDY/3."""


Headers = dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class DataFrame:
    stream_id: int
    data: bytes = b""
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & DATA_FLAG_FIN)


@dataclass(frozen=True, slots=True)
class SynStreamFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    associated_stream_id: int = 0
    priority: int = 0
    slot: int = 0
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class SynReplyFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass(frozen=True, slots=True)
class RstStreamFrame:
    stream_id: int
    status: int


@dataclass(frozen=True, slots=True)
class SettingsFrame:
    # (flags, id, value)
    entries: tuple[tuple[int, int, int], ...] = ()
    flags: int = 0

    def get(self, setting_id: int) -> int | None:
        for _flags, key, value in self.entries:
            if key == setting_id:
                return value
        return None


@dataclass(frozen=True, slots=True)
class PingFrame:
    ping_id: int


@dataclass(frozen=True, slots=True)
class GoAwayFrame:
    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclass(frozen=True, slots=True)
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass(frozen=True, slots=True)
class WindowUpdateFrame:
    stream_id: int
    delta: int


Frame = (
    DataFrame
    | SynStreamFrame
    | SynReplyFrame
    | RstStreamFrame
    | SettingsFrame
    | PingFrame
    | GoAwayFrame
    | HeadersFrame
    | WindowUpdateFrame
)


def encode_header_block(headers: Headers) -> bytes:
    """The uncompressed name/value block.  Names are lowercased; several values join with NUL."""
    out = bytearray(struct.pack(">I", len(headers)))
    for name, values in headers.items():
        name_bytes = name.lower().encode("utf-8")
        value_bytes = b"\x00".join(v.encode("utf-8") for v in values)
        out += struct.pack(">I", len(name_bytes)) + name_bytes
        out += struct.pack(">I", len(value_bytes)) + value_bytes
    return bytes(out)


def decode_header_block(block: bytes) -> Headers:
    """Parse an uncompressed name/value block; raises `ProtocolError` if it is truncated."""
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        offset = 4
        headers: Headers = {}
        for _ in range(count):
            (length,) = struct.unpack_from(">I", block, offset)
            offset += 4
            name = block[offset : offset + length].decode("utf-8")
            offset += length
            (length,) = struct.unpack_from(">I", block, offset)
            offset += 4
            value = block[offset : offset + length]
            if len(value) != length:
                raise ProtocolError("truncated header block")
            offset += length
            headers.setdefault(name.lower(), []).extend(v.decode("utf-8") for v in value.split(b"\x00"))
        return headers
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed header block: {exc}") from exc


class FrameParser:
    """Turns the peer's byte stream into frames.  Keeps the header decompressor for the session.

    `max_buffer` bounds what may wait for a frame to complete (a frame longer than that is refused)."""

    def __init__(self, *, max_buffer: int = 4 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._inflater = zlib.decompressobj(zdict=DICTIONARY)
        self._max_buffer = max_buffer

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, flags_length = struct.unpack_from(">II", self._buffer, 0)
            length = flags_length & 0xFFFFFF
            flags = flags_length >> 24
            if length > self._max_buffer:
                raise ProtocolError(f"frame of {length} bytes is too large")
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            if first & 0x80000000:
                version = (first >> 16) & 0x7FFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                frame = self._control(first & 0xFFFF, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                stream_id = first & _STREAM_ID_MASK
                if stream_id == 0:
                    raise ProtocolError("data frame on stream 0")
                frames.append(DataFrame(stream_id, payload, flags))
        return frames

    def _headers(self, block: bytes) -> Headers:
        try:
            raw = self._inflater.decompress(block)
        except zlib.error as exc:
            raise ProtocolError(f"header block does not decompress: {exc}") from exc
        return decode_header_block(raw)

    def _control(self, frame_type: int, flags: int, payload: bytes) -> Frame | None:
        try:
            if frame_type == TYPE_SYN_STREAM:
                stream_id, associated, priority, slot = struct.unpack_from(">IIBB", payload, 0)
                return SynStreamFrame(
                    stream_id & _STREAM_ID_MASK,
                    self._headers(payload[10:]),
                    associated & _STREAM_ID_MASK,
                    priority >> 5,
                    slot,
                    flags,
                )
            if frame_type == TYPE_SYN_REPLY:
                (stream_id,) = struct.unpack_from(">I", payload, 0)
                return SynReplyFrame(stream_id & _STREAM_ID_MASK, self._headers(payload[4:]), flags)
            if frame_type == TYPE_HEADERS:
                (stream_id,) = struct.unpack_from(">I", payload, 0)
                return HeadersFrame(stream_id & _STREAM_ID_MASK, self._headers(payload[4:]), flags)
            if frame_type == TYPE_RST_STREAM:
                stream_id, status = struct.unpack_from(">II", payload, 0)
                return RstStreamFrame(stream_id & _STREAM_ID_MASK, status)
            if frame_type == TYPE_SETTINGS:
                (count,) = struct.unpack_from(">I", payload, 0)
                entries = []
                for index in range(count):
                    flag_id, value = struct.unpack_from(">II", payload, 4 + 8 * index)
                    entries.append((flag_id >> 24, flag_id & 0xFFFFFF, value))
                return SettingsFrame(tuple(entries), flags)
            if frame_type == TYPE_PING:
                (ping_id,) = struct.unpack_from(">I", payload, 0)
                return PingFrame(ping_id)
            if frame_type == TYPE_GOAWAY:
                last_good, status = struct.unpack_from(">II", payload, 0)
                return GoAwayFrame(last_good & _STREAM_ID_MASK, status)
            if frame_type == TYPE_WINDOW_UPDATE:
                stream_id, delta = struct.unpack_from(">II", payload, 0)
                return WindowUpdateFrame(stream_id & _STREAM_ID_MASK, delta & _STREAM_ID_MASK)
        except struct.error as exc:
            raise ProtocolError(f"control frame type {frame_type} is too short") from exc
        return None  # unknown control frame types are ignored, as the spec asks


class FrameWriter:
    """Encodes frames.  Keeps the header compressor for the session: encode frames in send order."""

    def __init__(self) -> None:
        self._deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, zdict=DICTIONARY)

    def _compress(self, headers: Headers) -> bytes:
        block = encode_header_block(headers)
        return self._deflater.compress(block) + self._deflater.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control(frame_type: int, flags: int, payload: bytes) -> bytes:
        if len(payload) > MAX_FRAME_LENGTH:
            raise ValueError("control frame too large")
        return struct.pack(">HHI", 0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload

    def encode(self, frame: Frame) -> bytes:
        match frame:
            case DataFrame(stream_id, data, flags):
                if len(data) > MAX_FRAME_LENGTH:
                    raise ValueError("data frame too large")
                return struct.pack(">II", stream_id & _STREAM_ID_MASK, (flags << 24) | len(data)) + data
            case SynStreamFrame(stream_id, headers, associated, priority, slot, flags):
                payload = struct.pack(">IIBB", stream_id, associated, (priority & 0x7) << 5, slot)
                return self._control(TYPE_SYN_STREAM, flags, payload + self._compress(headers))
            case SynReplyFrame(stream_id, headers, flags):
                payload = struct.pack(">I", stream_id) + self._compress(headers)
                return self._control(TYPE_SYN_REPLY, flags, payload)
            case HeadersFrame(stream_id, headers, flags):
                payload = struct.pack(">I", stream_id) + self._compress(headers)
                return self._control(TYPE_HEADERS, flags, payload)
            case RstStreamFrame(stream_id, status):
                return self._control(TYPE_RST_STREAM, 0, struct.pack(">II", stream_id, status))
            case SettingsFrame(entries, flags):
                payload = struct.pack(">I", len(entries)) + b"".join(
                    struct.pack(">II", (f << 24) | (key & 0xFFFFFF), value) for f, key, value in entries
                )
                return self._control(TYPE_SETTINGS, flags, payload)
            case PingFrame(ping_id):
                return self._control(TYPE_PING, 0, struct.pack(">I", ping_id))
            case GoAwayFrame(last_good, status):
                return self._control(TYPE_GOAWAY, 0, struct.pack(">II", last_good, status))
            case WindowUpdateFrame(stream_id, delta):
                return self._control(TYPE_WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")
