"""A reply's media beside the engine: the segment schedule keeps speech and frames on one timeline, segments are
encoded in order on worker threads, and the whole turn is their video joined without re-encoding."""
import queue
import threading

import numpy as np
import pytest

from renderer.video import probe_mp4
from ui.media import Segmenter, StreamConfig, TurnMedia, encode_segment, join_segments

SR = 16000


def _frames(n, start=0, size=64):
    return [np.full((size, size, 3), (start + i) % 250, np.uint8) for i in range(n)]


def test_the_schedule_starts_short_and_keeps_speech_on_the_frames_timeline():
    cfg = StreamConfig()
    assert [cfg.frames(k) for k in range(5)] == [10, 15, 25, 25, 25]
    # the detokenizer's first speech chunks end where the segments do (ChatSession sets them from --segments)
    assert cfg.speech_chunks(25) == (10, 15) and StreamConfig(segments=(0.4, 0.4, 1.0)).speech_chunks(25) == (10, 10)
    seg = Segmenter(cfg, SR)
    speech = np.arange(87 * 640, dtype=np.float32)              # sample s holds the value s: its place is visible
    out = []
    for k in range(0, 87, 7):                                    # frames and speech in chunks of 7 frames
        n = min(7, 87 - k)
        out += seg.add_frames(_frames(n, k))
        out += seg.add_audio(speech[k * 640:(k + n) * 640])
    out += seg.finish()
    assert [len(f) for f, _ in out] == [10, 15, 25, 25, 12]
    start = 0
    for frames, audio in out:                                    # segment k's speech is exactly its frames' time
        assert len(audio) == 640 * len(frames) and audio[0] == 640 * start
        assert frames[0][0, 0, 0] == start % 250
        start += len(frames)


def test_a_segment_waits_for_its_speech_and_the_last_one_is_padded_with_silence():
    seg = Segmenter(StreamConfig(segments=(1.0,)), SR)
    assert seg.add_frames(_frames(30)) == []                   # no speech yet
    ready = seg.add_audio(np.ones(SR, np.float32))
    assert [len(f) for f, _ in ready] == [25]
    (frames, audio), = seg.finish()
    assert len(frames) == 5 and len(audio) == 5 * 640 and not audio.any()


@pytest.mark.parametrize("text", ["", "0", "0.4,abc", "0.01"])
def test_bad_schedules_are_refused(text):
    with pytest.raises(ValueError):
        StreamConfig.parse(text)


def test_segments_join_into_one_mp4_that_starts_at_zero(tmp_path):
    cfg = StreamConfig()
    parts = [encode_segment(tmp_path / f"seg_{k}.mp4", _frames(n, 10 * k), np.zeros(n * 640, np.float32), SR)
             for k, n in enumerate((10, 15, 7))]
    assert [probe_mp4(p)["frames"] for p in parts] == [10, 15, 7]
    assert probe_mp4(parts[0])["audio_codec"] == "aac" and cfg.preset == "veryfast"
    speech = 0.1 * np.sin(np.arange(32 * 640) / 9).astype(np.float32)
    whole = join_segments(parts, tmp_path / "turn-01.mp4", speech, SR, 32)
    info = probe_mp4(whole)
    assert info["frames"] == 32 and abs(info["seconds"] - 32 / 25) < 0.05 and info["audio_codec"] == "aac"
    import subprocess

    starts = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=start_time", "-of", "csv=p=0",
                             str(whole)], capture_output=True, text=True).stdout.split()
    assert [float(s) for s in starts] == [0.0, 0.0]                # video and speech start together
    assert not list(tmp_path.glob(".*"))                           # no temporary file left behind


def test_turn_media_renders_and_encodes_on_its_threads_in_order(tmp_path):
    from a2llm.head import load_head

    events = queue.Queue()
    media = TurnMedia(load_head("open"), 64, tmp_path, SR, StreamConfig(), events.put)
    motion = np.zeros((40, 58), np.float32)
    motion[:, 50] = 0.2 * np.sin(np.arange(40) / 3)

    got, value = _run_media(media, events, motion, np.zeros(40 * 640, np.float32))
    assert got == value and [p.name for p in got] == ["seg_00000.mp4", "seg_00001.mp4", "seg_00002.mp4"]
    assert [probe_mp4(p)["frames"] for p in got] == [10, 15, 15] and media.frames == 40
    media.close()


