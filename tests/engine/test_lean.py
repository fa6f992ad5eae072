"""The lean static-cache decoder gives what the transformers forward gives (prefill, turns, steps, LoRA)."""
import pytest
import torch

from a2llm.engine.lean import LeanDecoder
from a2llm.lalm.backbone import BackboneConfig, StepAudio2Backbone


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    bb = StepAudio2Backbone(BackboneConfig.nano(120)).eval()
    with torch.no_grad():                      # non-zero biases and norms, so every term is exercised
        for n, p in bb.named_parameters():
            if n.endswith("bias") or "norm" in n:
                p.add_(0.1 * torch.randn_like(p))
    return bb


def test_prefill_then_steps_equal_one_full_forward(backbone):
    ids = torch.randint(0, 120, (1, 30), generator=torch.Generator().manual_seed(1))
    full = backbone(ids)
    lean = LeanDecoder(backbone, max_len=64)
    logits, hidden = lean.forward(backbone.model.embed_tokens(ids[:, :12]))      # a prompt
    torch.testing.assert_close(logits, full.logits[:, :12], atol=1e-4, rtol=1e-4)
    logits, hidden = lean.forward(backbone.model.embed_tokens(ids[:, 12:20]))    # a new turn after it
    torch.testing.assert_close(hidden, full.hidden[:, 12:20], atol=1e-4, rtol=1e-4)
    for t in range(20, 30):                                                      # step by step
        lg, h = lean.step(int(ids[0, t]))
        torch.testing.assert_close(lg, full.logits[0, t], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(h, full.hidden[0, t], atol=1e-4, rtol=1e-4)
    assert lean.length == 30


def test_static_step_equals_the_eager_step(backbone):
    ids = torch.randint(0, 120, (1, 10), generator=torch.Generator().manual_seed(2))
    a, b = LeanDecoder(backbone, max_len=32), LeanDecoder(backbone, max_len=32)
    a.forward(backbone.model.embed_tokens(ids))
    b.forward(backbone.model.embed_tokens(ids))
    pos = torch.tensor([10])
    la, ha = a.step(7)
    lb, hb = b._step_static(torch.tensor([[7]]), pos)
    torch.testing.assert_close(lb[0, -1], la, atol=1e-5, rtol=1e-5)


def test_overflow_is_a_clear_error(backbone):
    lean = LeanDecoder(backbone, max_len=8)
    with pytest.raises(RuntimeError, match="cache holds 8"):
        lean.forward(torch.zeros(1, 9, backbone.config.hidden_size))
