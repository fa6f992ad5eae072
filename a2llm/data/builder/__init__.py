"""FLAME-QA builder: resumable stages over a manifest that turn raw talking videos/audio into QA samples.

Quick use (see ``docs/BUILDER.md``)::

    python -m a2llm.data.builder init --manifest data/fqa --inputs raw_videos/
    python -m a2llm.data.builder run --manifest data/fqa --config builder.json
    python -m a2llm.data.builder export --manifest data/fqa --out data/fqa/samples.jsonl

In code::

    from a2llm.data.builder import Manifest, run_stage
    from a2llm.data.builder.stages import AsrStage
    from a2llm.data.builder.stages.asr import WhisperASR

    manifest = Manifest("data/fqa")
    run_stage(manifest, AsrStage(model=WhisperASR.from_pretrained("openai/whisper-large-v3")))
"""
from a2llm.data.builder.manifest import Item, Manifest, ManifestError, Record, StageBusyError, StageResult
from a2llm.data.builder.runner import ItemError, RunSummary, Stage, StageFailed, run_stage

__all__ = ["Item", "ItemError", "Manifest", "ManifestError", "Record", "RunSummary", "Stage", "StageBusyError",
           "StageFailed", "StageResult", "run_stage"]
