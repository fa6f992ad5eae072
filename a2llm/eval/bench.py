"""``python -m a2llm.eval bench``: latency and speed of the streaming engine (the seed's table 1 figures).

    python -m a2llm.eval bench [--checkpoint checkpoints/a2llm-nano] [--turns 5] [--json]

Spoken questions (espeak-ng, a voice never used in training) are answered turn after turn in one dialogue (the KV
cache carries across turns). Reported, from one run on this machine:

* TTFT (input end -> first audio token), TTFA (input end -> first motion frame), RTF (generation time / speech
  seconds): mean ± std over the turns;
* the per-stage breakdown: encoder and prefill (ms per turn), decode (ms per token), connector and motion
  tokenizer decode (ms per segment), detokenizer (ms per second of speech), render (ms per 512² frame);
* overhead ratio: turn wall time / sum of the stages' compute (what the engine's own Python costs);
* decode cost ratio: ms per decode step with 1,000 context tokens / with 100;
* speed-up over transformers' ``generate(use_cache=False)`` on the same decoder (the no-KV-cache path),
  for the same 100 new tokens after a 100-token prompt;
* the segment length S: TTFA and motion quality (MOD, temporal correlation against FLAME-QA-nano's ground truth on
  the reference timeline) for S = 1, 2, 5 (the connector was trained with S = 1).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from a2llm.engine import Engine, EngineConfig, MotionChunk, TurnMetrics

QUESTIONS = ("How was the concert?", "Did you enjoy the party?", "What happened with the exam?",
             "Guess who came to the museum?", "Where can I read about the book?", "Did the game go well?",
             "Any good news about your trip?", "Who organised the dinner?")
VOICE = "en-us+m7"                    # a held-out voice of FLAME-QA-nano (never in training)
#: The paper's table 1 as printed (full size on a GPU; the cascaded rows give only TTFA and "> 1.0").
SEED_TABLE1 = {
    "Cascaded (paper)": {"ttft_ms": None, "ttfa_ms": 13730.0, "rtf": "> 1.0"},
    "Cascaded, streaming (paper)": {"ttft_ms": None, "ttfa_ms": 3232.0, "rtf": "> 1.0"},
    "A²-LLM base (paper)": {"ttft_ms": 47.24, "ttfa_ms": 850.15, "rtf": 1.005},
    "A²-LLM optimized (paper)": {"ttft_ms": 50.71, "ttfa_ms": 535.53, "rtf": 0.703},
}


def spoken(text: str) -> np.ndarray:
    """espeak-ng speech of ``text`` at 16 kHz."""
    from a2llm.data.builder.media import resample
    from a2llm.data.espeak import synthesize

    utt = synthesize(text, voice=VOICE, rate=165)
    return resample(utt.audio, utt.sample_rate, 16000)


def _mean_std(values) -> tuple[float, float]:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)


def run_turns(engine: Engine, turns: int) -> tuple[list[TurnMetrics], np.ndarray]:
    """One warm-up turn (not counted), then ``turns`` spoken turns in one dialogue; returns their metrics and the
    last turn's motion."""
    list(engine.turn(audio=spoken("Hello there.")))
    results, motion = [], np.zeros((0, 58), np.float32)
    for i in range(turns):
        frames = []
        for ev in engine.turn(audio=spoken(QUESTIONS[i % len(QUESTIONS)])):
            if isinstance(ev, MotionChunk):
                frames.append(ev.frames)
            elif isinstance(ev, TurnMetrics):
                results.append(ev)
        if frames:
            motion = np.concatenate(frames)
    return results, motion


def stage_breakdown(results: list[TurnMetrics], segment_tokens: int) -> dict[str, float]:
    """Per-unit stage costs averaged over turns."""
    tokens = sum(r.decode_tokens for r in results)
    speech = sum(r.speech_s for r in results)
    segments = sum(math.ceil(r.speech_s * 25 / (5 * segment_tokens)) for r in results)
    total = lambda k: sum(r.stages[k] for r in results)          # noqa: E731
    return {"encoder_ms": total("encoder") / len(results), "prefill_ms": total("prefill") / len(results),
            "decode_ms_per_token": total("decode") / max(tokens, 1),
            "connector_ms_per_segment": total("connector") / max(segments, 1),
            "tokenizer_decode_ms_per_segment": total("tokenizer_decode") / max(segments, 1),
            "detokenizer_ms_per_speech_s": total("detokenizer") / max(speech, 1e-9)}


