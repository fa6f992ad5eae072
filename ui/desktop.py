"""Desktop mode (``python app.py --desktop``): talk to the avatar through this machine's microphone and speaker.

    python app.py --desktop                 # hands-free: speak, pause, the avatar answers aloud
    python app.py --desktop --text          # type the turns instead (no microphone needed)

No Gradio. The microphone is read continuously (sounddevice ``InputStream``, mono, 16 kHz when the device offers
it, else the device's own rate and the turn is resampled by :func:`ui.conversation.prepare_audio`). A turn starts
after ~0.1 s of speech and ends after 0.8 s of silence; speech is told from silence by silero-vad when the
``silero_vad`` package is importable, else by an energy threshold over the room's noise floor (the start-up line
says which runs). The turn goes through :class:`ui.conversation.ChatSession`; the reply's speech is played as it
streams (sounddevice ``OutputStream``) and each turn's rendered mp4 (+ motion .npz) is written to ``--out``,
with its path, the reply text and TTFT / TTFA / RTF printed. With a display the avatar is also shown live in a
window (matplotlib), in step with the speech.

Barge-in: speaking while the avatar talks cuts the reply (engine cancel + playback dropped) and the new speech
is the next turn. The microphone then hears the loudspeaker too, so use headphones, or ``--no-barge-in`` (the
microphone is ignored while the avatar speaks). In ``--text`` mode Ctrl-C during a reply cuts it; Ctrl-C or
Ctrl-D at the prompt quits. In voice mode Ctrl-C quits.

sounddevice (and its PortAudio library, Debian ``libportaudio2``) is imported only here, lazily, through
:func:`_sounddevice`; tests replace that loader with a fake module.
"""
from __future__ import annotations

import argparse
import importlib
import math
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from ui.conversation import SAMPLE_RATE, ChatSession, TurnUpdate, prepare_audio
# The parts live in their own modules; their names stay importable from here (tests, callers).
from ui.desktop_audio import NO_MIC, NO_SPEAKER, DesktopError, Microphone, Speaker, pick_device  # noqa: F401
from ui.desktop_turns import EnergyVAD, SileroVAD, TurnDetector, make_vad  # noqa: F401
from ui.desktop_window import Window, has_display, open_window  # noqa: F401
from ui.files import OUTPUT_ROOT


def _sounddevice():
    """The sounddevice module, imported on first use, or a :class:`DesktopError` saying what to install."""
    try:
        return importlib.import_module("sounddevice")
    except ImportError as e:
        raise DesktopError("desktop mode needs the sounddevice package: "
                           ".venv/bin/python -m pip install 'sounddevice>=0.4'") from e
    except OSError as e:                          # sounddevice raises OSError when libportaudio is absent
        raise DesktopError(f"the PortAudio library is missing ({e}): apt-get install libportaudio2") from e


# -------------------------------------------------------------------------------------------------- turns
class Reply:
    """One avatar reply, generated on a worker thread; speech goes to the speaker, frames to the window."""

    def __init__(self, session: ChatSession, speaker: Speaker | None, window: Window | None,
                 text: str | None = None, audio: np.ndarray | None = None):
        self.speaker, self.window = speaker, window
        self.epoch = speaker.new_turn() if speaker is not None else 0
        if window is not None:
            window.clear()
        self.final: TurnUpdate | None = None
        self.error: Exception | None = None
        self.cut = False                             # barge-in happened during this reply
        self.reported = False
        self.started = time.perf_counter()
        self.thread = threading.Thread(target=self._run, args=(session, text, audio), name="reply", daemon=True)
        self.thread.start()

    def _play(self, pcm: np.ndarray, sample_rate: int) -> None:
        self.speaker.play(pcm, sample_rate, self.epoch)

    def _run(self, session: ChatSession, text: str | None, audio: np.ndarray | None) -> None:
        try:
            for update in session.respond(text=text, audio=audio,
                                          on_audio=self._play if self.speaker is not None else None,
                                          on_frames=self.window.push if self.window is not None else None):
                self.final = update
        except Exception as e:                       # noqa: BLE001 (reported on the main thread)
            self.error = e

    def done(self) -> bool:
        return not self.thread.is_alive()

    def playing(self) -> bool:
        return self.speaker is not None and self.epoch == self.speaker.epoch and self.speaker.busy()

    def clock_s(self) -> float:
        """Seconds into the reply: the speech played so far, or wall time without a speaker."""
        if self.speaker is not None and self.epoch == self.speaker.epoch:
            return self.speaker.position_s
        return time.perf_counter() - self.started


