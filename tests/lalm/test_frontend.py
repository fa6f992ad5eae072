"""The log-mel front end: Whisper's features (checked against transformers), batching, 25 s chunks."""
import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor

from a2llm.lalm.frontend import FrontendConfig, LogMelFrontend, chunk_spans, num_mel_frames


@pytest.fixture(scope="module")
def frontend():
    return LogMelFrontend()


def _noise(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Noise with a loud burst, so the max - 8 floor is active in the quiet part.
    x = 1e-4 * rng.standard_normal(n)
    x[n // 3:n // 2] += 0.5 * rng.standard_normal(n // 2 - n // 3)
    return x.astype(np.float32)


@pytest.mark.parametrize("n", [16000, 20800, 7777])
def test_equals_whisper_feature_extractor_on_padded_clip(frontend, n):
    x = _noise(n, seed=n)
    # Step-Audio-2 appends 479 zeros, then computes Whisper's log-mel.
    ref = WhisperFeatureExtractor(feature_size=128)(np.pad(x, (0, 479)), sampling_rate=16000,
                                                    padding="do_not_pad", return_tensors="np")["input_features"][0]
    mel, lengths = frontend(torch.from_numpy(x)[None])
    assert mel.shape == (1, 128, ref.shape[1]) and lengths.tolist() == [num_mel_frames(n)] == [ref.shape[1]]
    np.testing.assert_allclose(mel[0].numpy(), ref, atol=1e-5)
    assert mel.min() >= mel.max() - 2.0 - 1e-6            # log10 floored at max - 8, then divided by 4
    assert np.isclose(float(mel.min()), float(mel.max()) - 2.0, atol=1e-5)


def test_batch_rows_equal_lone_clips(frontend):
    clips = [_noise(n, seed=i) for i, n in enumerate((16000, 4321, 11000))]
    N = max(map(len, clips))
    batch = torch.zeros(3, N)
    for i, c in enumerate(clips):
        batch[i, :len(c)] = torch.from_numpy(c)
    batch[1, len(clips[1]):] = 7.0                          # junk past a length must not leak in
    mel, lengths = frontend(batch, torch.tensor([len(c) for c in clips]))
    assert mel.shape[-1] == num_mel_frames(N)
    for i, c in enumerate(clips):
        alone, n = frontend(torch.from_numpy(c)[None])
        assert int(lengths[i]) == int(n[0]) == num_mel_frames(len(c))
        torch.testing.assert_close(mel[i, :, :int(n[0])], alone[0], atol=1e-5, rtol=0)
        assert (mel[i, :, int(n[0]):] == 0).all()


def test_chunk_spans_and_long_audio_refused(frontend):
    cfg = FrontendConfig()
    assert chunk_spans(60 * 16000, cfg) == [(0, 400000), (400000, 400000), (800000, 160000)]
    assert chunk_spans(400000, cfg) == [(0, 400000)] and chunk_spans(0, cfg) == []
    assert num_mel_frames(400000) == 2502
    with pytest.raises(ValueError, match="25 s"):
        frontend(torch.zeros(1, 400001))


def test_bad_inputs(frontend):
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        frontend(torch.zeros(16000))
    with pytest.raises(ValueError, match="lengths"):
        frontend(torch.zeros(2, 100), torch.tensor([50, 101]))
    assert not list(frontend.state_dict())                  # filters and window are not checkpoint tensors


def test_model_dtype_casts_leave_the_features_exact(frontend):
    x = torch.from_numpy(_noise(8000, seed=1))[None]
    cast = LogMelFrontend().to(torch.bfloat16)
    assert torch.equal(cast(x)[0], frontend(x)[0]) and cast(x)[0].dtype == torch.float32
