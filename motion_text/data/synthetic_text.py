"""Captions for procedural motions, in HumanML3D's ``caption#word/POS ...#start#end`` format."""

from __future__ import annotations

import re

import numpy as np

from motion_text.data.synthetic_motion import ActionSpec

__all__ = ["describe", "caption_variants", "pos_tokens", "mirror_caption"]

_SUBJECTS = ("a person", "someone", "a man", "the person", "a woman", "the figure")
_REPS = {1: ("once", "one time"), 2: ("twice", "two times"), 3: ("three times", "thrice")}
_SPEED_WORDS = {"slowly": ("slowly", "at a slow pace"), "quickly": ("quickly", "fast"), "normal": ("", "")}


def _pick(rng: np.random.Generator, options) -> str:
    return options[rng.integers(len(options))]


def describe(spec: ActionSpec, rng: np.random.Generator) -> str:
    """One verb phrase (third person) for an action."""
    a = spec.action
    reps = _pick(rng, _REPS[spec.reps]) if spec.reps > 1 or rng.random() < 0.3 else ""
    limb = spec.limb or ""
    if a in ("walk", "run"):
        verb = _pick(rng, {"walk": ("walks", "strolls", "walks"), "run": ("runs", "jogs", "sprints")}[a])
        speed = _pick(rng, _SPEED_WORDS[spec.speed])
        direction = spec.direction if spec.direction == "backward" else _pick(rng, ("forward", "ahead", "forward"))
        return " ".join(w for w in (verb, direction, speed) if w)
    if a == "jump":
        where = _pick(rng, ("forward", "ahead")) if spec.direction == "forward" else _pick(rng, ("in place", "up"))
        return " ".join(w for w in (_pick(rng, ("jumps", "hops", "leaps")), where, reps) if w)
    if a == "kick":
        return " ".join(w for w in (_pick(rng, ("kicks with the", "kicks using the", "kicks with their")),
                                    f"{limb} {_pick(rng, ('leg', 'foot'))}", reps) if w)
    if a == "wave":
        return " ".join(w for w in (_pick(rng, ("waves with the", "waves the", "waves using their")),
                                    f"{limb} {_pick(rng, ('hand', 'arm'))}", reps) if w)
    if a == "punch":
        return " ".join(w for w in (_pick(rng, ("punches with the", "throws a punch with the", "punches using the")),
                                    f"{limb} {_pick(rng, ('arm', 'hand', 'fist'))}", reps) if w)
    if a == "squat":
        return " ".join(w for w in (_pick(rng, ("squats", "does a squat", "squats down")), reps) if w)
    if a == "sit_down":
        return _pick(rng, ("sits down", "sits down on a chair", "lowers to sit down"))
    if a == "turn":
        amount = "around" if spec.angle == 180 else _pick(rng, ("", "ninety degrees"))
        return " ".join(w for w in (_pick(rng, ("turns", "turns", "rotates")), amount,
                                    f"to the {spec.direction}") if w)
    if a == "raise_arms":
        return _pick(rng, ("raises both arms", "lifts both arms up", "raises their arms above the head"))
    if a == "side_step":
        return " ".join(w for w in (_pick(rng, ("steps sideways to the", "side steps to the", "shuffles to the")),
                                    spec.direction, reps) if w)
    if a == "crawl":
        return _pick(rng, ("crawls forward", "crawls on hands and knees", "crawls on the ground"))
    raise ValueError(f"unknown action {a!r}")


def caption_variants(specs: list[ActionSpec], rng: np.random.Generator, n: int = 3) -> list[str]:
    """``n`` differently worded captions of a whole action sequence."""
    out: list[str] = []
    for _ in range(20 * n):
        phrases = [describe(s, rng) for s in specs]
        subj = _pick(rng, _SUBJECTS)
        if len(phrases) == 1:
            text = f"{subj} {phrases[0]}"
        else:
            joiner = _pick(rng, (" and then ", " then ", ", after that "))
            text = f"{subj} {phrases[0]}{joiner}{phrases[1]}"
        text = re.sub(r"\s+", " ", text).strip()
        if text not in out:
            out.append(text)
        if len(out) == n:
            break
    while len(out) < n:  # degenerate vocabularies: allow repeats rather than fewer captions
        out.append(out[-1])
    return out


_POS = {
    "a": "DET", "the": "DET", "their": "DET", "both": "DET", "one": "NUM", "two": "NUM", "three": "NUM",
    "person": "NOUN", "someone": "PRON", "man": "NOUN", "woman": "NOUN", "figure": "NOUN", "leg": "NOUN",
    "foot": "NOUN", "hand": "NOUN", "arm": "NOUN", "arms": "NOUN", "fist": "NOUN", "chair": "NOUN", "head": "NOUN",
    "ground": "NOUN", "knees": "NOUN", "hands": "NOUN", "punch": "NOUN", "squat": "NOUN", "time": "NOUN",
    "times": "NOUN", "degrees": "NOUN", "pace": "NOUN", "place": "NOUN",
    "left": "ADJ", "right": "ADJ", "slow": "ADJ", "ninety": "NUM",
    "forward": "ADV", "backward": "ADV", "ahead": "ADV", "slowly": "ADV", "quickly": "ADV", "fast": "ADV",
    "once": "ADV", "twice": "ADV", "thrice": "ADV", "then": "ADV", "up": "ADP", "down": "ADP", "around": "ADV",
    "sideways": "ADV", "above": "ADP", "on": "ADP", "in": "ADP", "to": "ADP", "with": "ADP", "using": "VERB",
    "at": "ADP", "after": "ADP", "that": "DET", "and": "CCONJ",
}
_LEMMA = {"walks": "walk", "strolls": "stroll", "runs": "run", "jogs": "jog", "sprints": "sprint", "jumps": "jump",
          "hops": "hop", "leaps": "leap", "kicks": "kick", "waves": "wave", "punches": "punch", "throws": "throw",
          "squats": "squat", "does": "do", "sits": "sit", "lowers": "lower", "turns": "turn", "rotates": "rotate",
          "raises": "raise", "lifts": "lift", "steps": "step", "shuffles": "shuffle", "crawls": "crawl",
          "using": "use", "arms": "arm", "hands": "hand", "knees": "knee", "times": "time", "degrees": "degree"}


def pos_tokens(caption: str) -> str:
    """HumanML3D-style ``lemma/POS`` tokens of a caption (a small closed-vocabulary tagger)."""
    toks = []
    for w in re.findall(r"[a-z]+", caption.lower()):
        lemma = _LEMMA.get(w, w)
        pos = _POS.get(w, "VERB" if w in _LEMMA and _LEMMA[w] != w and w.endswith("s") else "NOUN")
        toks.append(f"{lemma}/{pos}")
    return " ".join(toks)


_SWAP = {"left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise"}


def mirror_caption(caption: str) -> str:
    """Swap left and right words, as HumanML3D does for its mirrored ``M`` copies."""
    return re.sub(r"\b(left|right|clockwise|counterclockwise)\b", lambda m: _SWAP[m.group(1)], caption)