def format_metrics(m: dict) -> str:
    """"TTFT 43 ms · TTFA 452 ms · RTF 0.53 · 2.6 s of speech" (– for a figure the turn never reached)."""
    def ms(v):
        return "–" if v is None or not math.isfinite(v) else f"{v:.0f} ms"

    rtf = "–" if not math.isfinite(m["rtf"]) else f"{m['rtf']:.2f}"
    return f"TTFT {ms(m['ttft_ms'])} · TTFA {ms(m['ttfa_ms'])} · RTF {rtf} · {m['speech_s']:.1f} s of speech"


@dataclass
class DesktopChat:
    """The desktop conversation: a :class:`ChatSession`, this machine's audio devices and an output folder.

    ``sd``: the sounddevice module (None: loaded by :func:`_sounddevice` when needed; tests pass a fake)."""

    session: ChatSession
    out: Path = OUTPUT_ROOT / "desktop"
    sd: object = None
    mic: str | None = None
    speaker_device: str | None = None
    vad: str = "auto"
    barge_in: bool = True
    window: Window | None = None
    results: list[dict] = field(default_factory=list)       # per reply: metrics, video, motion, cut
    current: Reply | None = None                             # the reply running or playing (voice mode)
    stamp: str = field(default_factory=lambda: datetime.now().strftime("%Y%m%d-%H%M%S"))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "DesktopChat":
        window = None
        if not args.no_window:
            window, line = open_window(384)
            print(line)
        session = ChatSession(checkpoint=args.checkpoint, head=args.head, voice=getattr(args, "voice", None))
        return cls(session, out=Path(args.out), mic=args.device,
                   speaker_device=args.speaker, vad=args.vad, barge_in=not args.no_barge_in, window=window)

    # ------------------------------------------------------------------------------------------ set-up
    def _audio(self, required: bool):
        """The sounddevice module; None (with a note) when playback is optional and it cannot be loaded."""
        if self.sd is None:
            try:
                self.sd = _sounddevice()
            except DesktopError as e:
                if required:
                    raise
                print(f"note: {e}; replies are not played, only written to {self.out}")
        return self.sd

    def _open_speaker(self, sd) -> Speaker | None:
        if sd is None:
            return None
        try:
            speaker = Speaker(sd, self.speaker_device, self.session.engine.detok.sample_rate)
        except DesktopError as e:
            if self.speaker_device is not None:
                raise
            print(f"note: {e}; replies are not played, only written to {self.out}")
            return None
        print(f"speaking through {speaker.name!r} at {speaker.rate} Hz")
        return speaker

    def _load(self) -> None:
        t = time.perf_counter()
        print(f"loading {self.session.checkpoint} …", flush=True)
        try:
            self.session.engine                      # noqa: B018 (loads the model once, up front)
        except ValueError as e:                      # e.g. an unknown --voice: the message lists the voices
            raise DesktopError(str(e)) from e
        print(f"loaded in {time.perf_counter() - t:.1f} s")

    # ------------------------------------------------------------------------------------------ turns
    def _pump(self, reply: Reply | None) -> None:
        if self.window is not None and reply is not None:
            self.window.pump(reply.clock_s())

    def _wait(self, reply: Reply) -> None:
        while not reply.done():
            self._pump(reply)
            reply.thread.join(timeout=0.02)

    def _drain(self, speaker: Speaker | None, reply: Reply | None) -> None:
        """Let the reply finish playing (Ctrl-C cuts it)."""
        try:
            while speaker is not None and speaker.busy():
                self._pump(reply)
                time.sleep(0.02)
        except KeyboardInterrupt:
            speaker.stop()

    def _cut(self, reply: Reply, speaker: Speaker | None) -> None:
        """Barge-in: stop generating and drop the speech not played yet."""
        reply.cut = True
        if not reply.done():
            self.session.cancel()
        if speaker is not None:
            speaker.stop()
        if self.window is not None:
            self.window.clear()
        print("(barge-in: reply cut)", flush=True)

    def _keep(self, up: TurnUpdate, n: int) -> tuple[Path | None, Path | None]:
        """Move the turn's mp4 and motion into ``out`` (the session's streaming segments are dropped)."""
        if up.video is None:
            return None, None
        self.out.mkdir(parents=True, exist_ok=True)
        video = self.out / f"{self.stamp}-turn{n:02d}.mp4"
        shutil.move(up.video, video)
        motion = None
        if up.motion is not None:
            motion = video.with_name(f"{video.stem}_motion.npz")
            shutil.move(up.motion, motion)
        folder = Path(up.video).parent
        if folder.parent == OUTPUT_ROOT and folder.name.startswith("turn-"):
            shutil.rmtree(folder, ignore_errors=True)
        return video, motion

    def _report(self, reply: Reply) -> None:
        reply.reported = True
        if reply.error is not None:
            print(f"error: {reply.error}", flush=True)
            return
        if reply.final is None:
            print("error: the turn produced nothing", flush=True)
            return
        m = reply.final.metrics or {}
        video, motion = self._keep(reply.final, len(self.results) + 1)
        self.results.append({"metrics": m, "video": video, "motion": motion, "cut": reply.cut})
        note = " · cut (barge-in)" if m.get("cancelled") else (" · playback cut" if reply.cut else "")
        print(f"avatar: {m.get('text') or '…'}")
        print(f"  {format_metrics(m)}{note}" if m else "  (no metrics)")
        print(f"  video: {video}" if video else "  (no speech, no video)", flush=True)

    # ------------------------------------------------------------------------------------------ modes
    def run_text(self, lines: TextIO, max_turns: int | None = None) -> None:
        """Typed turns, one per line of ``lines``, until EOF / Ctrl-C at the prompt (or ``max_turns``)."""
        sd = self._audio(required=False)
        self._load()
        speaker = self._open_speaker(sd)
        print("type a message and press Enter (Ctrl-C during a reply cuts it; Ctrl-C or Ctrl-D here quits)")
        try:
            while max_turns is None or len(self.results) < max_turns:
                print("you> ", end="", flush=True)
                try:
                    line = lines.readline()
                except KeyboardInterrupt:
                    break
                if not line:
                    break
                if not lines.isatty():                  # piped: show the turn as if it had been typed
                    print(line.rstrip("\n"))
                if line.strip():
                    self._text_turn(line.strip(), speaker)
        finally:
            print()
            if speaker is not None:
                speaker.close()

    def _text_turn(self, text: str, speaker: Speaker | None) -> None:
        reply = Reply(self.session, speaker, self.window, text=text)
        try:
            self._wait(reply)
        except KeyboardInterrupt:
            self._cut(reply, speaker)
            self._wait(reply)
        self._report(reply)
        self._drain(speaker, reply)

    def run_voice(self, max_turns: int | None = None) -> None:
        """Hands-free turns from the microphone until Ctrl-C (or ``max_turns`` replies)."""
        sd = self._audio(required=True)
        mic = Microphone(sd, self.mic)                  # no microphone: fails here, before the model loads
        is_speech, vad_line = make_vad(self.vad)
        detector = TurnDetector(mic.rate, is_speech)
        self._load()
        speaker = self._open_speaker(sd)
        print(f"listening on {mic.name!r} at {mic.rate} Hz; end of turn: {vad_line}; barge-in "
              f"{'on (use headphones)' if self.barge_in else 'off (the microphone is ignored while the avatar talks)'}"
              "; Ctrl-C quits", flush=True)
        self.current = None
        try:
            with mic:
                self._listen(mic, detector, speaker, max_turns)
            self._drain(speaker, self.current)
        except KeyboardInterrupt:
            print("\nbye")
            reply = self.current
            if reply is not None and not reply.done():
                self.session.cancel()
                reply.thread.join(timeout=10)
            if reply is not None and reply.done() and not reply.reported:
                self._report(reply)                  # the cut reply's mp4 still goes to --out
        finally:
            if speaker is not None:
                speaker.close()

    def _listen(self, mic: Microphone, detector: TurnDetector, speaker: Speaker | None,
                max_turns: int | None) -> None:
        """The voice loop: microphone blocks -> turns -> replies, with barge-in (the running one: ``current``)."""
        reply, waiting = None, None
        while max_turns is None or len(self.results) < max_turns:
            busy = reply is not None and (not reply.done() or reply.playing())
            block = mic.read(timeout=0.02)
            if block is not None and busy and not self.barge_in:
                detector.reset()                        # half duplex: don't hear the avatar (or answer it)
            elif block is not None:
                for ev in detector.feed(block):
                    if isinstance(ev, str):
                        if busy:
                            self._cut(reply, speaker)
                    else:
                        waiting = ev
            if reply is not None and reply.done() and not reply.reported:
                self._report(reply)
            if waiting is not None and (reply is None or reply.done()):
                turn, waiting = self._spoken(mic.rate, waiting), None
                if turn is not None:
                    reply = self.current = Reply(self.session, speaker, self.window, audio=turn)
            self._pump(reply)

    @staticmethod
    def _spoken(rate: int, samples: np.ndarray) -> np.ndarray | None:
        """The turn as 16 kHz mono for the model, or None (with the reason) when it is unusable."""
        try:
            audio = prepare_audio(rate, samples)
        except ValueError as e:
            print(f"(turn ignored: {e})", flush=True)
            return None
        print(f"you: (spoken, {len(audio) / SAMPLE_RATE:.1f} s)", flush=True)
        return audio


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The desktop-mode options of ``app.py``."""
    g = ap.add_argument_group("desktop mode (--desktop: no browser; local microphone and speaker)")
    g.add_argument("--desktop", action="store_true",
                   help="talk to the avatar through this machine's microphone and speaker instead of serving the "
                        "web app: speak, pause, and it answers aloud; each turn's mp4 goes to --out (and to a "
                        "window when there is a display). Needs libportaudio2 (apt-get install libportaudio2)")
    g.add_argument("--text", action="store_true",
                   help="desktop mode (implied) with typed turns, one per line on stdin, instead of the "
                        "microphone")
    g.add_argument("--out", default=str(OUTPUT_ROOT / "desktop"),
                   help="folder for each turn's mp4 and motion .npz (default: outputs/desktop/)")
    g.add_argument("--device", default=None,
                   help="microphone: index or part of the name, as `python -m sounddevice` lists them "
                        "(default: the system's default input)")
    g.add_argument("--speaker", default=None,
                   help="speaker: index or part of the name (default: the system's default output)")
    g.add_argument("--vad", default="auto", choices=("auto", "silero", "energy"),
                   help="how speech is told from silence to end a turn: silero-vad, an energy threshold, or auto "
                        "(silero-vad when installed; default)")
    g.add_argument("--no-barge-in", action="store_true",
                   help="ignore the microphone while the avatar speaks (for loudspeakers: otherwise the avatar's "
                        "own voice would cut it off)")
    g.add_argument("--no-window", action="store_true", help="never open a window, even with a display")
    g.add_argument("--voice", default=None,
                   help="the avatar's voice, one of its detokenizer's voices (nano: default, lower, higher, child; "
                        "full size: the reference recordings beside the token2wav weights); default: the first")


def main(args: argparse.Namespace) -> int:
    """Run desktop mode from ``app.py``'s parsed arguments; 0, or 1 after a clear error."""
    try:
        chat = DesktopChat.from_args(args)
        if args.text:
            chat.run_text(sys.stdin)
        else:
            chat.run_voice()
    except DesktopError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:                        # Ctrl-C while loading, before a loop takes over
        print("\nbye")
    return 0
