"""SPDY/3.1 framing: every frame type survives a write/parse round trip, header blocks compress with
the SPDY/3 dictionary across a session, and frames split or joined across transport chunks parse."""

from __future__ import annotations

import struct
import zlib

import pytest

from kubelite.agent.streaming import spdy

FRAMES: list[spdy.Frame] = [
    spdy.SynStreamFrame(1, {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}, priority=2, slot=0),
    spdy.SynStreamFrame(3, {"streamtype": ["data"], "port": ["8080"], "requestid": ["0"]}, flags=spdy.FLAG_FIN),
    spdy.SynReplyFrame(1, {}),
    spdy.SynReplyFrame(3, {"x-multi": ["a", "b"]}, flags=spdy.FLAG_FIN),
    spdy.HeadersFrame(5, {"status": ["200"]}),
    spdy.RstStreamFrame(7, spdy.RST_CANCEL),
    spdy.SettingsFrame(((0, spdy.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20), (1, 4, 100))),
    spdy.PingFrame(1),
    spdy.GoAwayFrame(9, spdy.GOAWAY_OK),
    spdy.WindowUpdateFrame(0, 65536),
    spdy.WindowUpdateFrame(3, 1234),
    spdy.DataFrame(3, b"GET / HTTP/1.0\r\n\r\n"),
    spdy.DataFrame(3, b"", spdy.DATA_FLAG_FIN),
]


def test_dictionary_is_the_spdy3_dictionary() -> None:
    # The published dictionary is 1423 bytes: length-prefixed names, then an unprefixed run.
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_every_frame_round_trips_in_one_session() -> None:
    writer, parser = spdy.FrameWriter(), spdy.FrameParser()
    wire = b"".join(writer.encode(frame) for frame in FRAMES)
    assert parser.feed(wire) == FRAMES


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_frames_split_across_chunks_parse_once_complete(chunk: int) -> None:
    writer, parser = spdy.FrameWriter(), spdy.FrameParser()
    wire = b"".join(writer.encode(frame) for frame in FRAMES)
    parsed: list[spdy.Frame] = []
    for start in range(0, len(wire), chunk):
        parsed.extend(parser.feed(wire[start : start + chunk]))
    assert parsed == FRAMES


def test_header_blocks_use_zlib_with_the_spdy3_dictionary() -> None:
    encoded = spdy.FrameWriter().encode(spdy.SynReplyFrame(1, {"port": ["80"]}))
    block = encoded[8 + 4 :]
    # zlib header announces a preset dictionary whose Adler-32 is the dictionary's
    assert block[1] & 0x20
    assert struct.unpack(">I", block[2:6])[0] == zlib.adler32(spdy.DICTIONARY)
    inflater = zlib.decompressobj(zdict=spdy.DICTIONARY)
    assert spdy.decode_header_block(inflater.decompress(block)) == {"port": ["80"]}
    # each block ends with a sync flush, so a reader can stop exactly at the frame's end
    assert block.endswith(b"\x00\x00\xff\xff")


def test_header_compression_state_spans_frames() -> None:
    writer = spdy.FrameWriter()
    first = writer.encode(spdy.SynStreamFrame(1, {"streamtype": ["data"], "port": ["80"]}))
    second = writer.encode(spdy.SynStreamFrame(3, {"streamtype": ["data"], "port": ["80"]}))
    assert len(second) < len(first)  # the second block refers back to the first
    parser = spdy.FrameParser()
    with pytest.raises(spdy.ProtocolError):
        parser.feed(second)  # without the first block the stream cannot be decoded


def test_header_names_are_lowercased_and_values_joined_with_nul() -> None:
    raw = spdy.encode_header_block({"StreamType": ["data"], "multi": ["a", "b"]})
    assert b"streamtype" in raw and b"a\x00b" in raw
    assert spdy.decode_header_block(raw) == {"streamtype": ["data"], "multi": ["a", "b"]}


def test_frame_layouts_match_the_spec() -> None:
    writer = spdy.FrameWriter()
    assert writer.encode(spdy.DataFrame(5, b"hi", spdy.DATA_FLAG_FIN)) == b"\x00\x00\x00\x05\x01\x00\x00\x02hi"
    assert writer.encode(spdy.PingFrame(7)) == b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x07"
    assert writer.encode(spdy.WindowUpdateFrame(3, 10)) == (
        b"\x80\x03\x00\x09\x00\x00\x00\x08\x00\x00\x00\x03\x00\x00\x00\x0a"
    )
    assert writer.encode(spdy.RstStreamFrame(3, spdy.RST_CANCEL)) == (
        b"\x80\x03\x00\x03\x00\x00\x00\x08\x00\x00\x00\x03\x00\x00\x00\x05"
    )


def test_bad_input_is_a_protocol_error() -> None:
    with pytest.raises(spdy.ProtocolError, match="version"):
        spdy.FrameParser().feed(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")
    with pytest.raises(spdy.ProtocolError, match="stream 0"):
        spdy.FrameParser().feed(b"\x00\x00\x00\x00\x00\x00\x00\x00")
    with pytest.raises(spdy.ProtocolError, match="too short"):
        spdy.FrameParser().feed(b"\x80\x03\x00\x03\x00\x00\x00\x02\x00\x00")
    with pytest.raises(spdy.ProtocolError, match="too large"):
        spdy.FrameParser(max_buffer=16).feed(b"\x00\x00\x00\x01\x00\x00\x00\x20")


def test_unknown_control_frames_are_skipped() -> None:
    unknown = b"\x80\x03\x00\x0a\x00\x00\x00\x02ab"  # type 10 (CREDENTIAL, unused)
    ping = spdy.FrameWriter().encode(spdy.PingFrame(3))
    assert spdy.FrameParser().feed(unknown + ping) == [spdy.PingFrame(3)]
