"""Motion tokenizer: shapes, streaming = full decode, checkpoints, loss, and a tiny resumable training run."""
import json
from pathlib import Path

from dataclasses import replace

import numpy as np
import pytest
import torch

from a2llm.checkpoint import update_manifest
from a2llm.head import load_head
from a2llm.motion import MotionTokenizer
from a2llm.motion.losses import MotionLoss
from a2llm.motion.rvq import MotionRVQVAE, RVQConfig

ROOT = Path(__file__).resolve().parents[2]
TINY = RVQConfig(width=16, latent_dim=16, num_quantizers=3, codebook_size=8)


def speechy(T: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 25
    m = np.zeros((T, 58), np.float32)
    m[:, 50] = 0.1 * (1 + np.sin(2 * np.pi * rng.uniform(2, 5) * t))
    m[:, :16] = rng.normal(size=16) * np.sin(2 * np.pi * 0.5 * t)[:, None]
    return m


@pytest.fixture(scope="module", params=["transpose", "repeat", "lerp"])
def tok(request):
    """The tiny tokenizer with each decoder upsampling (both must stream exactly and stay causal)."""
    torch.manual_seed(0)
    model = MotionRVQVAE(replace(TINY, upsample=request.param))
    model.train()
    model(torch.from_numpy(np.stack([speechy(40, s) for s in range(8)])))   # k-means init of the codebooks
    return MotionTokenizer(model.eval())


def test_interface_shapes_and_dtypes(tok):
    assert (tok.frame_rate, tok.num_codebooks, tok.cardinality) == (5.0, 3, 8)
    codes = tok.encode(speechy(63))
    assert codes.shape == (13, 3) and codes.dtype == np.int64 and codes.min() >= 0 and codes.max() < 8
    motion = tok.decode(codes)
    assert motion.shape == (65, 58) and motion.dtype == np.float32


@pytest.mark.parametrize("segment", [1, 2, 3, 7])
def test_streaming_decode_equals_full_decode(tok, segment):
    codes = tok.encode(speechy(120, seed=3))
    full = tok.decode(codes)
    stream = tok.streaming()
    parts = [stream.step(codes[i:i + segment]).numpy() for i in range(0, len(codes), segment)]
    np.testing.assert_allclose(np.concatenate(parts), full, atol=1e-5)
    stream.reset()
    np.testing.assert_allclose(stream.step(codes[:2]).numpy(), full[:10], atol=1e-5)   # no lookahead


def test_expected_decoding_of_confident_logits_is_the_codes_decoding(tok):
    """Logits that put (nearly) all mass on one code per level decode exactly as those codes; logits split between
    two codes land between their decodings (the latent is the codebooks' expectation, levels summed)."""
    codes = tok.encode(speechy(60, seed=5))
    logits = torch.full((*codes.shape, tok.cardinality), -1e4)
    logits.scatter_(-1, torch.from_numpy(codes)[..., None], 0.0)
    np.testing.assert_allclose(tok.decode_expected(logits), tok.decode(codes), atol=1e-5)
    other = codes.copy()
    other[:, 0] = (other[:, 0] + 1) % tok.cardinality
    half = logits.clone()
    half.scatter_(-1, torch.from_numpy(other)[..., None], 0.0)                 # level 0: two codes at 50 %
    z = tok.model.expected_latent(half)
    za = tok.model.quantizer.get_output_from_indices(torch.from_numpy(codes)[None])[0]
    zb = tok.model.quantizer.get_output_from_indices(torch.from_numpy(other)[None])[0]
    torch.testing.assert_close(z, (za + zb) / 2, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="logits must be"):
        tok.decode_expected(logits[:, :2])


def test_streaming_expected_latents_equal_the_whole_decode(tok):
    codes = tok.encode(speechy(80, seed=6))
    logits = torch.randn(*codes.shape, tok.cardinality, generator=torch.Generator().manual_seed(0))
    whole = tok.decode_expected(logits)
    stream = tok.streaming()
    z = tok.model.expected_latent(logits)
    parts = [stream.step_latent(z[i:i + 3]).numpy() for i in range(0, len(z), 3)]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_decoder_is_causal(tok):
    codes = tok.encode(speechy(60))
    changed = codes.copy()
    changed[8:] = (changed[8:] + 1) % 8
    a, b = tok.decode(codes), tok.decode(changed)
    np.testing.assert_allclose(a[:40], b[:40], atol=1e-6)
    assert np.abs(a[40:] - b[40:]).max() > 0


def test_save_and_load_directly_and_through_a2llm_json(tok, tmp_path):
    tok.save_pretrained(tmp_path / "ckpt" / "rvq")
    codes = tok.encode(speechy(50))
    again = MotionTokenizer.from_pretrained(tmp_path / "ckpt" / "rvq")
    np.testing.assert_array_equal(again.encode(speechy(50)), codes)
    update_manifest(tmp_path / "ckpt", "rvq", "rvq", head="open")
    via = MotionTokenizer.from_pretrained(tmp_path / "ckpt")
    np.testing.assert_allclose(via.decode(codes), tok.decode(codes), atol=1e-6)
    assert json.loads((tmp_path / "ckpt" / "rvq" / "config.json").read_text())["component"] == "rvq"
    with pytest.raises(FileNotFoundError):
        MotionTokenizer.from_pretrained(tmp_path)


def test_bad_codes_are_refused(tok):
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        tok.decode(np.zeros((4, 6), np.int64))
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        tok.decode(np.full((4, 3), 8))


def test_loss_terms():
    head = load_head("open")
    loss = MotionLoss(head)
    x = torch.from_numpy(np.stack([speechy(20, s) for s in range(2)]))
    same = loss(x, x)
    assert all(float(v) == 0 for v in same.values())
    y = x.clone()
    y[:, :, 50] += 0.05                                       # jaw error: lips and face vertices move
    terms = loss(y, x)
    # a constant jaw offset: no parameter velocity; the mesh's velocity changes only by the rotation's curvature
    assert terms["lips"] > terms["face"] > 0 and terms["param_vel"] < 1e-9 and 0 < terms["vel"] < 1e-2 * terms["face"]
    assert torch.isclose(terms["total"], terms["param"] + 1e5 * (terms["lips"] + terms["face"]) + 1e2 * (terms["vel"] + terms["acc"])
                         + 10 * (terms["param_vel"] + terms["param_acc"]))


def _write_clips(folder, n: int, val: int) -> None:
    """A FLAME-QA folder of ``n`` speechy clips, the first ``val`` of them the validation split."""
    from a2llm.data import FlameQASample, FlameQAWriter

    with FlameQAWriter(folder) as w:
        for i in range(n):
            m = speechy(45 + i, seed=i)
            w.add(FlameQASample(id=f"c{i}", question_text="q", question_audio=np.zeros(1600, np.float32),
                                response_text="a", response_audio=np.zeros(len(m) * 640, np.float32), sample_rate=16000,
                                motion=m, emotion="neutral", split="val" if i < val else "train"))


def test_training_cli_runs_and_resumes(tmp_path, capsys):
    _write_clips(tmp_path / "data", 24, val=4)
    from a2llm.train.__main__ import main

    # In-process (a subprocess per run cost ~8 s of imports each); one thread: the tiny model is faster on it.
    cmd = ["tokenizer", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "tok"), "--batch", "8", "--quiet"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def run(*extra):
        code = main(cmd + list(extra))
        out = capsys.readouterr()
        return code, out.out, out.err

    try:
        code, out, err = run("--epochs", "1")
        assert code == 0, err
        code, out, err = run("--epochs", "2", "--lr", "3e-4")
        assert code == 1 and "other training settings" in err      # refuses to mix settings
        code, out, err = run("--epochs", "2")
        assert code == 0 and "resuming from epoch 1" in out
        log = (tmp_path / "tok" / "train_log.csv").read_text().splitlines()
        assert len(log) == 3 and log[0].startswith("epoch,step") and log[2].startswith("2,")
        for f in ("config.json", "model.safetensors", "curves.png", "val_metrics.json"):
            assert (tmp_path / "tok" / f).exists()
        assert MotionTokenizer.from_pretrained(tmp_path / "tok").encode(speechy(30)).shape == (6, 6)
        # run again after the last epoch (a pipeline re-run): nothing is trained, the scores are kept
        code, out, err = run("--epochs", "2")
        assert code == 0 and "val MOD" in out, err
        # a state written before the loss weights were recorded trained with parameter-space smoothing only:
        # going on under today's loss is refused, scoring the finished run is not
        state_path = tmp_path / "tok" / "train_state.pt"
        state = torch.load(state_path, weights_only=True)
        del state["train_config"]["loss"], state["model_config"]
        torch.save(state, state_path)
        code, out, err = run("--epochs", "3")
        assert code == 1 and "other training settings" in err and "'param_dynamics': 100.0" in err
        code, out, err = run("--epochs", "2")
        assert code == 0 and "scored as it is" in out, err
        saved = json.loads((tmp_path / "tok" / "train_config.json").read_text())
        assert saved["train"]["loss"] == {"param": 1.0, "vertex": 1e5, "dynamics": 0.0, "param_dynamics": 100.0,
                                          "upper_dynamics": 0.0}
        # --config: a tiny model and another loss reach the run; the command line still overrides the epochs
        cfg = {"train": {"epochs": 5, "batch": 8, "loss": {"param_dynamics": 10.0}},
               "model": {"width": 16, "latent_dim": 16, "num_quantizers": 2, "codebook_size": 8}}
        (tmp_path / "tiny.json").write_text(json.dumps(cfg))
        code = main(["tokenizer", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "tiny"), "--quiet",
                     "--config", str(tmp_path / "tiny.json"), "--epochs", "1"])
        assert code == 0, capsys.readouterr().err
        saved = json.loads((tmp_path / "tiny" / "train_config.json").read_text())
        assert saved["train"]["epochs"] == 1 and saved["train"]["loss"]["param_dynamics"] == 10.0
        assert MotionTokenizer.from_pretrained(tmp_path / "tiny").config.width == 16
        assert "train_param_vel" in (tmp_path / "tiny" / "train_log.csv").read_text().splitlines()[0]
    finally:
        torch.set_num_threads(threads)
    metrics = json.loads((tmp_path / "tok" / "val_metrics.json").read_text())
    assert "mod_mm" in metrics and metrics["upper_face_jitter"] > 0


