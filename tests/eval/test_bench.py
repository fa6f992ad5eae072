"""python -m a2llm.eval bench on a tiny checkpoint: the JSON contract and the table layout.

One bench run (every part: both modes, the cascade, the segment study) serves both checks — the table is what
the CLI prints without --json (``format_bench`` of the same result); a run costs ~60 s on 2 cores."""
import json
import math

import pytest

from a2llm.eval.__main__ import main
from a2llm.eval.bench import format_bench


@pytest.fixture(scope="module")
def bench(tiny_run, tiny_corpus):
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["bench", "--checkpoint", str(tiny_run[2]), "--turns", "1", "--no-render", "--cascaded",
                     "--data", str(tiny_corpus), "--json"]) == 0
    return json.loads(buf.getvalue())


def test_bench_json_has_the_contract_keys(bench):
    r = bench
    for key in ("ttft_ms", "ttfa_ms", "rtf", "overhead_ratio", "decode_cost_ratio", "speedup_vs_nocache"):
        assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, key
    assert set(r["modes"]) == {"base", "optimized"}
    assert set(r["stages"]) >= {"encoder_ms", "prefill_ms", "decode_ms_per_token", "connector_ms_per_segment",
                                "tokenizer_decode_ms_per_segment", "detokenizer_ms_per_speech_s"}
    assert set(r["cascaded"]) == {"batch", "streaming"}
    for row in r["cascaded"].values():
        assert row["turns"] == 1
        # the tiny model may answer with nothing to say (no speech: no TTFT); the committed nano's cascade is
        # checked end to end in tests/baselines/test_cascade.py
        assert math.isnan(row["ttft_ms"]) or row["ttfa_ms"] >= row["ttft_ms"] > 0
        assert set(row["stages_ms_per_turn"]) == {"asr", "llm", "tts", "detokenizer", "animation"}
    assert set(r["segment_study"]) >= {"5"} and "mod_mm" in r["segment_study"]["5"]


def test_bench_prints_table1(bench):
    out = format_bench(bench)
    assert "Table 1" in out and "TTFA" in out and "S = 5" in out and "overhead ratio" in out
    assert "Cascaded" in out
    assert "Cascaded (nano stages)" not in format_bench({k: v for k, v in bench.items() if k != "cascaded"})
    # the paper's table 1, every row as printed there
    for row in ("Cascaded (paper)  ", "13730.00", "3232.00", "> 1.0", "47.24", "850.15", "1.005", "50.71", "535.53",
                "0.703"):
        assert row in out, row
