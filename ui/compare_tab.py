"""Compare tab: several systems' motion for the same audio, side by side, with the metrics table."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

from a2llm.eval.metrics import METRIC_INFO, METRIC_KEYS, compute_metrics, mouth_opening, to_vertices
from a2llm.eval.plots import plot_mouth_openings
from a2llm.head import load_head
from a2llm.motion.importers import import_motion
from a2llm.motion.io import MotionClip
from ui.errors import refuse
from ui.files import new_output

IMPORT_KINDS = ("auto", "a2llm", "artalk", "diffposetalk", "smirk", "vertices")


def _data(clip) -> np.ndarray:
    return clip.motion if isinstance(clip, MotionClip) else clip.vertices


def compare(reference: str, others: list[str], labels: str = "", audio: str | None = None, head: str = "open",
            kind: str = "auto", size: int = 384) -> tuple[str, list[list], str]:
    """Render reference + others as one grid video and score each other system against the reference.

    Args:
        reference: motion file of the reference (ground truth or the system others are judged against).
        others: motion files of the compared systems (any importer format).
        labels: comma-separated captions, reference first; defaults to the file names.
        audio: optional speech file; default: audio embedded in the reference file.
        head: head spec for parameter motions.
        kind: importer format of all files ("auto" detects each).
        size: tile size in pixels.

    Returns:
        (mp4 path, metrics table rows [system, *7 metrics], mouth-opening plot path)
    """
    from renderer.__main__ import _read_audio
    from renderer.render import render_clips

    if not reference:
        raise refuse("compare", "Upload a reference motion file first.")
    paths = [Path(reference)] + [Path(p) for p in (others or [])]
    names = [s.strip() for s in labels.split(",")] if labels and labels.strip() else [p.stem for p in paths]
    if len(names) != len(paths):
        raise refuse("compare", f"{len(names)} labels for {len(paths)} files: give one label per file, "
                                "reference first.")
    try:
        clips = [import_motion(p, kind=kind) for p in paths]
        model = load_head(head)
        wav, sr = _read_audio(Path(audio)) if audio else (None, None)
        video = render_clips(clips, new_output(".mp4", "compare"), labels=names, head=model, audio=wav,
                             sample_rate=sr, size=int(size), progress=False)
        ref = _data(clips[0])
        rows, curves = [], {names[0]: mouth_opening(to_vertices(ref, model), model)}
        for name, clip in zip(names[1:], clips[1:]):
            m = compute_metrics(_data(clip), ref, model)
            rows.append([name] + [None if np.isnan(m[k]) else round(float(m[k]), 3) for k in METRIC_KEYS])
            curves[name] = mouth_opening(to_vertices(_data(clip), model), model)
        plot = plot_mouth_openings(curves, new_output(".png", "mouth"), title=f"Mouth opening (reference: {names[0]})")
    except (OSError, ValueError, RuntimeError) as e:
        raise refuse("compare", e) from e
    return str(video), rows, str(plot)


def compare_nano(sentence: str, emotion: str = "neutral", head: str = "open", size: int = 384,
                 checkpoint: str = "checkpoints/a2llm-nano"):
    """The built-in nano systems saying ``sentence``: their motion files, the grid video, metrics and plot.

    Returns (reference file, system files, labels, mp4, metrics rows, mouth plot)."""
    from ui.nano_systems import animate_with_nano_systems, spoken_sample

    try:
        files = animate_with_nano_systems(spoken_sample(sentence, emotion), checkpoint)
    except (OSError, ValueError, RuntimeError) as e:
        raise refuse("compare_nano", e) from e
    names, paths = list(files), [str(p) for p in files.values()]
    video, rows, plot = compare(paths[0], paths[1:], ", ".join(names), None, head, "a2llm", size)
    return paths[0], paths[1:], ", ".join(names), video, rows, plot


def metric_headers() -> list[str]:
    return ["system"] + [METRIC_INFO[k].short for k in METRIC_KEYS]


def build(head_choices: list[str], default_head: str, checkpoint: str = "checkpoints/a2llm-nano") -> None:
    """Add the Compare tab's components to the current Blocks."""
    gr.Markdown("Upload the **reference** motion (e.g. ground truth) and the motions of the systems to compare "
                "for the same audio: A²-LLM `.npz`, ARTalk (106-d), DiffPoseTalk (`exp` + `pose`), SMIRK outputs "
                "or FLAME vertex sequences. They are drawn side by side on one timeline with one audio track.")
    with gr.Row():
        with gr.Column():
            ref = gr.File(label="Reference motion", file_types=[".npz", ".npy", ".pt", ".pth"])
            others = gr.File(label="Systems to compare", file_count="multiple", file_types=[".npz", ".npy", ".pt", ".pth"])
            labels = gr.Textbox(label="Labels (comma-separated, reference first)", placeholder="GT, ours, ARTalk")
            audio = gr.Audio(label="Speech (optional; default: audio inside the reference file)", type="filepath")
            with gr.Row():
                head = gr.Dropdown(head_choices, value=default_head, label="Head")
                kind = gr.Dropdown(list(IMPORT_KINDS), value="auto", label="Input format")
                size = gr.Slider(128, 512, value=384, step=64, label="Tile size (px)")
            go = gr.Button("Render and score", variant="primary")
            with gr.Accordion("Built-in nano systems", open=True):
                gr.Markdown("Type a sentence: FLAME-QA-nano's answer voice says it, its procedural ground truth is "
                            "the reference, and A²-LLM-nano, its curriculum stages, the adapter-only ablation and "
                            "the audio-only avatar animate the same speech (the files land in the inputs above).")
                sentence = gr.Textbox(label="Sentence", value="Haha, that is wonderful news, I love it!")
                with gr.Row():
                    emotion = gr.Dropdown(["neutral", "happy", "sad", "surprised", "contemptuous", "curious"],
                                          value="happy", label="Emotion of the ground truth")
                    nano = gr.Button("Animate with the nano systems")
        with gr.Column():
            video = gr.Video(label="Side by side")
            plot = gr.Image(label="Mouth opening", type="filepath")
    table = gr.Dataframe(headers=metric_headers(), label="Metrics against the reference", interactive=False)
    go.click(compare, [ref, others, labels, audio, head, kind, size], [video, table, plot], api_name="compare")
    nano.click(lambda *a: compare_nano(*a, checkpoint=checkpoint), [sentence, emotion, head, size],
               [ref, others, labels, video, table, plot],
               api_name="compare_nano")
