"""python -m a2llm.eval bench on a tiny checkpoint: the JSON contract and the table layout."""
import json
import math

from a2llm.eval.__main__ import main


def test_bench_json_has_the_contract_keys(tiny_run, capsys):
    assert main(["bench", "--checkpoint", str(tiny_run[2]), "--turns", "1", "--no-segments", "--no-render",
                 "--cascaded", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
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


def test_bench_prints_table1(tiny_run, tiny_corpus, capsys):
    assert main(["bench", "--checkpoint", str(tiny_run[2]), "--turns", "1", "--no-render",
                 "--data", str(tiny_corpus)]) == 0
    out = capsys.readouterr().out
    assert "Table 1" in out and "TTFA" in out and "S = 5" in out and "overhead ratio" in out
    assert "Cascaded" not in out                       # only with --cascaded
