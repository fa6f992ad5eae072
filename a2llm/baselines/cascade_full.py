"""The cascaded baseline at full size: Whisper -> a text LLM -> a TTS -> audio-driven animation, from local folders.

    from a2llm.baselines.cascade_full import build_full_cascade

    cascade = build_full_cascade(asr_dir="models/whisper-large-v3",        # openai/whisper-large-v3
                                 llm_dir="models/Qwen2.5-7B-Instruct",     # any causal LM with a tokenizer
                                 tts_dir="models/mms-tts-eng",             # facebook/mms-tts-eng (VITS)
                                 avatar_dir="checkpoints/a2llm-nano")      # or an ARTalk checkout
    result = cascade.run(audio, 16000, mode="streaming")                   # or mode="batch"
    result.ttft_ms, result.ttfa_ms, result.rtf, result.text, result.motion

The stages follow the protocols of :mod:`a2llm.baselines.cascade` and can be mixed with the nano ones:

* :class:`WhisperASR` — ``WhisperProcessor`` + ``WhisperForConditionalGeneration``, greedy English transcription
  of one turn (up to Whisper's 30 s window) at 16 kHz (other rates are resampled);
* :class:`TextLLM` — ``AutoTokenizer`` + ``AutoModelForCausalLM``: the tokenizer's chat template when it has one
  (else a plain "User:/Assistant:" prompt), greedy decoding on a KV cache, streamed as text deltas. The loop runs
  in the caller's thread, so the cascade's clock charges every decode step to the LLM stage;
* :class:`VitsTTS` — ``VitsModel`` + its tokenizer (the facebook/mms-tts-* layout): one waveform per phrase,
  deterministic (its noise is drawn from a seeded generator state per call). VITS has no speech tokens, so each
  piece is marked ``tokens=1``: the cascade's TTFT is stamped at the TTS's first audio, as
  :mod:`a2llm.baselines.cascade` defines TTFT for a TTS without tokens;
* animation — :func:`load_animator`: an A²-LLM checkpoint's audio-only avatar
  (:class:`~a2llm.baselines.cascade.AudioAnimator`), or :class:`ARTalkAnimator` over a checkout of ARTalk
  (github.com/xg-chu/ARTalk) with its released weights; either way the TTS's speech is resampled to the
  animator's 16 kHz (:class:`Resampled` for the avatar; ARTalkAnimator resamples itself).

Nothing is downloaded: every model loads with ``local_files_only=True``, and a missing or incomplete folder raises
``FileNotFoundError`` naming what is missing and the command that fetches it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from a2llm.baselines.cascade import AudioAnimator, Cascade, Speech
from a2llm.data.builder.media import resample

ASR_RATE = 16000            # Whisper's and the avatars' input rate
WHISPER_WINDOW_S = 30.0
DEFAULT_SYSTEM_PROMPT = "You are a friendly assistant in a spoken conversation. Answer briefly, in plain sentences."
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_TOKENIZER = ("tokenizer.json", "vocab.json", "tokenizer.model")


# --- helpers ----------------------------------------------------------------------------------------------------
def require_files(folder: str | Path, what: str, how: str, needs: dict[str, tuple[str, ...]]) -> Path:
    """Check that ``folder`` exists and holds, for each entry of ``needs``, one of its alternative files.

    Args:
        folder: the model folder.
        what: what the folder should hold ("Whisper weights"), for the message.
        how: the command that fetches it, for the message.
        needs: a description of each required part -> the file names any one of which provides it.

    Raises:
        FileNotFoundError: naming the folder, the missing parts and ``how``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} not found at {folder}: `{how}`")
    missing = [f"{part} ({' or '.join(names)})" for part, names in needs.items()
               if not any((folder / n).exists() for n in names)]
    if missing:
        raise FileNotFoundError(f"{what} at {folder} are incomplete, missing: {'; '.join(missing)}: `{how}`")
    return folder


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")


def _dtype(dtype: torch.dtype | None, device: torch.device) -> torch.dtype:
    return dtype if dtype is not None else torch.float16 if device.type == "cuda" else torch.float32


def fit_frames(motion: np.ndarray, frames: int) -> np.ndarray:
    """``motion`` [T, D] cut, or its last frame repeated, to exactly ``frames`` frames (float32)."""
    motion = np.asarray(motion, np.float32)
    if len(motion) >= frames:
        return motion[:frames]
    if len(motion) == 0:
        raise ValueError(f"cannot extend an empty motion to {frames} frames")
    return np.concatenate([motion, np.repeat(motion[-1:], frames - len(motion), 0)])