def test_decoder_only_fine_tuning_keeps_every_clips_codes(tmp_path):
    """decoder_only (init = a trained tokenizer): encoder, codebooks and normalisation frozen, so every clip's codes
    stay what they were (models trained on them stay valid) while the decoder learns the extra upper-face term."""
    from a2llm.motion.losses import LossWeights
    from a2llm.train.tokenizer import TrainConfig, train_tokenizer

    _write_clips(tmp_path / "data", 12, val=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = TrainConfig(epochs=1, batch=8)
        train_tokenizer(tmp_path / "data", tmp_path / "base", base, TINY, progress=False)
        with pytest.raises(ValueError, match="give init"):
            train_tokenizer(tmp_path / "data", tmp_path / "x", replace(base, decoder_only=True), TINY, progress=False)
        ft = replace(base, epochs=2, lr=1e-3, init=str(tmp_path / "base"), decoder_only=True,
                     loss=LossWeights(upper_dynamics=1e6))
        train_tokenizer(tmp_path / "data", tmp_path / "ft", ft, TINY, progress=False)
    finally:
        torch.set_num_threads(threads)
    before, after = MotionTokenizer.from_pretrained(tmp_path / "base"), MotionTokenizer.from_pretrained(tmp_path / "ft")
    clips = [speechy(60, seed=s) for s in (40, 41, 42)]
    for m in clips:
        np.testing.assert_array_equal(before.encode(m), after.encode(m))
    b, a = before.model.state_dict(), after.model.state_dict()
    assert all(torch.equal(b[k], a[k]) for k in b if not k.startswith("decoder."))
    assert any(not torch.equal(b[k], a[k]) for k in b if k.startswith("decoder."))
    header = (tmp_path / "ft" / "train_log.csv").read_text().splitlines()[0]
    assert "train_upper_acc" in header and "train_commit" in header


def test_full_config_is_the_papers():
    """configs/full/tokenizer.json: appendix B's settings and Eq. 7's weights."""
    from a2llm.motion.losses import LossWeights
    from a2llm.train.tokenizer import TrainConfig, load_tokenizer_config

    cfg = load_tokenizer_config(ROOT / "configs" / "full" / "tokenizer.json")
    assert isinstance(cfg.train, TrainConfig) and isinstance(cfg.model, RVQConfig)
    t, m = cfg.train, cfg.model
    assert (t.epochs, t.batch, t.lr) == (6, 512, 1e-4)
    assert t.loss == LossWeights(param=1.0, vertex=1e5, dynamics=1e2)    # Eq. 7, plus the measured default extra
    assert (m.dropout, m.commitment, m.lambda_vq) == (0.05, 0.25, 1.0)
    assert (m.width, m.num_res_blocks, m.latent_dim) == (128, 3, 256)
    assert (m.num_quantizers, m.codebook_size, m.group) == (6, 256, 5)
    assert m.dilations == (1, 3, 9)


def test_config_with_unknown_keys_is_refused(tmp_path):
    from a2llm.train.tokenizer import load_tokenizer_config

    for bad, word in [({"train": {"epoch": 6}}, "epoch"), ({"model": {"widht": 8}}, "widht"),
                      ({"train": {"loss": {"smooth": 1.0}}}, "smooth"), ({"trian": {}}, "trian")]:
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=word):
            load_tokenizer_config(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="configs/full/tokenizer.json"):
        load_tokenizer_config(tmp_path / "missing.json")


def test_committed_nano_tokenizer_reconstructs_unseen_motion():
    """The committed checkpoint (checkpoints/a2llm-nano) on freshly generated samples it never saw."""
    from a2llm.data.nano.generate import NanoConfig, make_sample
    from a2llm.eval.metrics import mouth_opening, pearson

    tok = MotionTokenizer.from_pretrained(ROOT / "checkpoints" / "a2llm-nano")
    assert (tok.frame_rate, tok.num_codebooks, tok.cardinality) == (5.0, 6, 256)
    head = load_head(tok.config.head)
    for i in range(3):
        m = make_sample(i, NanoConfig(seed=99)).motion
        rec = tok.decode(tok.encode(m))[: len(m)]
        o, r = (mouth_opening(head.vertices(x, canonical=True), head) for x in (m, rec))
        assert 1000 * np.abs(o - r).mean() < 1.0 and pearson(o, r) > 0.9


def test_unknown_upsampling_is_a_clear_error():
    with pytest.raises(ValueError, match="upsample"):
        MotionRVQVAE(replace(TINY, upsample="cubic"))
