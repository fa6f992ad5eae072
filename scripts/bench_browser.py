"""What a visitor sees of the latency: typed turns sent from headless Chromium to the running app, timed by the
video frames the browser actually presents.

    .venv/bin/python scripts/bench_browser.py --turns 5 --json                # starts app.py on a free port
    .venv/bin/python scripts/bench_browser.py --url http://127.0.0.1:7860/    # a running app
    .venv/bin/python scripts/bench_browser.py --app-dir /tmp/before --turns 5 --json   # another checkout's app
    .venv/bin/python scripts/bench_browser.py --app-args "--segments 1" --turns 5
    .venv/bin/python scripts/bench_browser.py --trace --turns 5               # + where the first frame's time goes

Per reply (a typed question, all turns in one dialogue):

* ``first_frame_s``: Send clicked -> the first frame of the reply's video presented (the browser's
  ``requestVideoFrameCallback``, a 20 ms poll of ``currentTime`` where that is missing);
* ``stall_s``: the reply's playback time lost to waiting: (wall time from its first to its last frame) - (media
  time from its first to its last frame), ≥ 0;
* ``finish_s``: Send -> the reply's last frame;
* ``speech_s``: the reply's length, as its metrics panel reports it.

With ``--trace`` the app it starts writes wall-clock marks of each turn's stages (ui/trace.py) and every turn also
gets ``stages``: seconds from Send to the handler taking the turn, the engine's first speech and motion, the first
frames rendered, the first segment encoded, handed to Gradio, through Gradio's own segment work (probe, audio
decode, AAC, MPEG-TS re-mux), and presented by the browser; the medians of those come out as ``stages_median``.

It prints their medians over the turns and each turn's figures (``--json``: one JSON object). This is a benchmark,
not a test: the figures depend on the machine and on what else runs on it. It relies only on what both the
current app and earlier ones have (the ``#a2llm-avatar`` video, the "How was the concert?" message box, the Send
button, the "s of speech" metrics line), so ``--app-dir`` can time an earlier checkout for before / after figures
with this same script.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = ("How was the concert?", "What happened with the exam?", "Did you know the museum is free?",
             "I went to the party yesterday.", "What do you think of the movie?", "Did you enjoy the game?",
             "Who organised the dinner?", "How long is the tour?")

# Records every presented frame of every #a2llm-avatar video: [wall ms, media s, source]. Installed once per page.
PROBE_JS = """
if (!window.__a2llmBench) {
  const st = {frames: [], polls: [], sends: [], seen: new WeakSet(), last: new Map()};
  const attach = (v) => {
    if (st.seen.has(v)) return;
    st.seen.add(v);
    if (v.requestVideoFrameCallback) {
      const tick = (now, meta) => { st.frames.push([performance.now(), meta.mediaTime, v.currentSrc]);
                                    v.requestVideoFrameCallback(tick); };
      v.requestVideoFrameCallback(tick);
    }
  };
  setInterval(() => {
    document.querySelectorAll('#a2llm-avatar video').forEach(v => {
      attach(v);
      const key = v.currentSrc + '|' + v.currentTime;
      if (v.currentSrc && st.last.get(v) !== key && !v.paused) {
        st.last.set(v, key); st.polls.push([performance.now(), v.currentTime, v.currentSrc]); }
    });
  }, 20);
  window.__a2llmBench = st;
}
"""
SEND_JS = """
for (const b of document.querySelectorAll('button'))
  if (b.innerText.trim() === 'Send' && b.offsetParent !== null) {
    window.__a2llmBench.sends.push(performance.now()); b.click(); return window.__a2llmBench.sends.length; }
return 0;
"""
METRICS_JS = """
const m = Array.from(document.querySelectorAll('p, span, div'))
  .filter(e => e.children.length < 12 && /TTFA/.test(e.innerText) && /s of speech/.test(e.innerText));