# --- ASR --------------------------------------------------------------------------------------------------------
class WhisperASR:
    """Speech -> text with a Whisper checkpoint folder (greedy, English, one window of up to 30 s)."""

    HOW = "huggingface-cli download openai/whisper-large-v3 --local-dir {folder}"

    def __init__(self, folder: str | Path, device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None, max_new_tokens: int = 128):
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        folder = require_files(folder, "Whisper weights", self.HOW.format(folder=folder), {
            "config": ("config.json",), "weights": _WEIGHTS, "tokenizer": _TOKENIZER,
            "feature extractor": ("preprocessor_config.json", "processor_config.json")})
        self.device = _device(device)
        self.dtype = _dtype(dtype, self.device)
        self.processor = WhisperProcessor.from_pretrained(folder, local_files_only=True)
        self.model = WhisperForConditionalGeneration.from_pretrained(
            folder, local_files_only=True, dtype=self.dtype).to(self.device).eval()
        self.max_new_tokens = min(max_new_tokens, self.model.config.max_target_positions - 8)
        gen = self.model.generation_config
        # multilingual checkpoints are told the language and task; English-only ones (*.en) take neither
        multilingual = getattr(gen, "is_multilingual", False) and getattr(gen, "lang_to_id", None)
        self.prompt = {"language": "en", "task": "transcribe"} if multilingual else {}

    @torch.no_grad()
    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        audio = resample(audio, sample_rate, ASR_RATE)
        if len(audio) > WHISPER_WINDOW_S * ASR_RATE:
            raise ValueError(f"the turn lasts {len(audio) / ASR_RATE:.1f} s, over Whisper's {WHISPER_WINDOW_S:.0f} s "
                             "window: cut it into turns (voice activity detection) first")
        features = self.processor(audio, sampling_rate=ASR_RATE, return_tensors="pt").input_features
        ids = self.model.generate(features.to(self.device, self.dtype), do_sample=False, num_beams=1,
                                  max_new_tokens=self.max_new_tokens, **self.prompt)
        return self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


