"""A²-LLM: Step-Audio-2 backbone + LoRA + Motion Connector + motion tokenizer + head, in one module.

    model = A2LLM.from_pretrained("checkpoints/a2llm-nano")
    out = model(batch)                 # a2llm.data.collate.Batch -> A2LLMOutput(loss, seq_loss, motion_loss, ...)
    model.save_pretrained(folder)      # a2llm.json + one component folder per part

Training objective (seed §5.3): L = L_seq + λ · L_motion, where L_seq is next-token cross-entropy on the
answer (text and audio tokens, labels from the collator) and L_motion the connector's summed per-level
cross-entropy (Eq. 5) against the motion tokenizer's codes of the answer's motion. The connector reads the
LLM's last-layer hidden state at each answer audio token's own position (``Batch.audio_token_positions``),
i.e. the state right after the token is fed — the state the engine has in hand as soon as it is decoded.

LoRA (peft) is injected into the decoder's q/k/v/o/gate/up/down projections only; the audio encoder and
adaptor stay as loaded. ``python -m a2llm.model --preset full --count-params --json`` counts the full
preset's parameters on the meta device (no memory).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file, save_file
from torch import nn

from a2llm.checkpoint import MANIFEST, load_component, resolve_component, save_component
from a2llm.connector import ConnectorConfig, MotionConnector
from a2llm.data.collate import IGNORE, TEXT_LAYOUTS, Batch
from a2llm.lalm.backbone import BackboneConfig, StepAudio2Backbone
from a2llm.lalm.encoder import EncoderConfig
from a2llm.motion.rvq import RVQConfig
from a2llm.motion.tokenizer import MotionTokenizer

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    """peft LoRA on the decoder (seed: r 64, α 32, dropout 0.05 on q/k/v/o/gate/up/down)."""

    r: int = 64
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] = LORA_TARGETS

    def peft_config(self) -> LoraConfig:
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.targets), bias="none")


@dataclass(frozen=True)
class A2LLMConfig:
    """Which parts, at which sizes. ``motion_weight`` is λ of L = L_seq + λ L_motion; ``text_layout`` is where
    an answer's text tokens sit among its audio tokens (``CollatorConfig.text_layout``: "chunked", "word", or "ta4" — the released Step-Audio-2 layout, always used for its vocabulary),
    as the model was trained — generation and evaluation build their sequences the same way."""

    name: str
    backbone: BackboneConfig
    connector: ConnectorConfig
    lora: LoraSettings = field(default_factory=LoraSettings)
    rvq: RVQConfig = field(default_factory=RVQConfig)
    motion_weight: float = 1.0
    head: str = "open"
    text_layout: str = "chunked"

    def __post_init__(self):
        if self.text_layout not in TEXT_LAYOUTS:
            raise ValueError(f"text_layout={self.text_layout!r}, choose from {TEXT_LAYOUTS}")

    @classmethod
    def full(cls) -> "A2LLMConfig":
        """The seed's sizes: Step-Audio-2-mini, LoRA r 64, connector hidden 768 × 6 layers."""
        return cls(name="a2llm", backbone=BackboneConfig.full(), connector=ConnectorConfig.full(3584))

    @classmethod
    def nano(cls, vocab_size: int) -> "A2LLMConfig":
        """A²-LLM-nano: the same classes with small sizes (trained on FLAME-QA-nano on a CPU)."""
        bb = BackboneConfig.nano(vocab_size)
        return cls(name="a2llm-nano", backbone=bb, connector=ConnectorConfig.nano(bb.hidden_size),
                   lora=LoraSettings(r=16, alpha=32, dropout=0.05))


def sequence_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """L_seq: next-token cross-entropy of ``logits`` [B, L, V] against ``labels`` [B, L] (IGNORE = no loss), the
    mean over labelled tokens — weighted by ``weights`` [B, L] (aligned with ``labels``) when given."""
    ce = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE,
                         reduction="none")
    keep = (labels[:, 1:].flatten() != IGNORE).float()
    w = keep if weights is None else keep * weights[:, 1:].flatten().float()
    return (ce * w).sum() / w.sum().clamp(min=1e-8)


def text_label_weights(labels: torch.Tensor, is_audio, text_weight: float) -> torch.Tensor:
    """Per-label weights [B, L]: ``text_weight`` for every labelled token that is not an audio code (text, the
    turn's closing tokens), 1 for audio codes. Why: a spoken answer has ~5 audio codes per text token, and the codes
    follow from the text, so the plain mean spends most of the loss on saying the answer and little on choosing it
    (the second-generation nano answered the right template about the wrong topic)."""
    return torch.where(is_audio(labels), 1.0, float(text_weight))


