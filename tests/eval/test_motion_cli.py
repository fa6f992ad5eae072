"""The ``python -m a2llm.eval motion`` CLI: JSON values, folder mode, the plot, errors and help."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from a2llm.eval import metrics as M
from a2llm.eval.__main__ import main
from a2llm.head.base import HeadModel
from a2llm.motion.io import save_motion
from tests.eval.test_metrics import bumps, make_head_data, make_motion, smooth_signal

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "a2llm.eval", "motion", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A synthetic head .npz and clips: ref, pred delayed 3 frames, and a folder pair with an orphan."""
    root = tmp_path_factory.mktemp("cli")
    head_path = root / "head.npz"
    make_head_data().save_npz(head_path)
    # well-separated mouth openings, so that every reference peak's nearest predicted peak is its own (eq. 17)
    x = bumps(103, [10, 26, 45, 61, 80, 97]) + 0.2 * smooth_signal(103, 20)
    brows = 0.2 * np.sin(np.arange(100) / 4)
    clips = {"ref": make_motion(x[3:103], width=x[3:103]), "pred": make_motion(x[0:100], width=x[0:100], brows=brows)}
    out = {"head": head_path}
    for name, motion in clips.items():
        out[name] = save_motion(root / f"{name}.npz", motion)
    pred_dir, ref_dir = root / "system_a", root / "gt"
    for i, seed in enumerate((21, 22)):
        a = smooth_signal(80, seed)
        save_motion(ref_dir / f"utt{i}.npz", make_motion(a, width=a))
        save_motion(pred_dir / f"utt{i}.npz", make_motion(0.5 * a, width=a, brows=0.1 * a))
    save_motion(pred_dir / "orphan.npz", make_motion(smooth_signal(80, 23)))
    out["pred_dir"], out["ref_dir"] = pred_dir, ref_dir
    return out


def same(got, want) -> bool:
    """JSON value vs computed value (NaN is written as null)."""
    return got is None if np.isnan(want) else got == pytest.approx(want, rel=1e-6, abs=1e-9)


def expected(pred: Path, ref: Path) -> dict[str, float]:
    head = HeadModel(make_head_data())
    load = lambda p: np.load(p, allow_pickle=False)["motion"]  # noqa: E731
    return M.compute_metrics(load(pred), load(ref), head)