# --- LLM --------------------------------------------------------------------------------------------------------
class TextLLM:
    """Text -> answer text with a causal LM folder: greedy decoding on a KV cache, streamed as text deltas."""

    HOW = "huggingface-cli download Qwen/Qwen2.5-7B-Instruct --local-dir {folder}"

    def __init__(self, folder: str | Path, system_prompt: str = DEFAULT_SYSTEM_PROMPT, max_new_tokens: int = 256,
                 device: str | torch.device | None = None, dtype: torch.dtype | None = None):
        from transformers import AutoModelForCausalLM

        folder = require_files(folder, "LLM weights", self.HOW.format(folder=folder),
                               {"config": ("config.json",), "weights": _WEIGHTS, "tokenizer": _TOKENIZER})
        self.device = _device(device)
        self.tok = load_llm_tokenizer(folder)
        self.model = AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, dtype=_dtype(dtype, self.device)).to(self.device).eval()
        self.system_prompt, self.max_new_tokens = system_prompt, max_new_tokens
        self.stop_ids = self._stop_ids()
        from inspect import signature

        # transformers 5 renamed the forward's ``past_key_values`` to ``cache`` (the old name is deprecated)
        params = signature(self.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    def _stop_ids(self) -> set[int]:
        """The ids that end an answer: the generation config's eos ids and the tokenizer's eos."""
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        if self.tok.eos_token_id is not None:
            ids.add(self.tok.eos_token_id)
        return ids

    def prompt(self, text: str) -> str:
        """The prompt text for one user turn: the chat template when the tokenizer has one, else plain."""
        if getattr(self.tok, "chat_template", None):
            messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            messages.append({"role": "user", "content": text})
            return self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        head = f"{self.system_prompt}\n\n" if self.system_prompt else ""
        return f"{head}User: {text}\nAssistant:"

    def _logits(self, ids: list[int], cache) -> torch.Tensor:
        x = torch.tensor([ids], device=self.device)
        out = self.model(input_ids=x, use_cache=True, logits_to_keep=1, **{self._cache_kwarg: cache})
        return out.logits[0, -1]

    @torch.no_grad()
    def stream(self, text: str) -> Iterator[str]:
        from transformers import DynamicCache

        ids = self.tok(self.prompt(text), add_special_tokens=False).input_ids
        cache = DynamicCache(config=self.model.config)
        logits = self._logits(ids, cache)
        answer, shown = [], ""
        for _ in range(self.max_new_tokens):
            nxt = int(logits.argmax())
            if nxt in self.stop_ids:
                return
            answer.append(nxt)
            full = self.tok.decode(answer, skip_special_tokens=True)
            # a delta once the text grew and does not end inside a multi-byte character
            if len(full) > len(shown) and full.startswith(shown) and not full.endswith("\ufffd"):
                yield full[len(shown):]
                shown = full
            logits = self._logits([nxt], cache)


_GENERIC_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")


def load_llm_tokenizer(folder: Path):
    """The tokenizer of an LLM folder, as it was saved.

    ``AutoTokenizer`` is used, except for a folder whose ``tokenizer_config.json`` names the generic tokenizers
    backend (a tokenizer trained on its own, e.g. nano's): transformers 5 rebuilds the tokenizer of some model types
    (``qwen2`` among them) as that type's own class, which would swap such a tokenizer's pre-tokenizer and decoder
    (a Metaspace BPE would decode with "▁" instead of spaces)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config = folder / "tokenizer_config.json"
    saved = json.loads(config.read_text()).get("tokenizer_class") if config.exists() else None
    if saved in _GENERIC_TOKENIZERS and (folder / "tokenizer.json").exists():
        return PreTrainedTokenizerFast.from_pretrained(folder, local_files_only=True)
    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


# --- TTS --------------------------------------------------------------------------------------------------------
class VitsTTS:
    """Text -> speech with a VITS folder (facebook/mms-tts-* layout): one waveform per phrase.

    VITS samples its latents (``torch.randn_like``); each call draws them from the global generator re-seeded with
    ``seed`` inside ``torch.random.fork_rng``, so the same phrase gives the same speech and the caller's random
    state is left untouched. Pieces carry ``tokens=1`` (no speech tokens: TTFT is the first audio)."""

    HOW = "huggingface-cli download facebook/mms-tts-eng --local-dir {folder}"

    def __init__(self, folder: str | Path, seed: int = 0, device: str | torch.device | None = None):
        from transformers import AutoTokenizer, VitsModel

        folder = require_files(folder, "VITS TTS weights", self.HOW.format(folder=folder), {
            "config": ("config.json",), "weights": _WEIGHTS, "tokenizer": ("vocab.json", "tokenizer.json")})
        self.device = _device(device)
        self.tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = VitsModel.from_pretrained(folder, local_files_only=True).to(self.device).eval()
        self.sample_rate = int(self.model.config.sampling_rate)
        self.seed = seed

    def start(self) -> None:
        """Nothing to reset: VITS speaks each phrase on its own."""

    @torch.no_grad()
    def waveform(self, text: str) -> np.ndarray:
        """The speech of ``text`` [n] float32 (empty when nothing in it is speakable by this vocabulary)."""
        ids = self.tok(text, return_tensors="pt").input_ids.to(self.device)
        if ids.shape[1] == 0:
            return np.zeros(0, np.float32)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            wav = self.model(input_ids=ids).waveform[0]
        return wav.float().cpu().numpy()

    def speak(self, text: str) -> Iterator[Speech]:
        pcm = self.waveform(text.strip())
        if len(pcm):
            yield Speech(pcm, self.sample_rate, tokens=1)

    def finish(self) -> Iterator[Speech]:
        return iter(())


# --- animation --------------------------------------------------------------------------------------------------
class Resampled:
    """An animator fed at its own rate: speech at any rate is resampled to ``rate`` first, and the motion has
    round(25 N / sr) frames of the original speech (the resampled length can round differently)."""

    def __init__(self, animator, rate: int = ASR_RATE):
        self.animator, self.rate = animator, rate

    def animate(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        frames = int(round(25 * len(audio) / sample_rate))
        motion = self.animator.animate(resample(audio, sample_rate, self.rate), self.rate)
        return fit_frames(motion, frames)


class ARTalkAnimator:
    """Speech -> motion with ARTalk (Chu et al. 2025, github.com/xg-chu/ARTalk): its autoregressive model
    ``BitwiseARModel`` predicts 106-d FLAME frames at 25 fps from 16 kHz speech, converted to this project's
    [T, 58] with :func:`a2llm.motion.importers.artalk_to_motion`.

    ARTalk is a repository, not a package: ``folder`` is its checkout, whose ``app`` package is imported under a
    private name (it would clash with this project's ``app.py``). Its weights are ``assets/ARTalk_wav2vec.pt`` and
    ``assets/config.json``; its model builds the wav2vec 2.0 encoder from the config of
    ``facebook/wav2vec2-xls-r-300m``, read from the Hugging Face cache. Post-processing is ARTalk's own inference:
    Savitzky-Golay smoothing (global rotation smoothed more) and the jaw's two non-opening components zeroed.
    """

    HOW = ("git clone --recurse-submodules https://github.com/xg-chu/ARTalk {folder} && cd {folder} && "
           "bash build_resources.sh   # fetches assets/ARTalk_wav2vec.pt and assets/config.json")
    WEIGHTS = "assets/ARTalk_wav2vec.pt"

    def __init__(self, folder: str | Path, device: str | torch.device | None = None):
        folder = require_files(folder, "ARTalk", self.HOW.format(folder=folder), {
            "code": ("app/models.py",), "weights": (self.WEIGHTS,), "config": ("assets/config.json",)})
        self.device = _device(device)
        configs = json.loads((folder / "assets/config.json").read_text())
        configs.setdefault("AR_CONFIG", {})["AUDIO_ENCODER"] = "wav2vec"
        module = _import_artalk(folder)
        try:
            model = module.BitwiseARModel(configs)
        except OSError as e:      # the wav2vec 2.0 config is neither cached nor reachable
            raise FileNotFoundError(f"ARTalk builds its audio encoder from facebook/wav2vec2-xls-r-300m's config: "
                                    f"`huggingface-cli download facebook/wav2vec2-xls-r-300m config.json` ({e})") from e
        state = torch.load(folder / self.WEIGHTS, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        self.model = model.eval().to(self.device)

    @torch.no_grad()
    def animate(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        from a2llm.motion.importers import artalk_to_motion

        frames = int(round(25 * len(audio) / sample_rate))
        x = torch.from_numpy(resample(audio, sample_rate, ASR_RATE)).to(self.device)
        pred = self.model.inference({"audio": x[None], "style_motion": None}, with_gtmotion=False)[0]
        return fit_frames(artalk_to_motion(artalk_postprocess(pred.float().cpu().numpy())), frames)


def artalk_postprocess(motion106: np.ndarray) -> np.ndarray:
    """ARTalk's inference post-processing of its [T, 106] frames: Savitzky-Golay smoothing over time (window 5,
    order 2; global rotation [100:103] window 9, order 3), where the clip is long enough, and the jaw's y/z
    axis-angle components [104:106] zeroed."""
    from scipy.signal import savgol_filter

    src = np.asarray(motion106, np.float64)
    out = src.copy()
    if len(src) >= 5:
        out = savgol_filter(src, window_length=5, polyorder=2, axis=0)
    if len(src) >= 9:
        out[:, 100:103] = savgol_filter(src[:, 100:103], window_length=9, polyorder=3, axis=0)
    out[:, 104:] = 0.0
    return out


def _import_artalk(folder: Path):
    """ARTalk's ``app`` package from the checkout ``folder``, as a module of its own (``artalk_app_<hash>``, one per
    checkout, loaded once)."""
    name = "artalk_app_" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, folder / "app/__init__.py",
                                                  submodule_search_locations=[str(folder / "app")])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        del sys.modules[name]
        raise ImportError(f"ARTalk's code at {folder} needs packages this environment lacks ({e}): install its "
                          f"requirements (ARTalk's environment.yml: torchaudio, torchvision, einops, ...)") from e
    return module


def load_animator(folder: str | Path, rvq=None):
    """The audio-driven animator in ``folder``, fed speech at any rate:

    * an A²-LLM checkpoint (``a2llm.json``): its audio-only avatar, at 16 kHz through :class:`Resampled`; ``rvq``,
      its motion tokenizer if loaded;
    * an ARTalk checkout (``app/models.py``): :class:`ARTalkAnimator` (it resamples to 16 kHz itself).
    """
    folder = Path(folder)
    if (folder / "a2llm.json").exists():
        return Resampled(AudioAnimator.from_checkpoint(folder, rvq=rvq))
    if (folder / "app/models.py").exists():
        return ARTalkAnimator(folder)
    how = ARTalkAnimator.HOW.format(folder=folder)
    raise FileNotFoundError(f"no audio-driven animator at {folder}: expected an A²-LLM checkpoint folder with an "
                            f"audio-only baseline (a2llm.json) or an ARTalk checkout: `{how}`")


# --- the whole cascade ------------------------------------------------------------------------------------------
def build_full_cascade(asr_dir: str | Path, llm_dir: str | Path, tts_dir: str | Path, avatar_dir: str | Path,
                       rvq=None, device: str | torch.device | None = None, system_prompt: str = DEFAULT_SYSTEM_PROMPT,
                       max_new_tokens: int = 256, **cascade_kwargs) -> Cascade:
    """The cascade with full-size stages: Whisper, a text LLM, VITS and the animator of ``avatar_dir``.

    Args:
        asr_dir, llm_dir, tts_dir: local model folders (see :class:`WhisperASR`, :class:`TextLLM`, :class:`VitsTTS`).
        avatar_dir: an A²-LLM checkpoint with an audio-only baseline, or an ARTalk checkout (:func:`load_animator`).
        rvq: the checkpoint's motion tokenizer when already loaded (else read from ``avatar_dir``).
        device: where the three models run (default: CUDA when available).
        system_prompt, max_new_tokens: the LLM's (see :class:`TextLLM`).
        cascade_kwargs: ``phrase_words``, ``context_s`` of :class:`~a2llm.baselines.cascade.Cascade`.
    """
    return Cascade(WhisperASR(asr_dir, device=device),
                   TextLLM(llm_dir, system_prompt=system_prompt, max_new_tokens=max_new_tokens, device=device),
                   VitsTTS(tts_dir, device=device), load_animator(avatar_dir, rvq=rvq), **cascade_kwargs)