def test_an_encoding_failure_is_reported_once(tmp_path):
    from a2llm.head import load_head

    events = queue.Queue()
    media = TurnMedia(load_head("open"), 63, tmp_path, SR, StreamConfig(), events.put)   # odd size: no H.264
    media.add_audio(np.zeros(SR, np.float32))
    media.add_motion(np.zeros((25, 58), np.float32))
    media.finish()
    kind, value = events.get(timeout=120)
    assert kind == "error" and "even" in str(value)
    media.close()
    assert events.empty()



def _run_media(media, events, motion, speech):
    """Feed a TurnMedia as the engine thread does; returns (emitted segment paths, media_done's list)."""
    def feed():
        for k in range(0, len(motion), 5):
            media.add_motion(motion[k:k + 5])
            media.add_audio(speech[k * 640:(k + 5) * 640])
        media.finish()

    threading.Thread(target=feed).start()
    got = []
    while True:
        kind, value = events.get(timeout=120)
        assert kind != "error", value
        if kind == "media_done":
            return got, value
        got.append(value)


def _streams(path):
    """{codec_type: (start, end)} of a media file, by ffprobe."""
    import subprocess

    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time,duration",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True).stdout.split()
    return {kind: (float(start), float(start) + float(dur)) for kind, start, dur in (line.split(",") for line in out)}


def test_ts_pieces_carry_the_speech_on_the_video_timeline_for_gradios_player(tmp_path):
    """container "ts" (the app): each segment is also muxed here into the MPEG-TS piece Gradio's HLS player plays,
    speech from one AAC encoder for the whole reply; a piece's picture never runs past its sound (the player would
    stall at every piece's end), both start at zero, the last piece takes what the encoder held back, and the
    turn's mp4 is still joined from the pieces' video-only segments."""
    from a2llm.head import load_head
    from ui.media import premuxed

    events = queue.Queue()
    media = TurnMedia(load_head("open"), 64, tmp_path, SR, StreamConfig(container="ts"), events.put)
    motion = np.zeros((60, 58), np.float32)
    speech = (0.2 * np.sin(np.arange(60 * 640) / 7)).astype(np.float32)
    got, mp4s = _run_media(media, events, motion, speech)
    media.close()
    assert [p.suffix for p in got] == [".ts"] * len(got) and got == sorted(got) and len(got) >= 4
    durations = [premuxed(p)["duration"] for p in got]
    assert abs(sum(durations) - 2.4) < 1e-6                                # all 60 frames, once
    assert 0 < durations[0] <= 0.4                                        # no more than the first segment
    for piece in got[:-1]:
        streams = _streams(piece)
        assert streams["video"][1] <= streams["audio"][1] + 1e-3          # the picture stops where the sound does
    whole = tmp_path / "all.ts"
    whole.write_bytes(b"".join(p.read_bytes() for p in got))
    streams = _streams(whole)
    assert abs(streams["video"][0] - 10.0) < 1e-3 and abs(streams["video"][1] - 12.4) < 1e-3
    assert abs(streams["audio"][0] - 10.0) < 1e-3 and streams["audio"][1] >= 12.4 - 1e-3
    assert [p.name for p in mp4s] == [p.with_suffix(".mp4").name for p in got]
    assert all(probe_mp4(p)["audio_codec"] is None for p in mp4s)             # speech only in the pieces
    turn = join_segments(mp4s, tmp_path / "turn-01.mp4", speech, SR, 60)
    assert probe_mp4(turn)["frames"] == 60 and probe_mp4(turn)["audio_codec"] == "aac"


def test_the_reply_video_plays_premuxed_pieces_as_they_are(tmp_path):
    import anyio

    from ui.media import write_piece
    from ui.reply_video import ReplyVideo

    piece = write_piece(tmp_path / "seg_00000.ts", b"\x47" + bytes(187), 0.4)
    video = ReplyVideo(streaming=True)
    assert video.get_block_name() == "video"                   # the page sees an ordinary video
    chunk, file = anyio.run(video.stream_output, str(piece), "out-1", True)
    assert chunk == {"data": b"\x47" + bytes(187), "duration": 0.4, "extension": ".ts"} and file["is_stream"]
