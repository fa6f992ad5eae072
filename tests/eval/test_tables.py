"""python -m a2llm.eval tables on a tiny trained checkpoint: every table, the JSON contract, the figure."""
import json

from a2llm.eval.__main__ import main
from a2llm.eval.metrics import METRIC_KEYS


def test_tables_json_has_every_table_and_metric(tiny_run, tiny_corpus, tmp_path, capsys):
    ckpt = tiny_run[2]
    fig = tmp_path / "emotion.png"
    assert main(["tables", "--checkpoint", str(ckpt), "--data", str(tiny_corpus), "--limit", "3",
                 "--gen-limit", "2", "--figure", str(fig), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["table3"]) == {"a2llm-nano", "audio-only"}
    assert set(r["table6"]) == {"adapter-only", "joint"}
    assert list(r["table4"]) == ["stage1", "stage2", "stage3"]       # the curriculum's stages, in order
    for table in ("table3", "table4", "table6"):
        for row in r[table].values():
            assert set(row) == set(METRIC_KEYS)
    assert r["table6"]["joint"] == r["table3"]["a2llm-nano"]
    assert 0.0 <= r["aqaa_accuracy"] <= 1.0 and r["tts_per"] >= 0.0
    assert fig.exists() and fig.stat().st_size > 1000


def test_tables_text_output_and_missing_baselines(tiny_run, tiny_corpus, tmp_path, capsys):
    ckpt = tiny_run[2]
    assert main(["tables", "--checkpoint", str(ckpt), "--data", str(tiny_corpus), "--limit", "2",
                 "--gen-limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "Table 3" in out and "Table 6" in out and "phone error rate" in out
    bare = tmp_path / "bare"
    bare.mkdir()
    manifest = json.loads((ckpt / "a2llm.json").read_text())
    manifest["baselines"] = {}
    (bare / "a2llm.json").write_text(json.dumps(manifest))
    assert main(["tables", "--checkpoint", str(bare), "--data", str(tiny_corpus)]) == 1
    assert "baseline" in capsys.readouterr().err
