"""Full-size timing on a GPU: Step-Audio-2-mini's architecture + A²-LLM connector + RVQ-VAE, random bf16 weights.

    python scripts/gpu_bench.py [--tokens 250] [--turns 3] [--json OUT.json]
    python scripts/gpu_bench.py --tiny        # the same code path on CPU with tiny sizes (a smoke test)

The released weights are not needed: timing does not depend on their values, only on the shapes. The reply is
forced to ``--tokens`` audio tokens (10 s of speech by default) so every turn does the same work. Reported per mode
(base: transformers forward + DynamicCache; optimized: static KV cache + torch.compile / CUDA graphs): TTFT, TTFA,
RTF, decode ms/token, prefill ms, connector and motion-decoder ms per segment.

Not included: the detokenizer (CosyVoice2 flow matching + HiFT needs the released token2wav weights; its cost is
reported separately by the Step-Audio-2 authors). The engine runs without one here: speech tokens are produced,
not rendered to audio, so RTF is the model path's (LLM + connector + motion decoder).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(tiny: bool, device: torch.device):
    from a2llm.connector import ConnectorConfig
    from a2llm.lalm.backbone import BackboneConfig
    from a2llm.lalm.text_tokenizer import train_nano_tokenizer
    from a2llm.lalm.tokens import TokenLayout
    from a2llm.model import A2LLM, A2LLMConfig
    from a2llm.motion.rvq import MotionRVQVAE, RVQConfig
    from a2llm.motion.tokenizer import MotionTokenizer

    codes = 52 if tiny else 6561
    # A throwaway text tokenizer with the Step-Audio-2 special tokens and audio codes: with random weights the
    # ids only need to exist, and the real tokenizer is not here.
    tok = train_nano_tokenizer(["hello there", "how was the concert"], codes, vocab_size=300)
    layout = TokenLayout.from_tokenizer(tok, codes)
    if tiny:
        cfg = A2LLMConfig.nano(layout.vocab_size)
    else:
        full = A2LLMConfig.full()
        bb = BackboneConfig(**{**full.backbone.__dict__, "vocab_size": max(full.backbone.vocab_size,
                                                                             layout.vocab_size)})
        cfg = A2LLMConfig(name="a2llm-full-random", backbone=bb, connector=ConnectorConfig.full(bb.hidden_size),
                          lora=full.lora)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with torch.device(device):
        model = A2LLM(cfg, MotionTokenizer(MotionRVQVAE(RVQConfig())))
    model = model.to(dtype)
    model.motion_tokenizer.model.float()
    return model.eval(), tok


def run(args) -> dict:
    from a2llm.engine import Engine, EngineConfig, MotionChunk, TurnMetrics

    device = torch.device("cpu" if args.tiny else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --tiny for the CPU smoke test")
    torch.manual_seed(0)
    t = time.time()
    model, tok = build(args.tiny, device)
    build_s = time.time() - t
    rng = np.random.default_rng(0)
    question = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)      # 3 s of "speech" (random)
    out = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "tokens": args.tokens,
           "build_s": round(build_s, 1), "modes": {}}
    for optimized in (False, True):
        engine = Engine(model, tok, None, EngineConfig(force_audio_tokens=args.tokens, optimized=optimized,
                                                        max_context=4096))
        list(engine.turn(audio=question))                        # warm-up (and compilation)
        rows = []
        for _ in range(args.turns):
            engine.reset()
            for ev in engine.turn(audio=question):
                if isinstance(ev, TurnMetrics):
                    rows.append(ev)
        segs = args.tokens / 5 / engine.connector.cfg.segment_tokens
        mean = lambda k: statistics.fmean(getattr(r, k) for r in rows)        # noqa: E731
        out["modes"]["optimized" if optimized else "base"] = {
            "ttft_ms": mean("ttft_ms"), "ttfa_ms": mean("ttfa_ms"), "rtf": mean("rtf"),
            "decode_ms_per_token": statistics.fmean(r.stages["decode"] / r.decode_tokens for r in rows),
            "prefill_ms": statistics.fmean(r.stages["prefill"] + r.stages["encoder"] for r in rows),
            "connector_ms_per_segment": statistics.fmean(r.stages["connector"] / segs for r in rows),
            "motion_decode_ms_per_segment": statistics.fmean(r.stages["tokenizer_decode"] / segs for r in rows),
            "overhead_ratio": mean("overhead_ratio"),
        }
        del engine
        if device.type == "cuda":
            torch.cuda.synchronize()
    if device.type == "cuda":
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=250, help="audio tokens per reply (250 = 10 s of speech)")
    ap.add_argument("--turns", type=int, default=3, help="measured turns per mode (after one warm-up turn)")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test with nano sizes")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    out = run(args)
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