@torch.no_grad()
def decode_cost(engine: Engine, context: int, steps: int = 40, repeats: int = 3) -> float:
    """ms per decode step with ``context`` tokens already in the cache (the engine's own decode path): the median
    of ``repeats`` timings of ``steps`` steps (one timing is at the mercy of this machine's noise)."""
    bb, L = engine.backbone, engine.layout
    ids = torch.randint(0, L.audio_start, (1, context), generator=torch.Generator().manual_seed(0)).to(engine.device)
    tok = L.audio_offset
    if engine.lean is not None:
        engine.lean.reset()
        engine.lean.forward(bb.model.embed_tokens(ids))
        step = lambda: engine.lean.step(tok)                                            # noqa: E731
    else:
        _, _, state = bb.prefill(ids)
        t1 = torch.tensor([[tok]], device=engine.device)
        step = lambda: bb.step(t1, state)                                               # noqa: E731
    for _ in range(5):
        step()
    timings = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        timings.append(1000 * (time.perf_counter() - t) / steps)
    engine.reset()
    return float(np.median(timings))


@torch.no_grad()
def speedup_vs_nocache(engine: Engine, prompt: int = 100, new: int = 100) -> dict[str, float]:
    """Seconds for ``new`` greedy tokens after a ``prompt``-token prompt: transformers ``generate`` without a KV
    cache vs the engine's cached step loop, on the same decoder."""
    bb, L = engine.backbone, engine.layout
    ids = torch.randint(0, L.audio_start, (1, prompt), generator=torch.Generator().manual_seed(1)).to(engine.device)
    t = time.perf_counter()
    bb.llm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                    do_sample=False, use_cache=False, pad_token_id=L.pad, eos_token_id=None)
    nocache = time.perf_counter() - t
    t = time.perf_counter()
    logits, _, state = bb.prefill(ids)
    for _ in range(new):
        logits, _, state = bb.step(logits.argmax(-1, keepdim=True), state)
    cached = time.perf_counter() - t
    return {"nocache_s": nocache, "cached_s": cached, "speedup": nocache / cached}


def render_cost(motion: np.ndarray, head_name: str = "open", size: int = 512) -> float:
    """ms per rendered frame for the last turn's motion, through the app's own path (``render_frames``: the GL
    thread and its kept renderer, warmed up by one frame first); nan without OpenGL."""
    try:
        from a2llm.head import load_head
        from renderer.render import render_frames
    except Exception:                                              # noqa: BLE001 (no OpenGL here: not measured)
        return math.nan
    if len(motion) == 0:
        return math.nan
    head = load_head(head_name)
    verts = head.vertices(motion)
    render_frames(head, verts[:1], size)
    t = time.perf_counter()
    render_frames(head, verts, size)
    return 1000 * (time.perf_counter() - t) / len(verts)


def segment_study(checkpoint: Path, data: Path | None, sizes=(1, 2, 5), samples: int = 24) -> dict[str, dict]:
    """TTFA (forced 100-token reply) and motion quality on the reference timeline for each segment length S."""
    from a2llm.eval.metrics import aggregate, compute_metrics
    from a2llm.generate import Generator

    out = {}
    clip = spoken(QUESTIONS[0])
    test = []
    if data is not None and (data / "dataset.json").exists():
        from a2llm.data import load_flame_qa

        ds = load_flame_qa(data, "test")
        test = [ds[i] for i in range(min(samples, len(ds)))]
    for S in sizes:
        engine = Engine.from_checkpoint(checkpoint, EngineConfig(segment_tokens=S, force_audio_tokens=100))
        list(engine.turn(audio=clip))                  # warm-up
        ttfa = []
        for _ in range(2):
            engine.reset()
            ttfa.append(list(engine.turn(audio=clip))[-1].ttfa_ms)
        row = {"ttfa_ms": statistics.fmean(ttfa)}
        if test:
            from a2llm.head import load_head

            head = load_head("open")
            gen = Generator(engine.model, engine.tok)
            gen.model.connector = engine.connector
            motions = []
            for i in range(0, len(test), 8):
                motions += gen.motion_for_reference(test[i:i + 8])
            agg = aggregate([compute_metrics(m, s.motion, head) for m, s in zip(motions, test)])
            row.update({"mod_mm": agg["mod_mm"][0], "temporal_corr": agg["temporal_corr"][0]})
        out[str(S)] = row
    return out