def test_pair_json_values_and_plot(files, tmp_path):
    png = tmp_path / "opening.png"
    proc = run_cli("--pred", str(files["pred"]), "--ref", str(files["ref"]), "--head", str(files["head"]),
                   "--json", "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert list(result) == list(M.METRIC_KEYS)
    assert result["peak_align_ms"] == pytest.approx(120.0)            # pred is 3 frames late
    for key, value in expected(files["pred"], files["ref"]).items():
        assert same(result[key], value), key
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000


def test_dir_mode_json_pairs_by_name_and_skips_orphans(files, capsys):
    # in-process (the pair mode runs the CLI as a subprocess above)
    assert main(["motion", "--pred-dir", str(files["pred_dir"]), "--ref-dir", str(files["ref_dir"]),
                 "--head", str(files["head"]), "--json"]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert out["n"] == 2 and list(out["mean"]) == list(M.METRIC_KEYS) == list(out["std"])
    assert "orphan.npz" in cap.err and "skipped" in cap.err
    per_pair = [expected(files["pred_dir"] / f"utt{i}.npz", files["ref_dir"] / f"utt{i}.npz")
                for i in range(2)]
    for key, (mean, std) in M.aggregate(per_pair).items():
        assert same(out["mean"][key], mean) and same(out["std"][key], std), key
    assert out["mean"]["liveliness"] == pytest.approx(0.5, rel=1e-4)   # predictions at half amplitude


def test_tables_in_process(files, capsys):
    assert main(["motion", "--pred", str(files["ref"]), "--ref", str(files["ref"]), "--head", str(files["head"])]) == 0
    table = capsys.readouterr().out
    rows = {cells[1]: cells for cells in (re.split(r"\s{2,}", line) for line in table.splitlines()) if len(cells) == 5}
    assert rows["liveliness"] == ["Liveliness Ratio", "liveliness", "1.000", "ratio", "closer to 1"]
    assert rows["mod_mm"][2:] == ["0.000", "mm", "lower"]
    assert "Mouth Opening Distance" in table and "reference's own UFD" in table
    assert main(["motion", "--pred-dir", str(files["pred_dir"]), "--ref-dir", str(files["ref_dir"]),
                 "--head", str(files["head"]), "--name", "System A"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[2].startswith("System") and "MOD (mm)" in table
    assert "System A" in table and "±" in table


def test_vertex_files_are_accepted(files, tmp_path, capsys):
    head = HeadModel(make_head_data())
    ref_verts = tmp_path / "ref_vertices.npz"
    np.savez(ref_verts, vertices=head.vertices(np.load(files["ref"])["motion"], canonical=True), fps=25)
    assert main(["motion", "--pred", str(files["pred"]), "--ref", str(ref_verts), "--head", str(files["head"]),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key, value in expected(files["pred"], files["ref"]).items():
        assert same(result[key], value), key


def test_undefined_metrics_are_null_in_json(files, tmp_path, capsys):
    still = save_motion(tmp_path / "still.npz", make_motion(np.zeros(10)))
    assert main(["motion", "--pred", str(still), "--ref", str(still), "--head", str(files["head"]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["temporal_corr"] is None and result["mod_mm"] == 0.0


def test_errors(files, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["motion", "--pred-dir", str(empty), "--ref-dir", str(files["ref_dir"]),
                 "--head", str(files["head"])]) == 1
    assert "no .npz file name is present in both" in capsys.readouterr().err
    assert main(["motion", "--pred", str(tmp_path / "nope.npz"), "--ref", str(files["ref"]),
                 "--head", str(files["head"])]) == 1
    assert "not found" in capsys.readouterr().err
    for argv in (["--pred", str(files["pred"])],                                   # no --ref
                 ["--pred", str(files["pred"]), "--ref", str(files["ref"]), "--pred-dir", str(empty)],
                 ["--pred-dir", str(empty), "--ref-dir", str(empty), "--plot", "x.png"]):
        with pytest.raises(SystemExit) as exc:
            main(["motion", *argv, "--head", str(files["head"])])
        assert exc.value.code == 2


def test_help_explains_options_and_metrics(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["motion", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in (*M.METRIC_KEYS, "--pred-dir", "--ref-dir", "--head", "--json", "--plot", "canonical"):
        assert word in text, word


def test_pair_values_equal_the_formulas_worked_by_hand(files, tmp_path):
    """The CLI on a pair whose metrics follow from appendix C by hand (the tiny head: opening = 10 mm + 10 mm c0,
    upper face lifted 10 mm c2)."""
    T = 50
    c_ref, c_pred = bumps(T, [5, 15, 25]), bumps(T, [7, 14, 28, 40])
    brows = 0.1 * np.abs(np.sin(np.arange(T) / 3))
    ref = save_motion(tmp_path / "hand_ref.npz", make_motion(c_ref))
    pred = save_motion(tmp_path / "hand_pred.npz", make_motion(c_pred, brows=brows))
    proc = run_cli("--pred", str(pred), "--ref", str(ref), "--head", str(files["head"]), "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    o_ref, o_pred = 0.010 + 0.010 * c_ref, 0.010 + 0.010 * c_pred          # metres
    v_ref, v_pred = np.diff(o_ref), np.diff(o_pred)
    d = 0.010 * brows                                                      # distance to neutral, metres
    assert r["mod_mm"] == pytest.approx(1000 * np.abs(o_pred - o_ref).mean(), rel=1e-4)          # eq. 11
    assert r["ufd"] == pytest.approx(1e5 * np.abs(np.diff(d)).mean(), rel=1e-4)                  # eq. 12
    assert r["temporal_corr"] == pytest.approx(np.corrcoef(o_pred, o_ref)[0, 1], abs=1e-5)       # eq. 13
    assert r["velocity_corr"] == pytest.approx(np.corrcoef(v_pred, v_ref)[0, 1], abs=1e-5)       # eq. 14
    assert r["liveliness"] == pytest.approx(v_pred.std() / v_ref.std(), rel=1e-4)                # eq. 16
    assert r["peak_align_ms"] == pytest.approx(80.0)           # eq. 17: |5-7|, |15-14|, |25-28| -> median 2 frames
    assert r["upper_face_err_mm"] == pytest.approx(1000 * d.mean(), rel=1e-4)
    assert r["lip_width_corr"] is None                         # both widths constant: undefined
