"""The training curriculum (seed §5.3), run stage by stage from one config file, on one or many processes.

    python -m a2llm.train curriculum --config configs/nano/curriculum.json
    torchrun --nproc_per_node 2 -m a2llm.train curriculum --config ...        (CPU: gloo; GPU: NCCL)

Stages (each its own config file, see configs/nano/):

* ``pretrain`` (nano only — there is no released nano LLM): every backbone weight trained on L_seq over
  all subtasks; the connector waits (λ = 0).
* stage 1 ``connector``: the backbone frozen; LoRA and the connector trained with differential learning rates
  (seed: LoRA 1e-4, connector 1e-5) on L_seq + λ L_motion.
* stage 2 ``joint``: LoRA reset (its stage-1 weights discarded, re-initialised: A random, B zero), the
  connector kept; joint fine-tuning.
* stage 3 ``affective``: the same on the high-dynamic subset only.

A stage starts from the saved result of its ``init`` stage (default: the stage before it) and writes
``OUT/<stage>/``: ``log.csv`` (every ``log_every`` steps, with validation losses), ``curves.png``,
``train_state.pt`` (trainable weights + optimizer + step, every ``save_every`` steps: re-running the same
command resumes there) and, when finished, the checkpoint (``a2llm.json`` and its parts, text tokenizer
included) and ``done.json``. Finished stages are skipped.

Batches are drawn with replacement by a generator seeded with (seed, rank, step), so a resumed run draws
what the uninterrupted one would have, and every process sees different samples. Distributed training is
accelerate's DDP: gradients are averaged each step, so all processes hold the same weights.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from a2llm.data.collate import IGNORE, TASKS, CollatorConfig, FlameQACollator
from a2llm.lalm.tokens import TokenLayout
from a2llm.model import text_label_weights
from a2llm.train.data import MemoryDataset, build_text_tokenizer
from a2llm.train.log import append_csv

TRAINABLE = ("all", "lora+connector", "connector")
DEFAULT_TASKS = (("aqaa", 0.4), ("tqa", 0.15), ("repeat", 0.15), ("tts", 0.15), ("asr", 0.15))
READ_TASKS = (("tts", 0.6), ("asr", 0.2), ("repeat", 0.2))      # read-aloud samples have no answer to give


@dataclass(frozen=True)
class StageConfig:
    """One curriculum stage.

    Attributes:
        name: folder name under the curriculum's ``out``.
        init: the stage whose result this one starts from ("" = the stage before; "scratch" = a new model).
        train: "all" (backbone weights; with the connector when λ > 0), "lora+connector" or "connector".
        reset_lora: re-initialise LoRA before training (stage 2).
        steps, batch: optimizer steps and samples per step per process.
        lr_backbone, lr_lora, lr_connector: AdamW learning rates of the three parameter groups.
        lr_encoder: with train "all", the audio encoder's own learning rate (None: ``lr_backbone``; 0: frozen,
            e.g. a phone pre-trained encoder, ``CurriculumConfig.encoder``). The adaptor trains with the backbone.
        motion_weight: λ in L = L_seq + λ L_motion.
        text_weight: weight of the answer's text tokens against its audio codes in L_seq (weighted mean;
            ``a2llm.model.text_label_weights``); 1 = the plain mean.
        ctc_weight: μ of the auxiliary CTC loss on the input audio (``A2LLM.ctc_loss``; the curriculum's
            ``ctc_layer`` gives the model its head); 0 = none. The head trains only in stages with train "all".
        subset: "all" or "high_dynamic" (stage 3).
        high_dynamic_share: with subset "all", the share of every batch drawn from the high-dynamic subset (the
            rest from all samples): affective tuning that keeps seeing ordinary answers. None: plain ``subset``.
        tasks: (subtask, sampling weight) pairs.
        read_share: the share of every batch drawn from the curriculum's read-aloud corpus (``read_data``:
            random sentences, nothing to memorise), each with a task of ``read_tasks``; 0 = none.
        warmup: linear warm-up steps, then cosine decay to ``min_lr_ratio``.
    """

    name: str
    init: str = ""
    train: str = "lora+connector"
    reset_lora: bool = False
    steps: int = 1000
    batch: int = 16
    lr_backbone: float = 1e-4
    lr_lora: float = 1e-4
    lr_connector: float = 1e-5
    lr_encoder: float | None = None
    motion_weight: float = 1.0
    ctc_weight: float = 0.0
    text_weight: float = 1.0
    subset: str = "all"
    high_dynamic_share: float | None = None
    tasks: tuple[tuple[str, float], ...] = DEFAULT_TASKS
    read_share: float = 0.0
    read_tasks: tuple[tuple[str, float], ...] = READ_TASKS
    warmup: int = 50
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    log_every: int = 25
    save_every: int = 200
    val_samples: int = 48

    def __post_init__(self):
        if self.train not in TRAINABLE:
            raise ValueError(f"stage {self.name}: train={self.train!r}, choose from {TRAINABLE}")
        if self.subset not in ("all", "high_dynamic"):
            raise ValueError(f"stage {self.name}: subset={self.subset!r}, choose 'all' or 'high_dynamic'")
        if self.high_dynamic_share is not None and (self.subset != "all" or not 0 <= self.high_dynamic_share <= 1):
            raise ValueError(f"stage {self.name}: high_dynamic_share must be within [0, 1] and needs subset 'all'")
        if not 0 <= self.read_share < 1:
            raise ValueError(f"stage {self.name}: read_share must be within [0, 1)")
        bad = [t for t, _ in self.tasks + self.read_tasks if t not in TASKS]
        if bad:
            raise ValueError(f"stage {self.name}: unknown tasks {bad}; choose from {TASKS}")
        if self.read_share and any(t in ("aqaa", "tqa") for t, _ in self.read_tasks):
            raise ValueError(f"stage {self.name}: read-aloud samples have no answer; read_tasks may hold "
                             f"tts, asr and repeat")
        if self.ctc_weight < 0:
            raise ValueError(f"stage {self.name}: ctc_weight must be >= 0")
        if self.text_weight <= 0:
            raise ValueError(f"stage {self.name}: text_weight must be > 0")
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"stage {self.name}: steps and batch must be >= 1")
        if self.lr_encoder is not None and (self.lr_encoder < 0 or self.train != "all"):
            raise ValueError(f"stage {self.name}: lr_encoder must be >= 0 and needs train 'all' (other stages "
                             f"leave the encoder frozen anyway)")


def _task_probs(tasks) -> tuple[list[str], np.ndarray]:
    probs = np.array([w for _, w in tasks], float)
    return [t for t, _ in tasks], probs / probs.sum()


def draw_batch(rng: np.random.Generator, train, high, stage: StageConfig) -> list:
    """One step's samples: ``stage.batch`` from ``train``, or with ``high_dynamic_share`` that share (rounded)
    from ``high`` and the rest from ``train``."""
    idx = rng.integers(0, len(train), stage.batch)
    if high is None:
        return [train[int(i)] for i in idx]
    n_high = int(round(stage.batch * stage.high_dynamic_share))
    picks = rng.integers(0, len(high), n_high)
    return [high[int(i)] for i in picks] + [train[int(i)] for i in idx[:stage.batch - n_high]]


@dataclass(frozen=True)
class CurriculumConfig:
    """The whole run.

    Attributes:
        data: FLAME-QA folder. out: output folder (one subfolder per stage).
        rvq: the motion tokenizer (an A²-LLM checkpoint folder with an rvq part, or the rvq folder itself).
        preset: model sizes ("nano"; the full size trains from a released backbone, ``backbone``).
        backbone: Step-Audio-2 folder for a full-size run ("" for nano, built from scratch).
        tokenizer: text tokenizer folder ("" = train the nano BPE on the corpus into OUT/tokenizer).
        tokenizer_vocab: BPE size of that tokenizer.
        read_data: the read-aloud corpus (``python -m a2llm.data.nano --read``) stages with ``read_share`` draw
            from; its sentences also train the BPE ("" = none).
        encoder: a phone pre-trained audio encoder (``python -m a2llm.train encoder``) a model built from scratch
            starts its encoder from ("" = random).
        text_layout: where answers' text tokens sit among their audio tokens (``CollatorConfig.text_layout``:
            "chunked" or "word"); saved with the model, so later stages and generation use the same.
        lexicon_phones: > 0 gives a nano model built from scratch pronunciation-aware text embeddings (each
            token's espeak-ng phones, up to this many; ``a2llm/lalm/lexicon.py``); 0 = plain embeddings.
        ctc_layer: > 0 gives a nano model built from scratch a CTC head on this decoder layer, for stages with
            ``ctc_weight`` (``BackboneConfig.ctc_layer``); 0 = none.
        final: the stage whose result is the model (default: the last one).
        extra_parts: recorded in each stage's a2llm.json as they are (e.g. the detokenizer).
    """

    data: str
    out: str
    rvq: str
    stages: tuple[StageConfig, ...]
    preset: str = "nano"
    backbone: str = ""
    tokenizer: str = ""
    tokenizer_vocab: int = 600
    read_data: str = ""
    encoder: str = ""
    text_layout: str = "chunked"
    lexicon_phones: int = 0
    ctc_layer: int = 0
    seed: int = 0
    final: str = ""
    extra_parts: dict = field(default_factory=dict)

    def stage(self, name: str) -> StageConfig:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r} (stages: {[s.name for s in self.stages]})")

    def init_of(self, stage: StageConfig) -> str:
        """The stage ``stage`` starts from, or "scratch"."""
        if stage.init:
            if stage.init != "scratch":
                self.stage(stage.init)
            return stage.init
        i = [s.name for s in self.stages].index(stage.name)
        return self.stages[i - 1].name if i else "scratch"


def load_config(path: str | Path, **overrides) -> CurriculumConfig:
    """Read a curriculum JSON; ``stages`` entries are inline objects or paths of stage JSON files
    (relative to the curriculum file). Relative data/out/rvq/... paths are relative to the working directory."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no curriculum config at {path}")
    raw = json.loads(path.read_text())
    stages = []
    for entry in raw.pop("stages", []):
        if isinstance(entry, str):
            entry = json.loads((path.parent / entry).read_text())
        entry = dict(entry)
        for key in ("tasks", "read_tasks"):
            if key in entry:
                entry[key] = tuple((t, float(w)) for t, w in (entry[key].items() if isinstance(entry[key], dict)
                                                              else entry[key]))
        stages.append(StageConfig(**entry))
    if not stages:
        raise ValueError(f"{path} lists no stages")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(raw) - {f.name for f in dataclasses.fields(CurriculumConfig)}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    return CurriculumConfig(stages=tuple(stages), **raw)


