"""Head tab: pose the head with a few sliders and look at it (checks the head and the renderer)."""
from __future__ import annotations

import gradio as gr
import numpy as np

from a2llm.head.open_head import EXPRESSION_NAMES
from a2llm.motion.layout import EYELIDS, GLOBAL, JAW, MOTION_DIM

SHOWN = ("smile", "brow_raise", "brow_furrow", "pucker", "mouth_corner_down", "smirk_left")


def pose_motion(jaw: float, yaw: float, pitch: float, eyelids: float, *expr: float) -> np.ndarray:
    """Slider values -> one [58] motion frame (expression sliders in :data:`SHOWN` order)."""
    m = np.zeros(MOTION_DIM, np.float32)
    m[JAW.start] = jaw
    m[GLOBAL.start] = pitch
    m[GLOBAL.start + 1] = yaw
    m[EYELIDS] = eyelids
    for name, value in zip(SHOWN, expr):
        m[EXPRESSION_NAMES.index(name)] = value
    return m


def render_pose(head: str, jaw: float, yaw: float, pitch: float, eyelids: float, *expr: float) -> np.ndarray:
    from renderer.render import render_still

    try:
        return render_still(pose_motion(jaw, yaw, pitch, eyelids, *expr), head=head, size=512)
    except (OSError, ValueError, RuntimeError) as e:
        from ui.errors import refuse

        raise refuse("render_pose", e) from e


def build(head_choices: list[str], default_head: str) -> None:
    gr.Markdown("Expression sliders are the motion's semantic expression columns: on the human head they drive "
                "ARKit face units (smile -> mouthSmileLeft/Right, brow raise -> browInnerUp + browOuterUp, ...), on "
                "the open head its own bases, on real FLAME the same columns are FLAME's PCA components.")
    with gr.Row():
        with gr.Column():
            head = gr.Dropdown(head_choices, value=default_head, label="Head")
            jaw = gr.Slider(0.0, 0.4, value=0.0, step=0.01, label="Jaw opening (rad)")
            yaw = gr.Slider(-0.8, 0.8, value=0.0, step=0.02, label="Head yaw (rad)")
            pitch = gr.Slider(-0.5, 0.5, value=0.0, step=0.02, label="Head pitch (rad)")
            lids = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Eyelids (0 open, 1 closed)")
            expr = [gr.Slider(-3.0, 3.0, value=0.0, step=0.1, label=n.replace("_", " ")) for n in SHOWN]
        # Rendered once here, so the tab shows the head at load and not an empty box.
        image = gr.Image(value=_first_render(default_head), label="Head", type="numpy", height=512)
    inputs = [head, jaw, yaw, pitch, lids, *expr]
    gr.Button("Render").click(render_pose, inputs, image, api_name="render_pose")     # first: it takes the name
    for slider in inputs[1:]:
        slider.release(render_pose, inputs, image, api_visibility="private")
    head.change(render_pose, inputs, image, api_visibility="private")


def _first_render(head: str) -> np.ndarray | None:
    from ui.errors import note

    try:
        return render_pose(head, 0.0, 0.0, 0.0, 0.0, *([0.0] * len(SHOWN)))
    except gr.Error as e:
        note("head tab", e)
        return None
