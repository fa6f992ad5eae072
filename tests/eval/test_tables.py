"""python -m a2llm.eval tables on a tiny trained checkpoint: every table, the JSON contract, the figure."""
import json

import numpy as np

from a2llm.eval.__main__ import main
from a2llm.eval.metrics import METRIC_KEYS


def test_tables_json_has_every_table_and_metric(tiny_run, tiny_corpus, tmp_path, capsys):
    ckpt = tiny_run[2]
    fig = tmp_path / "emotion.png"
    assert main(["tables", "--checkpoint", str(ckpt), "--data", str(tiny_corpus), "--limit", "3",
                 "--gen-limit", "2", "--figure", str(fig), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert list(r["table3"]) == ["ground truth", "a2llm-nano", "audio-only"]
    assert list(r["table4"]) == ["audio-only", "a2llm-nano"]          # the strongest baseline without ARTalk
    assert set(r["table6"]) == {"adapter-only", "joint"}
    assert list(r["curriculum_stages"]) == ["stage1", "stage2", "stage3"]   # the curriculum's stages, in order
    for table in ("table3", "table4", "table6", "curriculum_stages"):
        for row in r[table].values():
            assert set(row) == set(METRIC_KEYS) | {"upper_face_jitter_pooled"}
            assert all(len(cell) == 2 for cell in row.values())            # [mean, std]
    assert r["table6"]["joint"] == r["table3"]["a2llm-nano"]
    gt = r["table3"]["ground truth"]
    assert gt["mod_mm"] == [0.0, 0.0] and gt["upper_face_err_mm"] == [0.0, 0.0]
    assert gt["upper_face_jitter_pooled"] == [1.0, 0.0]
    assert 0.0 <= r["aqaa_accuracy"] <= 1.0 and r["tts_per"] >= 0.0
    assert fig.exists() and fig.stat().st_size > 1000


def test_tables_text_output_and_missing_baselines(tiny_run, tiny_corpus, tmp_path, capsys):
    ckpt = tiny_run[2]
    assert main(["tables", "--checkpoint", str(ckpt), "--data", str(tiny_corpus), "--limit", "2",
                 "--gen-limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "Table 3" in out and "Table 6" in out and "Curriculum stages" in out and "phone error rate" in out
    assert " ± " in out
    bare = tmp_path / "bare"
    bare.mkdir()
    manifest = json.loads((ckpt / "a2llm.json").read_text())
    manifest["baselines"] = {}
    (bare / "a2llm.json").write_text(json.dumps(manifest))
    assert main(["tables", "--checkpoint", str(bare), "--data", str(tiny_corpus)]) == 1
    assert "baseline" in capsys.readouterr().err


def test_artalk_outputs_join_tables_3_and_4(tiny_run, tiny_corpus, tmp_path, capsys):
    """An imported baseline (ARTalk's 106-D layout, files named by sample id) becomes table 4's baseline."""
    from a2llm.data import load_flame_qa

    ckpt = tiny_run[2]
    test = load_flame_qa(tiny_corpus, "test")
    folder = tmp_path / "artalk"
    folder.mkdir()
    for i in range(2):
        s = test[i]
        np.save(folder / f"{s.id}.npy", np.zeros((len(s.motion), 106), np.float32))
    assert main(["tables", "--checkpoint", str(ckpt), "--data", str(tiny_corpus), "--limit", "2",
                 "--gen-limit", "1", "--artalk", str(folder), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert list(r["table4"]) == ["artalk", "a2llm-nano"] and "artalk" in r["table3"]
    assert r["table3"]["artalk"]["ufd"] == [0.0, 0.0]                     # a still face: eq. 12 gives 0
    assert main(["tables", "--checkpoint", str(ckpt), "--data", str(tiny_corpus), "--limit", "3",
                 "--artalk", str(folder)]) == 1
    assert "have no file in" in capsys.readouterr().err
