"""``python -m a2llm.eval dialogue``: does A²-LLM-nano hold a conversation? (issue 21)

    python -m a2llm.eval dialogue --checkpoint checkpoints/a2llm-nano [--json] [--dialogues 20] [--per-set 48]

Everything is drawn from FLAME-QA-nano's world (a2llm/data/nano/world.py) with a fixed seed, on material no
training sample has: held-out wordings, topics, off-domain questions (frames and vocabulary) and voices. A reply is
right when its text equals the world's answer (case, punctuation and spacing ignored). Earlier turns reach the model
as the engine keeps them (a2llm/engine/context.py): the visitor's words as text — for spoken turns the model's own
transcript (its ASR subtask) — and the model's *own* earlier replies as text, so a wrong reply stays in the
dialogue, as it would in the demo.

Reported:

* ``by_turn`` — accuracy at turn 1..12 of 12-turn dialogues (:func:`~a2llm.data.nano.world.draw_test_dialogue`:
  about half the turns carry held-out material), typed and spoken (each dialogue's turns spoken by one held-out
  voice, the voices taking turns);
* ``typed`` — single questions: seen wordings (seen topics), held-out wordings, held-out topics;
* ``spoken_by_voice`` — single seen-world questions spoken by each held-out voice (espeak-ng's three and the two
  whole voices of other synthesizers, with the corpus's augmentation);
* ``fallback_rate`` — held-out off-domain questions answered by a fallback; ``false_fallback_rate`` — in-domain
  questions (templates, seen and held-out wordings) answered by one; ``false_fallback_rate_all`` — the same over
  every in-domain question of the evaluation (single questions and dialogue turns, typed and spoken);
* ``garbled_rate`` — replies that are not a sentence of the world's answer inventory (of every reply above).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

BATCH = 16


@dataclass
class Item:
    """One question to ask: its text, the world's answer, what it is (kind, held-out parts), and the voice that
    says it (None: typed)."""

    question: str
    answer: str
    kind: str
    held_out: tuple[str, ...] = ()
    voice: str | None = None


class Asker:
    """Batched questions to one checkpoint, with text context, typed or spoken."""

    def __init__(self, checkpoint: str | Path, max_new_tokens: int = 400):
        from a2llm.generate import Generator
        from a2llm.model import A2LLM, load_checkpoint_tokenizer

        self.gen = Generator(A2LLM.from_pretrained(checkpoint), load_checkpoint_tokenizer(checkpoint))
        self.rng = np.random.default_rng(0)
        self.max_new_tokens = max_new_tokens

    def speech(self, text: str, voice: str) -> np.ndarray:
        from a2llm.data.nano.voices import speak_question

        return speak_question(text, voice, self.rng).audio

    def ask(self, items: list[Item], contexts: list[list[tuple[str, str]]] | None = None) -> tuple[list[str], list[str]]:
        """Replies to ``items`` (with optional earlier (role, text) turns each) -> (reply texts, what was heard:
        the question text for typed items, the model's transcript for spoken ones)."""
        from a2llm.generate import question

        contexts = contexts or [[] for _ in items]
        replies, heard = [], []
        for i in range(0, len(items), BATCH):
            chunk, ctx = items[i:i + BATCH], contexts[i:i + BATCH]
            spoken = [it.voice is not None for it in chunk]
            clips = [self.speech(it.question, it.voice) if it.voice else None for it in chunk]
            samples = [question(audio=c, context=x)[0] if c is not None else question(text=it.question, context=x)[0]
                       for it, c, x in zip(chunk, clips, ctx)]
            # typed and spoken rows run as separate batches (different subtasks)
            out: dict[int, str] = {}
            said: dict[int, str] = {}
            for task, rows in (("tqa", [k for k, s in enumerate(spoken) if not s]),
                               ("aqaa", [k for k, s in enumerate(spoken) if s])):
                if not rows:
                    continue
                answers = self.gen.answer([samples[k] for k in rows], task, with_motion=False,
                                          max_new_tokens=self.max_new_tokens)
                out.update({k: a.text for k, a in zip(rows, answers)})
                if task == "aqaa":
                    asr = self.gen.answer([samples[k] for k in rows], "asr", with_motion=False,
                                          max_new_tokens=min(96, self.max_new_tokens))
                    said.update({k: a.text for k, a in zip(rows, asr)})
            replies += [out[k] for k in range(len(chunk))]
            heard += [said.get(k, it.question) for k, it in enumerate(chunk)]
        return replies, heard


def _right(reply: str, answer: str) -> bool:
    from a2llm.data.nano.world import normalise

    return normalise(reply) == normalise(answer)


def _rate(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else float("nan")


def dialogue_accuracy(asker: Asker, dialogues: list, voices: list[str | None]) -> tuple[list[float], list[tuple]]:
    """Accuracy per turn index over ``dialogues`` (each spoken by its voice in ``voices``; None: typed)."""
    n = len(dialogues[0])
    contexts: list[list[tuple[str, str]]] = [[] for _ in dialogues]
    right = np.zeros((len(dialogues), n), bool)
    log = []
    for k in range(n):
        items = [Item(d[k].question, d[k].answer, d[k].kind, d[k].held_out, v) for d, v in zip(dialogues, voices)]
        replies, heard = asker.ask(items, [list(c) for c in contexts])
        for b, (it, r, h) in enumerate(zip(items, replies, heard)):
            right[b, k] = _right(r, it.answer)
            contexts[b] += [("human", h), ("assistant", r)]
            log.append((k + 1, it, r))
    return [float(x) for x in right.mean(0)], log


def run_dialogue_eval(checkpoint: str | Path, dialogues: int = 20, per_set: int = 48, seed: int = 0,
                      progress: bool = True, turns: int = 12, max_new_tokens: int = 400) -> dict:
    from a2llm.data.nano import world
    from a2llm.data.nano.voices import VOICE_SETS

    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if progress else (lambda *a: None)
    t0 = time.time()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    asker = Asker(checkpoint, max_new_tokens)
    test_voices = list(VOICE_SETS["test"])
    replies: list[tuple[Item, str]] = []

    def single(holdout, n, voice=None):
        turns = [world.draw_dialogue(rng, 1, holdout)[0] for _ in range(n)]
        return [Item(t.question, t.answer, t.kind, t.held_out, voice) for t in turns]

    result: dict = {"checkpoint": str(checkpoint), "seed": seed}
    say("[dialogue] typed single questions ...")
    typed = {}
    for name, holdout in (("seen_wordings", None), ("held_out_wordings", "wording"), ("held_out_topics", "topic")):
        items = single(holdout, per_set)
        got, _ = asker.ask(items)
        replies += list(zip(items, got))
        typed[name] = _rate([_right(r, it.answer) for it, r in zip(items, got)])
    result["typed"] = typed

    say("[dialogue] spoken single questions, per held-out voice ...")
    by_voice = {}
    for voice in test_voices:
        items = single(None, max(1, per_set // 2), voice)
        got, _ = asker.ask(items)
        replies += list(zip(items, got))
        by_voice[voice] = _rate([_right(r, it.answer) for it, r in zip(items, got)])
    result["spoken_by_voice"] = by_voice
    espeak = [a for v, a in by_voice.items() if v.startswith("espeak:")]
    other = [a for v, a in by_voice.items() if not v.startswith("espeak:")]
    result["spoken_espeak"], result["spoken_other_synthesizers"] = float(np.mean(espeak)), float(np.mean(other))

    say("[dialogue] off-domain and in-domain questions ...")
    off = single("offdomain", per_set)
    inside = single(None, per_set) + single("wording", per_set)
    inside = [it for it in inside if it.kind == "template"]
    got_off, _ = asker.ask(off)
    got_in, _ = asker.ask(inside)
    replies += list(zip(off, got_off)) + list(zip(inside, got_in))
    result["fallback_rate"] = _rate([world.is_fallback(r) for r in got_off])
    result["offdomain_right"] = _rate([_right(r, it.answer) for it, r in zip(off, got_off)])
    result["false_fallback_rate"] = _rate([world.is_fallback(r) for r in got_in])
    result["num_offdomain"], result["num_in_domain"] = len(off), len(inside)

    say(f"[dialogue] {turns}-turn dialogues, typed and spoken ...")
    dlg = [world.draw_test_dialogue(rng, turns) for _ in range(dialogues)]
    by_turn = {}
    for mode, voices in (("typed", [None] * dialogues),
                         ("spoken", [test_voices[i % len(test_voices)] for i in range(dialogues)])):
        acc, log = dialogue_accuracy(asker, dlg, voices)
        by_turn[mode] = acc
        replies += [(it, r) for _, it, r in log]
        result[f"examples_{mode}"] = [{"turn": k, "question": it.question, "answer": it.answer, "reply": r}
                                      for k, it, r in log if k in (1, turns // 2, turns)][:9]
    result["by_turn"] = by_turn
    for mode, acc in by_turn.items():
        result[f"{mode}_turns_1_3"] = float(np.mean(acc[:3]))
        result[f"{mode}_turns_7_12"] = float(np.mean(acc[6:12])) if len(acc) > 6 else float("nan")
    # every in-domain question of the whole evaluation (single questions and dialogue turns, typed and spoken):
    # the templates-only set above is small (~30 questions)
    in_domain = [r for it, r in replies if not world.is_fallback(it.answer)]
    result["false_fallback_rate_all"] = _rate([world.is_fallback(r) for r in in_domain])
    result["num_in_domain_all"] = len(in_domain)
    result["garbled_rate"] = _rate([not world.is_inventory_answer(r) for _, r in replies])
    result["num_replies"] = len(replies)
    result["num_dialogues"] = dialogues
    result["seconds"] = round(time.time() - t0, 1)
    return result


def format_dialogue(r: dict) -> str:
    pct = lambda x: f"{100 * x:5.1f} %"          # noqa: E731
    lines = [f"Dialogue evaluation of {r['checkpoint']} ({r['num_replies']} replies, {r['seconds']:.0f} s)", "",
             "Typed single questions:"]
    lines += [f"  {k.replace('_', ' '):<22}{pct(v)}" for k, v in r["typed"].items()]
    lines += ["Spoken single questions, held-out voices:"]
    lines += [f"  {v:<28}{pct(a)}" for v, a in r["spoken_by_voice"].items()]
    lines += [f"  espeak-ng voices {pct(r['spoken_espeak'])}, other synthesizers {pct(r['spoken_other_synthesizers'])}",
              f"Off-domain: fallback {pct(r['fallback_rate'])} ({r['num_offdomain']} held-out questions); "
              f"false fallbacks in-domain {pct(r['false_fallback_rate'])} ({r['num_in_domain']} template questions), "
              f"{pct(r['false_fallback_rate_all'])} ({r['num_in_domain_all']}: every in-domain reply)",
              f"Garbled replies (not an answer of the world): {pct(r['garbled_rate'])}",
              f"12-turn dialogues ({r['num_dialogues']}), accuracy by turn:",
              "  turn   " + " ".join(f"{k:>5}" for k in range(1, 13))]
    for mode, acc in r["by_turn"].items():
        lines.append(f"  {mode:<7}" + " ".join(f"{100 * a:5.0f}" for a in acc) +
                     f"   (turns 1-3 {pct(r[mode + '_turns_1_3'])}, 7-12 {pct(r[mode + '_turns_7_12'])})")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    if not (Path(args.checkpoint) / "a2llm.json").exists():
        raise FileNotFoundError(f"{args.checkpoint} is not an A²-LLM checkpoint (no a2llm.json)")
    r = run_dialogue_eval(args.checkpoint, dialogues=args.dialogues, per_set=args.per_set, seed=args.seed,
                          progress=not args.json, turns=args.turns, max_new_tokens=args.max_new_tokens)
    print(json.dumps(r, indent=2) if args.json else format_dialogue(r))
    if args.save:
        Path(args.save).write_text(json.dumps(r, indent=2) + "\n")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("dialogue", help="conversation accuracy on held-out material: by turn, wordings, "
                                               "topics, voices, off-domain fallbacks, garbled replies",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="checkpoints/a2llm-nano", help="A²-LLM checkpoint folder")
    p.add_argument("--dialogues", type=int, default=20, help="12-turn dialogues (each run typed and spoken)")
    p.add_argument("--turns", type=int, default=12, help="turns per dialogue (default 12)")
    p.add_argument("--per-set", type=int, default=48, help="questions per single-question set")
    p.add_argument("--seed", type=int, default=0, help="draws of the world and the voices")
    p.add_argument("--max-new-tokens", type=int, default=400, help="decode steps per reply at most")
    p.add_argument("--threads", type=int, default=1, help="torch threads (tiny models run best on 1)")
    p.add_argument("--save", help="also write the JSON here")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run)
