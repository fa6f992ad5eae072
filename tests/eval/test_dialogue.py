"""python -m a2llm.eval dialogue on a tiny trained checkpoint: every figure present and in range, the CLI text."""
import json

from a2llm.eval.__main__ import main


def test_dialogue_eval_reports_every_figure(tiny_run, capsys):
    ckpt = tiny_run[2]
    assert main(["dialogue", "--checkpoint", str(ckpt), "--dialogues", "1", "--turns", "3", "--per-set", "2",
                 "--max-new-tokens", "40", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["typed"]) == {"seen_wordings", "held_out_wordings", "held_out_topics"}
    assert set(r["spoken_by_voice"]) == {"espeak:en-gb-x-gbclan+f2", "espeak:en-us+m7", "espeak:en-gb-x-gbcwmd+f4",
                                         "flite:rms", "festival:ked_diphone"}
    assert len(r["by_turn"]["typed"]) == len(r["by_turn"]["spoken"]) == 3
    rates = [*r["typed"].values(), *r["spoken_by_voice"].values(), *r["by_turn"]["typed"], r["fallback_rate"],
             r["false_fallback_rate"], r["false_fallback_rate_all"], r["garbled_rate"]]
    assert all(0.0 <= x <= 1.0 for x in rates)
    assert r["num_in_domain"] <= r["num_in_domain_all"] < r["num_replies"]
    # 3 typed sets x 2 + 5 voices x 1 + off-domain 2 + in-domain templates + 1 dialogue x 3 turns x 2 modes
    assert r["num_replies"] >= 6 + 5 + 2 + 6


def test_dialogue_text_output_and_missing_checkpoint(tiny_run, tmp_path, capsys):
    assert main(["dialogue", "--checkpoint", str(tmp_path)]) == 1
    assert "not an A²-LLM checkpoint" in capsys.readouterr().err