@dataclass
class A2LLMOutput:
    """loss = seq_loss + λ motion_loss + μ ctc_loss (scalars); logits [B, L, V]; hidden [B, L, d];
    motion_logits [B, N, 6, K]; ctc_loss None when not computed."""

    loss: torch.Tensor
    seq_loss: torch.Tensor
    motion_loss: torch.Tensor
    logits: torch.Tensor
    hidden: torch.Tensor
    motion_logits: torch.Tensor | None = None
    ctc_loss: torch.Tensor | None = None


class A2LLM(nn.Module):
    """The end-to-end model. ``tokenizer`` (motion) is frozen and kept outside the trainable parameters."""

    def __init__(self, config: A2LLMConfig, motion_tokenizer: MotionTokenizer | None = None,
                 backbone: StepAudio2Backbone | None = None, with_lora: bool = True):
        super().__init__()
        self.config = config
        self.backbone = backbone if backbone is not None else StepAudio2Backbone(config.backbone)
        if with_lora:
            inject_adapter_in_model(config.lora.peft_config(), self.backbone.model)
        self.connector = MotionConnector(config.connector)
        self.motion_tokenizer = motion_tokenizer
        if motion_tokenizer is not None:
            for p in motion_tokenizer.model.parameters():
                p.requires_grad_(False)

    # --- LoRA ------------------------------------------------------------------------------------------
    def lora_layers(self) -> list[LoraLayer]:
        return [m for m in self.backbone.model.modules() if isinstance(m, LoraLayer)]

    def lora_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.backbone.model.named_parameters() if "lora_" in n]

    def reset_lora(self) -> None:
        """Discard the LoRA weights and re-initialise them (curriculum stage 2: A random, B zero)."""
        for layer in self.lora_layers():
            layer.reset_lora_parameters("default", True)

    def merge_lora(self) -> None:
        for layer in self.lora_layers():
            layer.merge()

    def unmerge_lora(self) -> None:
        for layer in self.lora_layers():
            layer.unmerge()

    def freeze_backbone(self) -> None:
        """Train only LoRA and the connector: the backbone's own weights stay as loaded."""
        for n, p in self.backbone.named_parameters():
            p.requires_grad_("lora_" in n)

    # --- training forward ---------------------------------------------------------------------------------
    def motion_codes(self, batch: Batch) -> torch.Tensor:
        """[B, M, 6] tokenizer codes of each row's answer motion (IGNORE past a row's end)."""
        if self.motion_tokenizer is None:
            raise ValueError("this A2LLM has no motion tokenizer: pass one (or load a checkpoint with an rvq part)")
        group = self.motion_tokenizer.group
        M = max(1, -(-int(batch.motion_lengths.max()) // group))
        codes = torch.full((len(batch.tasks), M, self.motion_tokenizer.num_codebooks), IGNORE, dtype=torch.long)
        for b, n in enumerate(batch.motion_lengths.tolist()):
            if n:
                c = self.motion_tokenizer.encode(batch.motion[b, :n].cpu().numpy())
                codes[b, :len(c)] = torch.from_numpy(c)
        return codes.to(batch.input_ids.device)

    def forward(self, batch: Batch, motion_weight: float | None = None, ctc_weight: float = 0.0,
                label_weights: torch.Tensor | None = None) -> A2LLMOutput:
        """Training pass on a collated FLAME-QA batch.

        ``motion_weight`` overrides λ for this call (a curriculum stage's own λ); at 0 the connector is not run.
        ``ctc_weight`` μ > 0 adds the auxiliary CTC loss (:meth:`ctc_loss`; needs a backbone with ``ctc_layer``).
        ``label_weights`` [B, L] (aligned with ``batch.labels``; None = all 1): L_seq becomes the weighted mean of
        the per-token cross-entropies, e.g. text tokens weighted above audio codes (:func:`text_label_weights`).
        """
        lam = self.config.motion_weight if motion_weight is None else float(motion_weight)
        layer = self.backbone.config.ctc_layer if ctc_weight > 0 else 0
        if ctc_weight > 0 and not layer:
            raise ValueError("ctc_weight > 0 needs a backbone with a CTC head (BackboneConfig.ctc_layer > 0)")
        out = self.backbone(batch.input_ids, batch.attention_mask, batch.input_audio, batch.input_audio_lengths,
                            batch.audio_patch_mask, capture_layer=layer)
        seq_loss = sequence_loss(out.logits, batch.labels, label_weights)
        ctc = self.ctc_loss(out.layer_hidden, batch) if layer else None
        base = seq_loss + ctc_weight * ctc if ctc is not None else seq_loss
        lengths = batch.motion_lengths
        if int(lengths.max()) == 0 or lam == 0:
            zero = out.hidden.sum() * 0
            return A2LLMOutput(base, seq_loss, zero, out.logits, out.hidden, ctc_loss=ctc)
        pos = batch.audio_token_positions.clamp(min=0)
        hidden = torch.gather(out.hidden, 1, pos[..., None].expand(-1, -1, out.hidden.shape[-1]))
        motion = self.connector(hidden, self.motion_codes(batch), lengths)
        return A2LLMOutput(base + lam * motion.loss, seq_loss, motion.loss, out.logits, out.hidden, motion.logits,
                           ctc)

    def ctc_loss(self, layer_hidden: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Auxiliary CTC loss: the backbone's CTC head reads decoder layer ``ctc_layer`` at each row's input-audio
        positions (12.5 Hz) and must spell the row's transcript (text tokens, blank = the last class).

        Why: trained only through the answer's next-token loss, nano's decoder recognised which template a
        question is (86 %) but not its words (the topic right in half of the spoken questions, read-aloud ASR
        ~0 %) — an attention decoder rarely learns to align speech and text from a few thousand utterances;
        CTC on the audio positions (hybrid CTC/attention ASR) makes the decoder form the words where it hears
        them, for later positions to attend to.

        Args:
            layer_hidden: [B, L, d] decoder layer output.
            batch: with ``audio_patch_mask`` [B, L], ``transcripts`` [B, S] and ``transcript_lengths`` [B].

        Returns:
            scalar: mean over rows with input audio and a transcript of (CTC loss / transcript length); zero
            (still connected to the head) when the batch has none.
        """
        head = self.backbone.ctc_head
        frames = batch.audio_patch_mask.sum(-1)
        rows = ((frames > 0) & (batch.transcript_lengths > 0)).nonzero().flatten()
        if len(rows) == 0:
            return sum(p.sum() for p in head.parameters()) * 0
        x = nn.utils.rnn.pad_sequence([layer_hidden[b][batch.audio_patch_mask[b]] for b in rows], batch_first=True)
        log_probs = head(x).float().log_softmax(-1).transpose(0, 1)           # [T, R, V + 1]
        targets = batch.transcripts[rows].clamp(min=0)
        return F.ctc_loss(log_probs, targets, frames[rows], batch.transcript_lengths[rows],
                          blank=log_probs.shape[-1] - 1, reduction="mean", zero_infinity=True)

    # --- checkpoints --------------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, backbone_path: str | None = None, text_tokenizer=None,
                        extra_parts: dict[str, str] | None = None) -> Path:
        """Write ``a2llm.json`` and the parts: backbone (unless ``backbone_path`` points at a released
        Step-Audio-2 folder), lora, connector, rvq, and ``text_tokenizer`` (a Hugging Face tokenizer) when
        given. ``extra_parts`` (e.g. ``{"detokenizer": "token2wav"}``) are recorded as they are."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        parts = {}
        if backbone_path is None:
            base = {k: v for k, v in self.backbone.state_dict().items() if "lora_" not in k}
            base = {k.replace(".base_layer.", "."): v for k, v in base.items()}
            save_component(folder / "backbone", "backbone", self.config.backbone, base)
            parts["backbone"] = "backbone"
        else:
            parts["backbone"] = backbone_path
        lora_dir = folder / "lora"
        lora_dir.mkdir(exist_ok=True)
        save_file({k: v.contiguous() for k, v in get_peft_model_state_dict(self.backbone.model).items()},
                  str(lora_dir / "adapter_model.safetensors"))
        (lora_dir / "config.json").write_text(json.dumps({"component": "lora",
                                                          **_jsonable(dataclasses.asdict(self.config.lora))}, indent=2))
        parts["lora"] = "lora"
        self.connector.save_pretrained(folder / "connector")
        parts["connector"] = "connector"
        if self.motion_tokenizer is not None:
            self.motion_tokenizer.save_pretrained(folder / "rvq")
            parts["rvq"] = "rvq"
        if text_tokenizer is not None:
            text_tokenizer.save_pretrained(str(folder / "tokenizer"))
            parts["tokenizer"] = "tokenizer"
        parts.update(extra_parts or {})
        manifest = {"name": self.config.name, "head": self.config.head, "motion_weight": self.config.motion_weight,
                    "text_layout": self.config.text_layout, "parts": parts}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "A2LLM":
        folder = Path(folder)
        manifest_path = folder / MANIFEST
        if not manifest_path.exists():
            raise FileNotFoundError(f"{folder} has no {MANIFEST}: not an A²-LLM checkpoint folder")
        manifest = json.loads(manifest_path.read_text())
        parts = manifest.get("parts", {})
        missing = [p for p in ("backbone", "connector") if p not in parts]
        if missing:
            raise FileNotFoundError(f"{manifest_path} lacks parts {missing}")
        backbone = _load_backbone(folder, parts["backbone"])
        conn = MotionConnector.from_pretrained(folder)
        tok = MotionTokenizer.from_pretrained(folder) if "rvq" in parts else None
        lora = LoraSettings()
        if "lora" in parts:
            raw = json.loads((folder / parts["lora"] / "config.json").read_text())
            raw.pop("component", None)
            lora = LoraSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
        cfg = A2LLMConfig(name=manifest.get("name", folder.name), backbone=backbone.config, connector=conn.cfg,
                          lora=lora, rvq=tok.config if tok else RVQConfig(),
                          motion_weight=float(manifest.get("motion_weight", 1.0)), head=manifest.get("head", "open"),
                          text_layout=manifest.get("text_layout", "chunked"))
        model = cls(cfg, motion_tokenizer=tok, backbone=backbone, with_lora="lora" in parts)
        model.connector = conn
        if "lora" in parts:
            state = load_file(str(folder / parts["lora"] / "adapter_model.safetensors"))
            result = set_peft_model_state_dict(model.backbone.model, state)
            if getattr(result, "unexpected_keys", None):
                raise ValueError(f"LoRA weights do not fit the backbone: unexpected {result.unexpected_keys[:5]}")
        return model.eval()


def read_manifest(folder: str | Path) -> dict:
    """The ``a2llm.json`` of a checkpoint folder (clear error when there is none)."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{folder} has no {MANIFEST}: not an A²-LLM checkpoint folder")
    return json.loads(path.read_text())


def load_checkpoint_tokenizer(folder: str | Path):
    """The text tokenizer a checkpoint was trained with (its ``tokenizer`` part)."""
    from a2llm.lalm.text_tokenizer import load_text_tokenizer

    parts = read_manifest(folder).get("parts", {})
    if "tokenizer" not in parts:
        raise FileNotFoundError(f"{Path(folder) / MANIFEST} names no tokenizer part (train with "
                                "python -m a2llm.train curriculum, which saves it)")
    return load_text_tokenizer(Path(folder) / parts["tokenizer"])


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _backbone_config(raw: dict) -> BackboneConfig:
    raw = dict(raw)
    raw["encoder"] = EncoderConfig(**raw["encoder"])
    return BackboneConfig(**raw)


def _load_backbone(folder: Path, part: str) -> StepAudio2Backbone:
    path = (folder / part).resolve()
    if (path / "model.safetensors.index.json").exists() or (path / "config.json").exists() and \
            json.loads((path / "config.json").read_text()).get("model_type") == "step_audio_2":
        from a2llm.lalm.loader import load_step_audio2

        model, _ = load_step_audio2(path)
        return model
    comp = resolve_component(path, "backbone")
    raw = json.loads((comp / "config.json").read_text())
    if raw.pop("component", None) != "backbone":
        raise ValueError(f"{comp} is not a backbone component")
    model = StepAudio2Backbone(_backbone_config(raw))
    model.load_state_dict(load_file(str(comp / "model.safetensors")))
    return model


# --- python -m a2llm.model -----------------------------------------------------------------------------
def count_parameters(cfg: A2LLMConfig) -> dict[str, int]:
    """Parameter counts on the meta device: backbone (without LoRA), lora, connector."""
    with torch.device("meta"):
        model = A2LLM(cfg)
    lora = sum(p.numel() for p in model.lora_parameters())
    backbone = sum(p.numel() for p in model.backbone.parameters()) - lora
    return {"backbone": backbone, "lora": lora, "connector": sum(p.numel() for p in model.connector.parameters())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m a2llm.model", description="Inspect the A²-LLM model presets.")
    ap.add_argument("--preset", choices=("full", "nano"), default="full", help="model sizes (default full)")
    ap.add_argument("--vocab-size", type=int, default=1200, help="nano vocabulary size (text + specials + audio)")
    ap.add_argument("--count-params", action="store_true", help="count parameters on the meta device")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    cfg = A2LLMConfig.full() if args.preset == "full" else A2LLMConfig.nano(args.vocab_size)
    if not args.count_params:
        ap.error("nothing to do: pass --count-params")
    counts = count_parameters(cfg)
    if args.json:
        print(json.dumps(counts))
    else:
        for k, v in counts.items():
            print(f"{k:<10} {v:>15,}  ({v / 1e9:.3f} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
