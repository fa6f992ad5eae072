"""Screenshots of every tab of the running app, for the README (docs/screenshots/*.png).

    .venv/bin/python scripts/screenshots.py                 # starts app.py on a free port, then drives it
    .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:7860/

Headless Chromium (ui/browser.py) does what a person would: types a question in the Conversation tab and waits
for the avatar's video to play and the metrics to fill in; animates a sentence with the built-in nano systems in
the Compare tab; opens a small rank study (made here from the nano systems' renders) in the Study tab; poses the
head in the Head tab. Takes a few minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTENCES = {"laugh": ("Haha, that is wonderful news, I love it!", "happy"),
             "sigh": ("Oh no, that is so sad, I am sorry.", "sad")}
STUDY_SYSTEMS = ("A²-LLM-nano", "adapter-only", "audio-only")


def start_app(studies: Path | None = None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(Path(tempfile.gettempdir()) / "a2llm-screenshots-app.log", "w")
    extra = ["--studies", str(studies)] if studies is not None else []
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *extra], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited; see {log.name}")
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("app.py did not start within 180 s")


def make_study(out: Path) -> Path:
    """A rank study of the nano systems on two sentences (their renders, one video per system and item), on a
    studies shelf ``out / "studies"`` (the app lists it by name)."""
    from a2llm.motion.io import load_motion
    from renderer.render import render_clips
    from ui.nano_systems import animate_with_nano_systems, spoken_sample
    from ui.study import create_study

    videos = []
    for item, (text, emotion) in SENTENCES.items():
        files = animate_with_nano_systems(spoken_sample(text, emotion), ROOT / "checkpoints" / "a2llm-nano")
        for system in STUDY_SYSTEMS:
            path = out / f"{item}__{system}.mp4"
            render_clips([load_motion(files[system])], path, size=256, progress=False)
            videos.append(path)
    return create_study("nano-systems", "rank", list(STUDY_SYSTEMS), videos, out / "studies" / "nano-systems")


def conversation(b, out: Path) -> None:
    from ui.welcome import example_questions

    b.tab("Conversation")
    b.type_turn(example_questions()[0])            # what a visitor meets first: the first clickable example
    b.wait_avatar_playing(timeout=300, seconds=1.0)
    b.wait_for(lambda: "TTFA" in b.text() and "ms ·" in b.text(), 300, "the turn's metrics")
    b.wait_avatar_playing(timeout=60, seconds=2.0)
    b.js("window.scrollTo(0, 0)")
    b.screenshot(out / "conversation.png")


def compare(b, out: Path) -> None:
    b.tab("Compare")
    b.click("Animate with the nano systems")
    b.wait_for(lambda: any(v["ready"] >= 2 for v in b.videos()), 300, "the side-by-side video")
    b.js("document.querySelectorAll('video').forEach(v => { v.currentTime = 1.2; })")
    time.sleep(1)
    b.js("window.scrollTo(0, 0)")
    b.screenshot(out / "compare.png")


def study(b, out: Path) -> None:
    b.tab("Study")                                  # the only study on the shelf is preselected by name
    b.fill("Your name", "demo")
    b.click("Start / resume")
    b.wait_for(lambda: len([v for v in b.videos() if v["ready"] >= 2]) >= 3, 120, "the study's three videos")
    b.js("document.querySelectorAll('video').forEach(v => { v.currentTime = 1.0; })")
    time.sleep(1)
    b.js("window.scrollTo(0, 0)")
    b.screenshot(out / "study.png")


def head(b, out: Path) -> None:
    b.tab("Head")
    for label, value in (("Jaw opening (rad)", "0.2"), ("smile", "2")):    # a posed face, not the neutral one
        b.set_number(label, value)
    b.click("Render")
    time.sleep(1)
    b.wait_for(lambda: "processing |" not in b.text() and b.js(
        "return [...document.querySelectorAll('img')].some(i => i.offsetParent && i.naturalWidth >= 256 && "
        "i.getBoundingClientRect().left > window.innerWidth / 3)"), 120, "the rendered head")
    b.js("window.scrollTo(0, 0)")
    b.screenshot(out / "head.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running app (default: start app.py on a free port)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder for the PNGs")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1100)
    args = ap.parse_args(argv)
    from ui.browser import AppBrowser

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        make_study(Path(tmp))
        try:
            proc, url = (None, args.url) if args.url else start_app(Path(tmp) / "studies")
            with AppBrowser(url, args.width, args.height) as b:
                for name, shoot in (("conversation", conversation), ("compare", compare), ("study", study),
                                    ("head", head)):
                    t = time.time()
                    shoot(b, out)
                    print(f"[screenshots] {name}: {out / (name + '.png')} ({time.time() - t:.0f} s)")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