def measure_mode(checkpoint: Path, turns: int, optimized: bool, render: bool) -> dict:
    """Turns, stage breakdown and decode costs of one engine mode."""
    engine = Engine.from_checkpoint(checkpoint, EngineConfig(optimized=optimized))
    results, motion = run_turns(engine, turns)
    S = engine.connector.cfg.segment_tokens
    ttft, ttfa, rtf = (_mean_std([getattr(r, k) for r in results]) for k in ("ttft_ms", "ttfa_ms", "rtf"))
    stages = stage_breakdown(results, S)
    stages["render_ms_per_frame"] = render_cost(motion) if render else math.nan
    context_end = engine.context_tokens
    c100, c1000 = decode_cost(engine, 100), decode_cost(engine, 1000)
    return {"engine": engine, "turns": len(results), "segment_tokens": S,
            "ttft_ms": ttft[0], "ttft_ms_std": ttft[1], "ttfa_ms": ttfa[0], "ttfa_ms_std": ttfa[1],
            "rtf": rtf[0], "rtf_std": rtf[1],
            "overhead_ratio": statistics.fmean(r.overhead_ratio for r in results), "stages": stages,
            "decode_ms_at_100": c100, "decode_ms_at_1000": c1000, "decode_cost_ratio": c1000 / c100,
            "speech_s_per_turn": statistics.fmean(r.speech_s for r in results), "context_tokens_end": context_end}


def measure_cascade(checkpoint: Path, turns: int) -> dict[str, dict]:
    """The cascaded baseline (ASR -> LLM -> TTS -> audio-only avatar, all nano) in batch and streaming mode on
    the engine's spoken questions (each a fresh one-turn dialogue: the cascade keeps no context)."""
    from a2llm.baselines.cascade import MODES, Cascade

    cascade = Cascade.nano(checkpoint)
    cascade.run(spoken("Hello there."), 16000, "streaming")                           # warm-up
    clips = [spoken(QUESTIONS[i % len(QUESTIONS)]) for i in range(turns)]
    out = {}
    for mode in MODES:
        runs, decoded, text_tokens = [], 0, 0
        for clip in clips:
            runs.append(cascade.run(clip, 16000, mode))
            decoded += cascade.llm.decoded
            text_tokens += len(cascade.llm.lm.tok.encode(runs[-1].text, add_special_tokens=False))
        row = {"turns": len(runs)}
        for key in ("ttft_ms", "ttfa_ms", "rtf"):
            row[key], row[key + "_std"] = _mean_std([getattr(r, key) for r in runs])
        row["speech_s_per_turn"] = statistics.fmean(r.speech_s for r in runs)
        row["stages_ms_per_turn"] = {k: statistics.fmean(r.stages[k] for r in runs) for k in runs[0].stages}
        row["llm_steps_per_text_token"] = decoded / max(text_tokens, 1)
        row["example"] = {"transcript": runs[0].transcript, "answer": runs[0].text}
        out[mode] = row
    return out


def run_bench(checkpoint: str | Path, turns: int = 5, data: str | Path | None = None, segments: bool = True,
              render: bool = True, cascaded: bool = False) -> dict:
    """Both engine modes; the headline figures are the optimized mode's, ``modes`` holds both."""
    checkpoint = Path(checkpoint)
    t0 = time.time()
    base = measure_mode(checkpoint, turns, optimized=False, render=False)
    opt = measure_mode(checkpoint, turns, optimized=True, render=render)
    nc = speedup_vs_nocache(base.pop("engine"))
    engine = opt.pop("engine")
    result = {"checkpoint": str(checkpoint), "device": str(engine.device), "threads": torch.get_num_threads(),
              "mode": "optimized", **opt,
              "modes": {"base": base, "optimized": {k: v for k, v in opt.items() if k != "stages"}},
              "speedup_vs_nocache": nc["speedup"], "nocache": nc,
              "optimized_speedup_decode": base["stages"]["decode_ms_per_token"] / opt["stages"]["decode_ms_per_token"]}
    result["modes"]["base"]["stages"] = base["stages"]
    if cascaded:
        result["cascaded"] = measure_cascade(checkpoint, turns)
    if segments:
        result["segment_study"] = segment_study(checkpoint, Path(data) if data else None)
    result["seconds"] = round(time.time() - t0, 1)
    return result