return m.length ? m[m.length - 1].innerText : '';
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(app_dir: Path, extra: list[str], log: Path, timeout: float = 600) -> tuple[subprocess.Popen, str]:
    port = free_port()
    out = open(log, "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *extra], cwd=app_dir, stdout=out,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited (code {proc.returncode}); see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"app.py did not open its port within {timeout:.0f} s; see {log}")


def speech_seconds(metrics: str) -> float | None:
    import re

    m = re.search(r"([\d.]+) s of speech", metrics)
    return float(m.group(1)) if m else None


def reply_frames(state: dict, t_send: float, before: set[str]) -> list[tuple[float, float]]:
    """[(wall s, media s)] of the reply sent at ``t_send`` (ms): frames after it, from a source not seen before."""
    frames = state["frames"] or state["polls"]
    return [(t / 1000, m) for t, m, src in frames if t > t_send and src and src not in before]


#: The first segment's way from Send to the screen, in order: (stage, ui/trace.py event). The two Gradio stages are
#: those of its first call that carried a segment (its first call carries none: the reply's box opening).
STAGES = (("handler", "turn"), ("first_speech", "first_audio"), ("first_motion", "first_motion"),
          ("first_render", "rendered"), ("video_encoded", "video_encoded"), ("segment_encoded", "encoded"),
          ("handed_to_gradio", "yielded"), ("gradio_start", "gradio_in"), ("gradio_done", "gradio_out"))


def stage_times(marks: list[dict], t_send: float) -> dict:
    """Seconds from Send (epoch s) to the first of each stage's marks after it."""
    marks = [m for m in marks if m["t"] >= t_send]
    start = next((i for i, m in enumerate(marks) if m["event"] == "gradio_in" and m.get("value")), None)
    out = {}
    for name, event in STAGES:
        if event.startswith("gradio_"):
            if start is None:
                continue
            pool = marks[start:]
        else:
            pool = marks
        hit = next((m for m in pool if m["event"] == event), None)
        if hit is not None:
            out[name] = round(hit["t"] - t_send, 3)
    return out


def one_turn(b, question: str, timeout: float, trace_file: str | None = None) -> dict:
    """Send one typed question and time its reply's playback."""
    state = b.js("return {frames: window.__a2llmBench.frames, polls: window.__a2llmBench.polls}")
    before = {src for *_, src in state["frames"] + state["polls"]}
    old_metrics = b.js(METRICS_JS)
    b.fill("How was the concert?", question)
    time.sleep(0.3)
    if not b.js(SEND_JS):
        raise LookupError("no visible Send button")
    t_send = b.js("return window.__a2llmBench.sends[window.__a2llmBench.sends.length - 1]")
    deadline = time.time() + timeout
    metrics, quiet_since, last_count = "", None, -1
    while time.time() < deadline:
        time.sleep(0.25)
        if not metrics:
            now = b.js(METRICS_JS)
            if now and now != old_metrics:
                metrics = now
        state = b.js("return {frames: window.__a2llmBench.frames, polls: window.__a2llmBench.polls}")
        frames = reply_frames(state, t_send, before)
        if len(frames) != last_count:
            last_count, quiet_since = len(frames), time.time()
        speech = speech_seconds(metrics) if metrics else None
        if frames and speech is not None:
            played = frames[-1][1] - frames[0][1]
            if played >= speech - 0.12 or time.time() - quiet_since > 4.0:
                break
    else:
        raise TimeoutError(f"the reply to {question!r} did not finish playing within {timeout:.0f} s")
    (t0, m0), (t1, m1) = frames[0], frames[-1]
    # Where playback waited: consecutive presented frames whose wall-clock gap exceeds their media gap by > 80 ms
    # ([s after Send, s waited]).
    waits = [[round(b[0] - t_send / 1000, 2), round((b[0] - a[0]) - (b[1] - a[1]), 2)]
             for a, b in zip(frames, frames[1:]) if (b[0] - a[0]) - (b[1] - a[1]) > 0.08]
    stages = None
    if trace_file:
        from ui import trace

        origin = b.js("return performance.timeOrigin") / 1000            # browser ms -> epoch s
        stages = {**stage_times(trace.read(trace_file), origin + t_send / 1000),
                  "first_frame": round(t0 - t_send / 1000, 3)}
        # Each streamed piece: server hands it over (gradio_out) -> browser fetched it (resource timing), s after Send.
        fetched = b.js("return performance.getEntriesByType('resource').filter(e => e.name.includes('.ts'))"
                       ".map(e => [e.name.split('?')[0].split('/').pop(), e.startTime, e.responseEnd])")
        send_epoch = origin + t_send / 1000
        served = [round(m["t"] - send_epoch, 2) for m in trace.read(trace_file)
                  if m["event"] == "gradio_out" and m["t"] >= send_epoch]
        stages["pieces_served"] = served
        stages["pieces_fetched"] = [[round(s / 1000 - t_send / 1000, 2), round(e / 1000 - t_send / 1000, 2)]
                                    for _, s, e in fetched if s > t_send]
    return {"question": question, "first_frame_s": round(t0 - t_send / 1000, 3),
            "stall_s": round(max(0.0, (t1 - t0) - (m1 - m0)), 3), "finish_s": round(t1 - t_send / 1000, 3),
            "speech_s": speech, "played_s": round(m1 - m0, 3), "frames": len(frames), "waits": waits,
            "timed_by": "requestVideoFrameCallback" if state["frames"] else "currentTime poll",
            **({"stages": stages} if stages else {})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=5, help="typed turns to time (default 5)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--url", help="a running app (default: start app.py on a free port)")
    ap.add_argument("--app-dir", default=str(ROOT), help="the checkout whose app.py to start (default: this one)")
    ap.add_argument("--app-args", default="", help="extra arguments for app.py, e.g. \"--segments 1\"")
    ap.add_argument("--timeout", type=float, default=180, help="seconds a reply may take to finish playing")
    ap.add_argument("--trace", action="store_true",
                    help="time the first segment's stages too (the started app writes ui/trace.py marks)")
    args = ap.parse_args(argv)
    if args.turns < 1:
        ap.error("--turns must be at least 1")
    from ui.browser import AppBrowser, find_chromium

    find_chromium()
    if args.trace and args.url:
        ap.error("--trace needs the app this script starts (leave out --url)")
    log = Path(tempfile.gettempdir()) / "a2llm-bench-browser-app.log"
    trace_file = None
    if args.trace:
        trace_file = str(Path(tempfile.mkdtemp(prefix="a2llm-trace-")) / "trace.jsonl")
        os.environ["A2LLM_TRACE"] = trace_file                  # inherited by the app it starts
    proc, url = (None, args.url) if args.url else start_app(Path(args.app_dir), shlex.split(args.app_args), log)
    try:
        with AppBrowser(url) as b:
            b.tab("Conversation")
            b.js(PROBE_JS)
            turns = []
            for k in range(args.turns):
                turns.append(one_turn(b, QUESTIONS[k % len(QUESTIONS)], args.timeout, trace_file))
                if not args.json:
                    t = turns[-1]
                    print(f"[bench_browser] turn {k + 1}: first frame {t['first_frame_s']:.2f} s, stall "
                          f"{t['stall_s']:.2f} s, finished {t['finish_s']:.2f} s after Send ({t['speech_s']} s of "
                          f"speech)", flush=True)
                    if "stages" in t:
                        print("    " + ", ".join(f"{k} {v}" for k, v in t["stages"].items()), flush=True)
                time.sleep(1.0)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    summary = {k: round(statistics.median(t[k] for t in turns), 3) for k in ("first_frame_s", "stall_s", "finish_s")}
    if trace_file:
        names = [n for n, _ in STAGES] + ["first_frame"]
        summary["stages_median"] = {n: round(statistics.median(t["stages"][n] for t in turns if n in t["stages"]), 3)
                                    for n in names if any(n in t["stages"] for t in turns)}
    result = {**summary, "turns": len(turns), "app_dir": str(Path(args.app_dir).resolve()) if not args.url else None,
              "app_args": args.app_args, "url": args.url, "per_turn": turns}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"[bench_browser] medians over {len(turns)} replies: first frame {summary['first_frame_s']:.2f} s, "
              f"stall {summary['stall_s']:.2f} s, finished {summary['finish_s']:.2f} s after Send")
        if trace_file:
            print("[bench_browser] first segment, median s after Send: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in summary["stages_median"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