# --- parameter groups ----------------------------------------------------------------------------------------
def configure_trainable(model, stage: StageConfig) -> list[dict]:
    """Set ``requires_grad`` for the stage and return AdamW parameter groups with their learning rates."""
    for p in model.parameters():
        p.requires_grad_(False)
    groups = []
    if stage.train == "all":
        own_lr = stage.lr_encoder is not None
        base = [p for n, p in model.backbone.named_parameters()
                if "lora_" not in n and not (own_lr and n.startswith("encoder."))
                and not (stage.ctc_weight == 0 and n.startswith("ctc_head."))]
        groups.append({"params": base, "lr": stage.lr_backbone, "name": "backbone"})
        if own_lr and stage.lr_encoder > 0:
            groups.append({"params": list(model.backbone.encoder.parameters()),
                           "lr": stage.lr_encoder, "name": "encoder"})
    if stage.train == "lora+connector":
        groups.append({"params": model.lora_parameters(), "lr": stage.lr_lora, "name": "lora"})
    if stage.train != "all" or stage.motion_weight > 0:
        groups.append({"params": list(model.connector.parameters()), "lr": stage.lr_connector, "name": "connector"})
    for g in groups:
        for p in g["params"]:
            p.requires_grad_(True)
        g["initial_lr"] = g["lr"]
    return groups


