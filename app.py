"""A²-LLM demo app (Gradio).

    python app.py                      # http://127.0.0.1:7860, embedded defaults (human head)
    python app.py --help
    python app.py --desktop            # no browser: talk through this machine's microphone and speaker

Tabs: Conversation (speak or type; streamed avatar video, live TTFT / TTFA / RTF), Compare (baseline motions side
by side with metrics), Study (blinded preference trials, votes in SQLite) and Head (pose the head). The conversation
runs on A²-LLM-nano unless --checkpoint; the checkpoint is chosen on the page from the folders found under
checkpoints/ (by name: the page never sees a server path). Gradio's analytics are off.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")      # before gradio is imported anywhere

ROOT = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="A²-LLM demo: end-to-end conversational audio avatar. Serves a Gradio app on this machine "
                    "only (127.0.0.1) unless --host says otherwise; no public share link unless --share.")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it to the network: "
                         "add --auth then)")
    ap.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ap.add_argument("--share", action="store_true", help="also open a public gradio.live share link (off by default)")
    ap.add_argument("--auth", default=None, metavar="USER:PASS",
                    help="ask for this user name and password before the page opens (Gradio auth), e.g. for a study "
                         "on a lab network")
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "a2llm-nano"),
                    help="A²-LLM checkpoint folder for the conversation (default: the embedded A²-LLM-nano); the "
                         "page offers it and the checkpoint folders found under checkpoints/")
    ap.add_argument("--head", default="human",
                    help="default head: human (MakeHuman CC0 head with ARKit face units, female identity), "
                         "human-male, open (embedded procedural head), flame (real FLAME in checkpoints/flame/), "
                         "a FLAME folder or a head .npz (default: human)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for the model (default 1: the nano engine is fastest on one thread, and the "
                         "rendering thread and ffmpeg need the other cores)")
    ap.add_argument("--segments", default="0.4,0.6,1",
                    help="lengths in seconds of a reply's streamed video segments, the last one repeated (default "
                         "0.4,0.6,1: short first segments so the first plays sooner; nano's first speech chunks are "
                         "cut to end where these segments end)")
    ap.add_argument("--keep-turns", type=int, default=50,
                    help="conversation turns kept in outputs/ (their videos, motions, segments; default 50): older "
                         "ones are deleted. Studies, votes and desktop recordings are never deleted")
    ap.add_argument("--studies", default=str(ROOT / "outputs" / "studies"),
                    help="folder of the studies (one folder each, opened by name on the page; default "
                         "outputs/studies)")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the throwaway first turn at start-up (it makes the first user's turn fast)")
    from ui.desktop import add_arguments as add_desktop_arguments

    add_desktop_arguments(ap)               # --desktop, --text, --out, --device, --speaker, --vad, ...
    return ap


def available_heads(default: str) -> list[str]:
    """Heads offered in the UI: the human head's identities, the open head, FLAME when its files are present, and
    the chosen default."""
    from a2llm.head import FLAME_DIR

    heads = ["human", "human-male", "open"]
    if any(FLAME_DIR.glob("*.pkl")) or any(FLAME_DIR.glob("*.npz")):
        heads.append("flame")
    if default not in heads:
        heads.append(default)
    return heads


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """"user:pass" -> ("user", "pass"); a ValueError for anything else."""
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth takes USER:PASS (a user name and a password, separated by a colon)")
    return user, password


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_app(default_head: str = "human", checkpoint: str = str(ROOT / "checkpoints" / "a2llm-nano"),
              segments: str = "0.4,0.6,1", studies: str | Path = ROOT / "outputs" / "studies"):
    import gradio as gr

    from ui import checkpoints, compare_tab, conversation_tab, head_tab, study_tab
    from ui.media import StreamConfig
    from ui.study import StudyShelf

    checkpoints.register(checkpoints.find_checkpoints(extra=checkpoint))
    heads = available_heads(default_head)
    with gr.Blocks(title="A²-LLM", analytics_enabled=False) as demo:
        gr.Markdown("# A²-LLM — conversational audio avatar\nText, speech and facial motion from one model.")
        with gr.Tab("Conversation"):
            conversation_tab.build(heads, default_head, checkpoint, StreamConfig.parse(segments, container="ts"))
        with gr.Tab("Compare"):
            compare_tab.build(heads, default_head, checkpoint)
        with gr.Tab("Study"):
            study_tab.build(StudyShelf(studies), checkpoint, default_head)
        with gr.Tab("Head"):
            head_tab.build(heads, default_head)
    return demo


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[app] %(message)s")
    from a2llm.head import load_head

    try:
        load_head(args.head)            # fail early, with the loader's message, on a missing head
        auth = parse_auth(args.auth)
        from ui.files import set_keep_turns
        from ui.media import StreamConfig

        set_keep_turns(args.keep_turns)
        StreamConfig.parse(args.segments)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    import renderer.render  # noqa: F401  (selects the OpenGL platform before gradio's imports)

    from a2llm.model import read_manifest

    try:
        read_manifest(args.checkpoint)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    import torch

    torch.set_num_threads(max(1, args.threads))
    if args.desktop or args.text:           # no Gradio: local microphone / speaker (ui/desktop.py)
        from ui import desktop

        return desktop.main(args)
    if not is_loopback(args.host) and auth is None:
        print(f"[app] warning: --host {args.host} lets anyone who can reach this machine use the app (and vote in "
              "its studies); add --auth USER:PASS", file=sys.stderr, flush=True)
    # The page is built first: it renders the idle avatar and the Head tab's first picture, which closes the GL
    # renderers kept for streaming; the warm-up turn then opens the one the first visitor's turn will use.
    demo = build_app(args.head, args.checkpoint, args.segments, args.studies)
    if not args.no_warmup:
        from ui.conversation import warm_up

        print("[app] warming up (one throwaway turn) ...", flush=True)
        print(f"[app] warm in {warm_up(args.checkpoint, args.head):.1f} s", flush=True)
    demo.queue(default_concurrency_limit=4).launch(server_name=args.host, server_port=args.port, share=args.share,
                                                   auth=auth, max_file_size="100mb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
