"""WebSocket frames: parsing of client frames, rendering of server frames."""

from __future__ import annotations

import json

import pytest

from edge_server.streaming.protocol import (
    CloseFrame,
    DeltaFrame,
    DoneFrame,
    MediaType,
    OpenFrame,
    PartialFrame,
    ProtocolError,
    ReadyFrame,
    parse_client_frame,
)


def test_open_frame_of_the_contract() -> None:
    frame = parse_client_frame('{"type": "open", "language_hint": "en", "media_type": "audio/wav", "diarize": true}')
    assert frame == OpenFrame(MediaType("container", "audio/wav"), "en", True)
    bounded = parse_client_frame('{"type": "open", "media_type": "audio/wav", "max_delay_s": 1}')
    assert isinstance(bounded, OpenFrame) and bounded.max_delay_s == 1.0


def test_pcm_needs_its_rate() -> None:
    frame = parse_client_frame('{"type": "open", "media_type": "audio/pcm;rate=16000"}')
    assert isinstance(frame, OpenFrame)
    assert frame.media_type == MediaType("pcm", "audio/pcm", 16000)
    assert frame.diarize is False and frame.language_hint is None
    with pytest.raises(ProtocolError) as err:
        parse_client_frame('{"type": "open", "media_type": "audio/pcm"}')
    assert err.value.code == "unsupported_media"


def test_close_frame() -> None:
    assert parse_client_frame('{"type": "close"}') == CloseFrame()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "hello"}', "bad_frame"),
        ('{"media_type": "audio/wav"}', "bad_frame"),
        ('{"type": "open"}', "bad_frame"),
        ('{"type": "open", "media_type": "video/mp4"}', "unsupported_media"),
        ('{"type": "open", "media_type": "audio/wav", "diarize": "yes"}', "bad_frame"),
        ('{"type": "open", "media_type": "audio/wav", "language_hint": 7}', "bad_frame"),
        ('{"type": "open", "media_type": "audio/wav", "max_delay_s": 0.1}', "bad_frame"),
        ('{"type": "open", "media_type": "audio/wav", "max_delay_s": "2"}', "bad_frame"),
        ('{"type": "open", "media_type": "audio/wav", "max_delay_s": true}', "bad_frame"),
    ],
)
def test_bad_client_frames(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_client_frame(text)
    assert err.value.code == code and err.value.message


def test_server_frames_omit_missing_fields_never_null() -> None:
    unlabeled = json.loads(DeltaFrame(segment_id=0, text="Hello?", start=6.7, end=7.2).to_json())
    assert unlabeled == {"type": "delta", "segment_id": 0, "text": "Hello?", "start": 6.7, "end": 7.2}
    labeled = DeltaFrame(
        segment_id=1,
        text="Hi",
        start=7.6,
        end=8.2,
        speaker_label="Alice Example",
        speaker_id="spk_1",
        speaker_confidence=0.9,
    )
    assert json.loads(labeled.to_json())["speaker_label"] == "Alice Example"
    assert json.loads(ReadyFrame(backend_used="A", session_id="ses_1").to_json()) == {
        "type": "ready",
        "backend_used": "A",
        "session_id": "ses_1",
    }
    done = DoneFrame(duration_s=61.2, segments=14, words=120, late_words=0, max_delay_s=2.0)
    assert json.loads(done.to_json()) == {
        "type": "done",
        "duration_s": 61.2,
        "segments": 14,
        "words": 120,
        "late_words": 0,
        "max_delay_s": 2.0,
    }
    partial = PartialFrame(text="so I", start=3.2)
    assert json.loads(partial.to_json()) == {"type": "partial", "text": "so I", "start": 3.2}