def format_bench(r: dict) -> str:
    f = lambda v, d=0: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"   # noqa: E731
    lines = ["Table 1 — latency and speed (TTFT / TTFA in ms, RTF = generation time / speech time); optimized mode",
             f"{'Method':<34}{'TTFT':>14}{'TTFA':>14}{'RTF':>14}",
             f"{'A²-LLM-nano (this run, ' + r['device'] + ')':<34}"
             f"{f(r['ttft_ms']) + ' ± ' + f(r['ttft_ms_std']):>14}{f(r['ttfa_ms']) + ' ± ' + f(r['ttfa_ms_std']):>14}"
             f"{f(r['rtf'], 3) + ' ± ' + f(r['rtf_std'], 3):>14}"]
    b = r["modes"]["base"]
    row = lambda name, x: (f"{name:<34}{f(x['ttft_ms']) + ' ± ' + f(x['ttft_ms_std']):>14}"    # noqa: E731
                           f"{f(x['ttfa_ms']) + ' ± ' + f(x['ttfa_ms_std']):>14}"
                           f"{f(x['rtf'], 3) + ' ± ' + f(x['rtf_std'], 3):>14}")
    lines.append(row("  same, base mode (transformers)", b))
    for mode, name in (("batch", "Cascaded (nano stages)"), ("streaming", "Cascaded (Streaming)")):
        if mode in r.get("cascaded", {}):
            lines.append(row(name, r["cascaded"][mode]))
    for name, row in SEED_TABLE1.items():
        rtf = row["rtf"] if isinstance(row["rtf"], str) else f(row["rtf"], 3)
        lines.append(f"{name:<34}{f(row['ttft_ms'], 2):>14}{f(row['ttfa_ms'], 2):>14}{rtf:>14}")
    s = r["stages"]
    lines += ["", f"Per stage ({r['turns']} turns, {r['speech_s_per_turn']:.2f} s of speech per turn, "
                  f"{r['threads']} thread(s)):",
              f"  encoder {s['encoder_ms']:.1f} ms/turn · prefill {s['prefill_ms']:.1f} ms/turn · decode "
              f"{s['decode_ms_per_token']:.2f} ms/token",
              f"  connector {s['connector_ms_per_segment']:.2f} ms/segment · motion tokenizer decode "
              f"{s['tokenizer_decode_ms_per_segment']:.2f} ms/segment (S = {r['segment_tokens']})",
              f"  detokenizer {s['detokenizer_ms_per_speech_s']:.1f} ms per second of speech · render "
              f"{f(s['render_ms_per_frame'], 1)} ms/frame (512², not part of RTF)",
              f"Engine overhead ratio (turn wall / sum of stages): {r['overhead_ratio']:.3f}",
              f"Decode cost: {r['decode_ms_at_100']:.2f} ms/token at 100 context tokens, {r['decode_ms_at_1000']:.2f} "
              f"at 1,000 (ratio {r['decode_cost_ratio']:.2f})",
              f"Optimized vs base decode: {b['stages']['decode_ms_per_token']:.2f} -> "
              f"{s['decode_ms_per_token']:.2f} ms/token ({r['optimized_speedup_decode']:.1f}x); base overhead ratio "
              f"{b['overhead_ratio']:.3f}, decode cost ratio {b['decode_cost_ratio']:.2f}",
              f"Speed-up over generate(use_cache=False), 100 new tokens: {r['speedup_vs_nocache']:.1f}x "
              f"({r['nocache']['nocache_s']:.2f} s vs {r['nocache']['cached_s']:.2f} s)"]
    for mode, c in r.get("cascaded", {}).items():
        st = " · ".join(f"{k} {v:.0f}" for k, v in c["stages_ms_per_turn"].items())
        lines.append(f"Cascaded {mode}: ms per turn {st} ({c['speech_s_per_turn']:.2f} s of speech; the nano LLM "
                     f"stage decodes {c['llm_steps_per_text_token']:.1f} steps per text token, see a2llm.baselines"
                     ".cascade.NanoLLM)")
    if "segment_study" in r:
        lines.append("Segment length S (motion tokens per connector segment; trained with S = 1):")
        for S, row in r["segment_study"].items():
            q = (f" · MOD {row['mod_mm']:.3f} mm · temporal corr {row['temporal_corr']:.3f}" if "mod_mm" in row else "")
            lines.append(f"  S = {S}: TTFA {row['ttfa_ms']:.0f} ms{q}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    r = run_bench(args.checkpoint, args.turns, args.data, segments=not args.no_segments, render=not args.no_render,
                  cascaded=args.cascaded)
    print(json.dumps(r, indent=2) if args.json else format_bench(r))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="engine latency / speed: TTFT, TTFA, RTF, stages, overhead",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="checkpoints/a2llm-nano", help="A²-LLM checkpoint folder")
    p.add_argument("--turns", type=int, default=5, help="measured turns (after one warm-up turn)")
    p.add_argument("--data", default="data/flame-qa-nano", help="FLAME-QA folder for the segment-length quality")
    p.add_argument("--threads", type=int, default=1, help="torch threads (nano runs best on 1)")
    p.add_argument("--cascaded", action="store_true",
                   help="also measure the cascaded baseline (ASR -> LLM -> TTS -> audio-only avatar), batch and "
                        "streaming, on the same questions: table 1's four rows")
    p.add_argument("--no-segments", action="store_true", help="skip the segment-length study")
    p.add_argument("--no-render", action="store_true", help="skip the render timing")
    p.add_argument("--json", action="store_true", help="print JSON (ttft_ms, ttfa_ms, rtf, overhead_ratio, ...)")
    p.set_defaults(func=_run)