def lr_factor(step: int, stage: StageConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio``."""
    if step < stage.warmup:
        return (step + 1) / stage.warmup
    t = (step - stage.warmup) / max(1, stage.steps - stage.warmup)
    return stage.min_lr_ratio + (1 - stage.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


# --- the run ----------------------------------------------------------------------------------------------------
class Curriculum:
    """Runs the stages of a :class:`CurriculumConfig` (the same code on every process)."""

    def __init__(self, config: CurriculumConfig, progress: bool = True):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.cfg, self.out = config, Path(config.out)
        # find_unused_parameters: a batch without audio input leaves the encoder unused.
        self.acc = Accelerator(cpu=not torch.cuda.is_available(),
                               kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        self.progress = progress and self.acc.is_main_process
        self.out.mkdir(parents=True, exist_ok=True)
        self.tokenizer = self._tokenizer()
        self.layout = TokenLayout.from_tokenizer(self.tokenizer, self._num_audio_codes())
        self._data: dict[str, MemoryDataset] = {}

    # -- shared pieces --
    def _num_audio_codes(self) -> int:
        from a2llm.data.phones import PHONES

        return len(PHONES) if self.cfg.preset == "nano" else 6561

    def _tokenizer(self):
        from a2llm.lalm.text_tokenizer import load_text_tokenizer

        if self.cfg.tokenizer:
            return load_text_tokenizer(self.cfg.tokenizer)
        folder = self.out / "tokenizer"
        if self.acc.is_main_process and not (folder / "tokenizer.json").exists():
            build_text_tokenizer(self.cfg.data, folder, self._num_audio_codes(), self.cfg.tokenizer_vocab,
                                 extra=self.cfg.read_data or None)
        self.acc.wait_for_everyone()
        return load_text_tokenizer(folder)

    def data(self, split: str, subset: str = "all") -> MemoryDataset:
        key = f"{split}/{subset}"
        if key not in self._data:
            self._data[key] = MemoryDataset(self.cfg.data, split, high_dynamic_only=subset == "high_dynamic")
        return self._data[key]

    def read_data(self) -> MemoryDataset:
        if not self.cfg.read_data:
            raise ValueError("a stage has read_share > 0 but the curriculum names no read_data corpus "
                             "(make one: python -m a2llm.data.nano --read --out DIR --num N)")
        if "read" not in self._data:
            self._data["read"] = MemoryDataset(self.cfg.read_data, "train")
        return self._data["read"]

    def new_model(self):
        from a2llm.model import A2LLM, A2LLMConfig
        from a2llm.motion.tokenizer import MotionTokenizer

        rvq = MotionTokenizer.from_pretrained(self.cfg.rvq)
        # The connector predicts the tokenizer's codes: its levels, codebook size and group come from it.
        codes = dict(num_quantizers=rvq.num_codebooks, codebook_size=rvq.cardinality, group=rvq.group)
        if self.cfg.preset == "nano":
            cfg = A2LLMConfig.nano(self.layout.vocab_size)
            cfg = dataclasses.replace(cfg, rvq=rvq.config, connector=dataclasses.replace(cfg.connector, **codes),
                                      text_layout=self.cfg.text_layout,
                                      backbone=dataclasses.replace(cfg.backbone, lexicon_phones=self.cfg.lexicon_phones,
                                                                   ctc_layer=self.cfg.ctc_layer))
            model = A2LLM(cfg, rvq)
            if self.cfg.lexicon_phones:
                from a2llm.lalm.lexicon import build_lexicon

                model.backbone.model.embed_tokens.set_lexicon(
                    build_lexicon(self.tokenizer, self.layout.vocab_size, self.cfg.lexicon_phones))
            if self.cfg.encoder:
                from a2llm.train.encoder import load_encoder_weights

                load_encoder_weights(model.backbone.encoder, self.cfg.encoder)
            return model
        from a2llm.lalm.loader import load_step_audio2

        if self.cfg.encoder:
            raise ValueError("'encoder' (a phone pre-trained nano encoder) applies to preset 'nano'; the full size "
                             "starts from the released encoder")
        if self.cfg.lexicon_phones:
            raise ValueError("'lexicon_phones' applies to preset 'nano'; the full-size LLM already reads")
        if self.cfg.ctc_layer:
            raise ValueError("'ctc_layer' applies to preset 'nano'; the full-size LLM already hears")
        if not self.cfg.backbone:
            raise ValueError("a full-size curriculum needs 'backbone': the Step-Audio-2-mini folder")
        backbone, _ = load_step_audio2(self.cfg.backbone)
        cfg = A2LLMConfig.full()
        cfg = dataclasses.replace(cfg, backbone=backbone.config, rvq=rvq.config, text_layout=self.cfg.text_layout,
                                  connector=dataclasses.replace(cfg.connector, d_llm=backbone.config.hidden_size,
                                                                **codes))
        return A2LLM(cfg, rvq, backbone=backbone)

    def load_stage_model(self, name: str):
        from a2llm.model import A2LLM

        if name == "scratch":
            torch.manual_seed(self.cfg.seed)
            return self.new_model()
        folder = self.out / name
        if not (folder / "done.json").exists():
            raise FileNotFoundError(f"stage {name!r} has not finished ({folder}/done.json missing)")
        return A2LLM.from_pretrained(folder)

    # -- running --
    def run(self, only: str | None = None) -> Path:
        """Run every unfinished stage (or just ``only``); returns the final stage's folder."""
        for stage in self.cfg.stages:
            if only and stage.name != only:
                continue
            if (self.out / stage.name / "done.json").exists():
                if self.progress:
                    print(f"stage {stage.name}: done, skipped")
                continue
            self.run_stage(stage)
        final = self.cfg.final or self.cfg.stages[-1].name
        return self.out / final

    def run_stage(self, stage: StageConfig) -> dict:
        acc, folder = self.acc, self.out / stage.name
        folder.mkdir(parents=True, exist_ok=True)
        model = self.load_stage_model(self.cfg.init_of(stage))
        if stage.reset_lora:
            torch.manual_seed(self.cfg.seed + 1)
            model.reset_lora()
        model.train()
        groups = configure_trainable(model, stage)
        opt = torch.optim.AdamW(groups, weight_decay=stage.weight_decay)
        start, elapsed = 0, 0.0
        state_path = folder / "train_state.pt"
        if state_path.exists():
            saved = torch.load(state_path, map_location="cpu", weights_only=True)
            missing = set(trainable_state(model)) - set(saved["weights"])
            if missing:
                raise ValueError(f"{state_path} does not match stage {stage.name} (missing {sorted(missing)[:3]})")
            model.load_state_dict(saved["weights"], strict=False)
            opt.load_state_dict(saved["optimizer"])
            start, elapsed = int(saved["step"]), float(saved["seconds"])
        wrapped, opt = acc.prepare(model, opt)
        train = self.data("train", stage.subset)
        high = self.data("train", "high_dynamic") if stage.high_dynamic_share is not None else None
        collate = FlameQACollator(self.tokenizer, self.layout, CollatorConfig(task_weights=stage.tasks,
                                                                              text_layout=model.config.text_layout))
        names, probs = _task_probs(stage.tasks)
        read = self.read_data() if stage.read_share else None
        read_names, read_probs = _task_probs(stage.read_tasks)
        n_read = int(round(stage.batch * stage.read_share))
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=stage.steps, initial=start, desc=f"{stage.name}", unit="step")
        sums, count, t0 = np.zeros(4), 0, time.time()
        for step in range(start, stage.steps):
            rng = np.random.default_rng([self.cfg.seed, acc.process_index, step])
            samples = draw_batch(rng, train, high, stage)
            tasks = list(rng.choice(names, size=stage.batch, p=probs))
            if read is not None:            # the batch's last n_read rows become read-aloud samples
                samples[stage.batch - n_read:] = [read[int(i)] for i in rng.integers(0, len(read), n_read)]
                tasks[stage.batch - n_read:] = list(rng.choice(read_names, size=n_read, p=read_probs))
            batch = collate(samples, tasks).to(acc.device)
            for g in opt.param_groups:
                g["lr"] = g["initial_lr"] * lr_factor(step, stage)
            weights = (text_label_weights(batch.labels, self.layout.is_audio, stage.text_weight)
                       if stage.text_weight != 1 else None)
            out = wrapped(batch, motion_weight=stage.motion_weight, ctc_weight=stage.ctc_weight,
                          label_weights=weights)
            acc.backward(out.loss)
            if stage.grad_clip:
                acc.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], stage.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            sums += [out.loss.item(), out.seq_loss.item(), out.motion_loss.item(),
                     out.ctc_loss.item() if out.ctc_loss is not None else 0.0]
            count += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{out.loss.item():.3f}")
            last = step + 1 == stage.steps
            if (step + 1) % stage.log_every == 0 or last:
                now = time.time()
                if acc.is_main_process:
                    row = {"step": step + 1, "seconds": round(elapsed + now - t0, 1),
                           "loss": sums[0] / count, "seq_loss": sums[1] / count, "motion_loss": sums[2] / count,
                           **({"ctc_loss": sums[3] / count} if stage.ctc_weight else {}),
                           **self.validate(acc.unwrap_model(wrapped), stage, collate)}
                    append_csv(folder / "log.csv", row)
                sums, count = np.zeros(4), 0
            if (step + 1) % stage.save_every == 0 or last:
                elapsed += time.time() - t0
                t0 = time.time()
                acc.wait_for_everyone()
                if acc.is_main_process:
                    self._save_state(state_path, acc.unwrap_model(wrapped), opt, step + 1, elapsed)
        if bar is not None:
            bar.close()
        acc.wait_for_everyone()
        in_sync = self.ranks_in_sync(acc.unwrap_model(wrapped))
        summary = {"stage": stage.name, "steps": stage.steps, "seconds": round(elapsed, 1),
                   "processes": acc.num_processes, "ranks_in_sync": in_sync,
                   "config": _jsonable(dataclasses.asdict(stage))}
        if acc.is_main_process:
            model = acc.unwrap_model(wrapped)
            model.eval()
            # Full size: a stage that leaves the backbone frozen points at the released folder, not a 16 GB copy.
            keep = os.path.relpath(Path(self.cfg.backbone).resolve(), folder.resolve()) \
                if self.cfg.backbone and stage.train != "all" else None
            model.save_pretrained(folder, backbone_path=keep, text_tokenizer=self.tokenizer,
                                  extra_parts=self._extra_parts(folder))
            _plot_stage(folder)
            (folder / "done.json").write_text(json.dumps(summary, indent=2) + "\n")
        acc.wait_for_everyone()
        return summary

    def ranks_in_sync(self, model) -> bool:
        """Whether every process holds the same trainable weights (a checksum per tensor, gathered)."""
        sums = torch.stack([p.detach().double().sum() for p in model.parameters() if p.requires_grad])
        gathered = self.acc.gather(sums[None].to(self.acc.device)).cpu()
        same = bool(torch.allclose(gathered, gathered[:1].expand_as(gathered), rtol=1e-9, atol=1e-9))
        if not same:
            raise RuntimeError("processes hold different weights after training: distributed sync is broken")
        return same

    @property
    def is_main(self) -> bool:
        return self.acc.is_main_process

    def _extra_parts(self, folder: Path) -> dict:
        parts = {}
        for part, path in self.cfg.extra_parts.items():
            parts[part] = os.path.relpath(Path(path).resolve(), folder.resolve())
        return parts

    @torch.no_grad()
    def validate(self, model, stage: StageConfig, collate: FlameQACollator) -> dict:
        """Mean losses on a fixed set of validation samples, each subtask in turn (deterministic)."""
        val = self.data("val", stage.subset if len(self.data("val", stage.subset)) else "all")
        n = min(stage.val_samples, len(val))
        if n == 0:
            return {}
        was = model.training
        model.eval()
        seq, mot, k = 0.0, 0.0, 0
        text_ce, text_n = 0.0, 0
        names = [t for t, _ in stage.tasks]
        for start in range(0, n, 16):
            samples = [val[i] for i in range(start, min(n, start + 16))]
            tasks = [names[(start + j) % len(names)] for j in range(len(samples))]
            batch = collate(samples, tasks).to(self.acc.device)
            out = model(batch, motion_weight=stage.motion_weight)
            seq += out.seq_loss.item()
            mot += out.motion_loss.item()
            k += 1
            # the answer's text tokens of the dialogue tasks alone: how well the model chooses what to say
            rows = torch.tensor([t in ("aqaa", "tqa") for t in tasks], device=batch.labels.device)
            labels = batch.labels[:, 1:]
            text = rows[:, None] & (labels != IGNORE) & ~self.layout.is_audio(labels)
            if text.any():
                ce = torch.nn.functional.cross_entropy(out.logits[:, :-1][text].float(), labels[text],
                                                       reduction="sum")
                text_ce, text_n = text_ce + ce.item(), text_n + int(text.sum())
        model.train(was)
        return {"val_seq_loss": seq / k, "val_motion_loss": mot / k,
                **({"val_text_loss": text_ce / text_n} if text_n else {})}

    @staticmethod
    def _save_state(path: Path, model, opt, step: int, seconds: float) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save({"weights": trainable_state(model), "optimizer": opt.state_dict(), "step": step,
                    "seconds": seconds}, tmp)
        os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _plot_stage(folder: Path) -> None:
    """``curves.png``: training and validation losses of one stage."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(folder / "log.csv")))
    if not rows:
        return
    step = [int(r["step"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key in zip(axes, ("seq_loss", "motion_loss")):
        ax.plot(step, [float(r[key]) for r in rows], label="train")
        if rows[0].get(f"val_{key}"):
            ax.plot(step, [float(r[f"val_{key}"]) for r in rows], label="val")
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("step")
        ax.legend()
    fig.suptitle(folder.name)
    fig.tight_layout()
    fig.savefig(folder / "curves.png", dpi=110)
    plt.close(fig)
