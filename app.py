"""A²-LLM demo app (Gradio).

    python app.py                      # http://127.0.0.1:7860, embedded defaults (human head)
    python app.py --help
    python app.py --desktop            # no browser: talk through this machine's microphone and speaker

Tabs: Conversation (speak or type; streamed avatar video, live TTFT / TTFA / RTF), Compare (baseline motions side
by side with metrics), Study (blinded preference trials, votes in SQLite) and Head (pose the head). The conversation runs on A²-LLM-nano unless --checkpoint.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="A²-LLM demo: end-to-end conversational audio avatar. Serves a Gradio app on this machine "
                    "only (127.0.0.1) unless --host says otherwise; no public share link unless --share.")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it to the network)")
    ap.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ap.add_argument("--share", action="store_true", help="also open a public gradio.live share link (off by default)")
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "a2llm-nano"),
                    help="A²-LLM checkpoint folder for the conversation (default: the embedded A²-LLM-nano)")
    ap.add_argument("--head", default="human",
                    help="default head: human (MakeHuman CC0 head with ARKit face units, female identity), "
                         "human-male, open (embedded procedural head), flame (real FLAME in checkpoints/flame/), "
                         "a FLAME folder or a head .npz (default: human)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for the model (default 1: the nano engine is fastest on one thread, and the "
                         "rendering thread and ffmpeg need the other cores)")
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


def build_app(default_head: str = "human", checkpoint: str = str(ROOT / "checkpoints" / "a2llm-nano")):
    import gradio as gr

    from ui import compare_tab, conversation_tab, head_tab, study_tab

    heads = available_heads(default_head)
    with gr.Blocks(title="A²-LLM") as demo:
        gr.Markdown("# A²-LLM — conversational audio avatar\nText, speech and FLAME facial motion from one model.")
        with gr.Tab("Conversation"):
            conversation_tab.build(heads, default_head, checkpoint)
        with gr.Tab("Compare"):
            compare_tab.build(heads, default_head, checkpoint)
        with gr.Tab("Study"):
            study_tab.build()
        with gr.Tab("Head"):
            head_tab.build(heads, default_head)
    return demo


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from a2llm.head import load_head

    try:
        load_head(args.head)            # fail early, with the loader's message, on a missing head
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
    if not args.no_warmup:
        from ui.conversation import warm_up

        print("[app] warming up (one throwaway turn) ...", flush=True)
        print(f"[app] warm in {warm_up(args.checkpoint, args.head):.1f} s", flush=True)
    demo = build_app(args.head, args.checkpoint)
    demo.queue(default_concurrency_limit=4).launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
