"""python -m a2llm.eval bench on a tiny checkpoint: the JSON contract and the table layout."""
import json
import math

from a2llm.eval.__main__ import main


def test_bench_json_has_the_contract_keys(tiny_run, capsys):
    assert main(["bench", "--checkpoint", str(tiny_run[2]), "--turns", "1", "--no-segments", "--no-render",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("ttft_ms", "ttfa_ms", "rtf", "overhead_ratio", "decode_cost_ratio", "speedup_vs_nocache"):
        assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, key
    assert set(r["modes"]) == {"base", "optimized"}
    assert set(r["stages"]) >= {"encoder_ms", "prefill_ms", "decode_ms_per_token", "connector_ms_per_segment",
                                "tokenizer_decode_ms_per_segment", "detokenizer_ms_per_speech_s"}


def test_bench_prints_table1(tiny_run, tiny_corpus, capsys):
    assert main(["bench", "--checkpoint", str(tiny_run[2]), "--turns", "1", "--no-render",
                 "--data", str(tiny_corpus)]) == 0
    out = capsys.readouterr().out
    assert "Table 1" in out and "TTFA" in out and "S = 5" in out and "overhead ratio" in out
