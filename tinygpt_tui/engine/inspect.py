"""Look inside a model: next-character probabilities and attention weights.

    a = analyze(model, tokenizer, "the honou")       # one forward pass over the context
    view = a.at(position=-1, top_k=10, temperature=1.0)
    view.candidates[0].char, view.attention[layer][head], view.mean_over_heads[layer], view.mean_all

The pass keeps every position's logits and attention, so moving the query costs no new pass.
Positions are 0-based (negative counts from the end); at position p the probabilities are of the
character *after* p. No textual, no rich: cli/inspect.py and app/inspector.py draw these numbers.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field

from tinygpt_tui.errors import SettingsError
from tinygpt_tui.tokenizer import Tokenizer, byte_key, printable, whole_characters

SHOWN = {" ": "\u00b7", "\n": "\u23ce", "\t": "\u21e5", "\r": "\u240d"}  # · ⏎ ⇥ ␍


def display_char(ch: str) -> str:
    """A visible, terminal-safe stand-in for one context character, at least one cell wide: space ·,
    newline ⏎, tab ⇥, controls their pictures, a combining mark on a dotted circle. A token of
    several characters (BPE) shows each of them so."""
    if len(ch) != 1:
        return "".join(map(display_char, ch)) or "\u2205"  # (∅: no token is empty; a caller's empty text)
    if ch in SHOWN:
        return SHOWN[ch]
    s = printable(ch)
    if s != ch:
        return s
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me") or unicodedata.combining(ch):
        return "\u25cc" + ch
    if cat == "Zs":  # other spaces (ideographic space, nbsp): keep them visible
        return "\u2423" if unicodedata.east_asian_width(ch) not in ("W", "F") else "\u3000"
    return ch


def softmax(z, temperature: float = 1.0):
    """softmax(z / temperature) in float64 numpy (temperature 0: all on the top entry)."""
    import numpy as np

    z = np.asarray(z, dtype=np.float64)
    if temperature == 0:
        out = np.zeros_like(z)
        out[int(np.argmax(z))] = 1.0
        return out
    with np.errstate(over="ignore"):  # a tiny temperature: the others' logits / it overflow to -inf, exp to 0
        e = np.exp((z - z.max()) / temperature)
    return e / e.sum()


@dataclass
class Ranked:
    """One character with its place in the model's ranking at a position."""

    rank: int  # 1 = most likely
    char: str
    id: int
    prob: float  # probability at the chosen temperature
    raw_prob: float  # probability at temperature 1 (the model's own)
    logit: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Inspection:
    """The view at one query position: what the model predicts next and where it looks."""

    chars: list[str]  # the context characters (unknown ones left out, at most block_size)
    ids: list[int]
    position: int  # query position, 0-based, within chars
    temperature: float
    candidates: list[Ranked]  # top-k, most likely first
    probs: list[float]  # (V,) softmax(logits / temperature) at the position
    logits: list[float]  # (V,)
    attention: list[list[list[float]]]  # (L, H, T): weights of the query over the context, 0 after it
    mean_over_heads: list[list[float]]  # (L, T)
    mean_all: list[float]  # (T,) over all layers and heads
    actual: Ranked | None = None  # the character that followed in the context (position < last)
    sampled: Ranked | None = None  # a character asked about (``at(..., sampled=ch)``)
    sampled_unknown: bool = False  # the asked-about character is not in the vocabulary
    dropped: list[str] = field(default_factory=list)  # unknown characters left out of the context
    truncated: int = 0  # characters before the window, not seen by the model

    n_layer = property(lambda self: len(self.attention))
    n_head = property(lambda self: len(self.attention[0]) if self.attention else 0)
    query_char = property(lambda self: self.chars[self.position])

    def top_positions(self, weights: list[float], n: int = 5) -> list[tuple[int, float]]:
        """The n context positions with the most weight, heaviest first."""
        order = sorted(range(len(weights)), key=lambda j: (-weights[j], j))
        return [(j, weights[j]) for j in order[:n] if weights[j] > 0]

    def weight_by_char(self) -> list[tuple[str, float]]:
        """Attention over all layers and heads summed per distinct character, heaviest first."""
        total: Counter[str] = Counter()
        for ch, w in zip(self.chars, self.mean_all):
            total[ch] += w
        return total.most_common()

    def byte_key(self, bars: bool = True, lens=None, ablation=None) -> str | None:
        """The one key line both faces show where a byte token (‹e2›, tokenizer.byte_key) is on screen, else None: over
        the context, the top-k bars and the token asked about (bars), a logit lens's rows, an ablation's target."""
        shown = [*(c.char for c in self.candidates), self.sampled.char if self.sampled else ""] if bars else []
        return byte_key([*self.chars, *shown, *(c for r in lens or [] for c, _ in r.top), ablation.target if ablation else ""])

    def to_dict(self) -> dict:
        return {
            "context": "".join(self.chars), "chars": list(self.chars), "ids": list(self.ids),
            "dropped": list(self.dropped), "truncated": self.truncated, "position": self.position,
            "query_char": self.query_char, "temperature": self.temperature,
            "top_k": [c.to_dict() for c in self.candidates],
            "actual_next": self.actual.to_dict() if self.actual else None,
            "sampled": self.sampled.to_dict() if self.sampled else None,
            "attention": {"layers": self.n_layer, "heads": self.n_head, "keys": len(self.chars), "weights": self.attention,
                          "mean_over_heads": self.mean_over_heads, "mean_all": self.mean_all},
        }


@dataclass
class Analysis:
    """One forward pass over a context: logits (T, V) float32 numpy, attention (L, H, T, T) with
    rows the query positions and columns the keys (causal: zero above the diagonal)."""

    chars: list[str]
    ids: list[int]
    logits: object  # numpy (T, V)
    attention: object  # numpy (L, H, T, T)
    vocab: list[str]
    dropped: list[str] = field(default_factory=list)
    truncated: int = 0
    residual: object = None  # torch (L + 1, T, C): the embeddings, then the stream after each block (lens.py)
    model: object = field(default=None, repr=False)  # for lens.py's logit lens and ablation

    length = property(lambda self: len(self.ids))
    n_layer = property(lambda self: int(self.attention.shape[0]))
    n_head = property(lambda self: int(self.attention.shape[1]))

    def check_position(self, position: int) -> int:
        T = self.length
        if isinstance(position, bool) or not isinstance(position, int):
            raise SettingsError(f"position must be a whole number, got {position!r}")
        if not -T <= position < T:
            raise SettingsError(f"position {position} is outside the context of {T} character(s): use 0..{T - 1} (or -1 for the last)")
        return position % T

    def token_index(self, text: str) -> int | None:
        """The id of the token that is this text, or that the views show as this text (· for a space, ⏎ for a
        newline, ·the for a BPE token " the"), or None."""
        if text in self.vocab:
            return self.vocab.index(text)
        return next((i for i, label in enumerate(self.vocab) if display_char(label) == text), None)

    def at(self, position: int = -1, top_k: int = 10, temperature: float = 1.0, sampled: str | None = None) -> Inspection:
        import numpy as np

        p = self.check_position(position)
        check_top_k(top_k)
        logits = self.logits[p].astype(np.float64)
        probs, raw = softmax(logits, check_temperature(temperature)), softmax(logits)
        order = np.argsort(-logits, kind="stable")
        rank_of = np.empty_like(order)
        rank_of[order] = np.arange(1, len(order) + 1)

        def ranked(i: int) -> Ranked:
            return Ranked(int(rank_of[i]), self.vocab[i], int(i), float(probs[i]), float(raw[i]), float(logits[i]))

        asked = self.token_index(sampled) if sampled is not None else None
        att = self.attention[:, :, p, :]  # (L, H, T)
        return Inspection(
            chars=list(self.chars), ids=list(self.ids), position=p, temperature=float(temperature),
            candidates=[ranked(int(i)) for i in order[:top_k]], probs=probs.tolist(), logits=logits.tolist(),
            attention=att.tolist(), mean_over_heads=att.mean(axis=1).tolist(), mean_all=att.mean(axis=(0, 1)).tolist(),
            actual=ranked(self.ids[p + 1]) if p + 1 < self.length else None,
            sampled=ranked(asked) if asked is not None else None, sampled_unknown=sampled is not None and asked is None,
            dropped=list(self.dropped), truncated=self.truncated,
        )


def check_top_k(k, what: str = "top-k") -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SettingsError(f"{what} must be at least 1, got {k!r}")
    return k


def check_temperature(t) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
        raise SettingsError(f"temperature must be 0 or more, got {t!r}")
    return float(t)


def context_window(tokenizer: Tokenizer, text: str, block_size: int) -> tuple[list[int], list[str], int]:
    """(ids, dropped, truncated): the last ``block_size`` known tokens of text, the distinct
    unknown characters among them, and how many characters come before that window. Reads backwards
    from the end, so a long text costs only its tail."""
    if tokenizer.kind != "char":  # BPE: every character is known; a token is at least a byte, at most a few words
        text, dropped = whole_characters(text)  # (but a command line's undecodable byte, a lone surrogate)
        tail = text[-64 * block_size :]
        ids = tokenizer.encode(tail).ids[-block_size:]
        return ids, dropped, len(text) - len(tokenizer.decode(ids))
    ids, dropped, start = [], [], len(text)
    # the window begins just after the last known character before it (or at the text's start)
    while start > 0 and (len(ids) < block_size or text[start - 1] not in tokenizer.stoi):
        start -= 1
        ch = text[start]
        if ch in tokenizer.stoi:
            ids.append(tokenizer.stoi[ch])
        else:
            dropped.append(ch)
    return ids[::-1], list(dict.fromkeys(reversed(dropped))), start


def tokens_slid(tokenizer: Tokenizer, old_ids: list[int], chars: int) -> int:
    """How many of the window's tokens ``old_ids`` fell out of it when its start moved ``chars`` characters on
    (``truncated`` counts characters; a BPE token is several): the tokens whose text those characters were."""
    if tokenizer.kind == "char" or chars <= 0:
        return chars
    lo, hi = 0, len(old_ids)  # the most tokens whose decoded text is at most chars long (it grows with k)
    while lo < hi:
        k = (lo + hi + 1) // 2
        lo, hi = (k, hi) if len(tokenizer.decode(old_ids[:k])) <= chars else (lo, k - 1)
    return lo


def analyze(model, tokenizer: Tokenizer, text: str) -> Analysis:
    """Run the model once (no KV cache) over the last block_size known tokens of text."""
    import numpy as np
    import torch

    from tinygpt_tui.engine.lens import evaluating, residual_hooks

    if not isinstance(text, str):
        raise SettingsError("the context must be text")
    cfg = model.cfg
    if tokenizer.vocab_size != cfg.vocab_size:
        raise SettingsError(f"the vocabulary has {tokenizer.vocab_size} {tokenizer.unit}s but the model expects {cfg.vocab_size}")
    ids, dropped, truncated = context_window(tokenizer, text, cfg.block_size)
    if not ids:
        if dropped:
            raise SettingsError("no character of the prompt is in the model's vocabulary (left out: "
                                + printable(" ".join(dropped[:20])) + ")")
        raise SettingsError("the prompt is empty: give at least one character")
    with torch.inference_mode(), evaluating(model), residual_hooks(model, []) as stream:
        logits, _, attns = model(torch.tensor([ids], device=next(model.parameters()).device), return_attention=True)
    return Analysis(
        chars=[tokenizer.labels[i] for i in ids], ids=ids, logits=logits[0].float().cpu().numpy().astype(np.float32),
        attention=torch.stack([a[0] for a in attns]).float().cpu().numpy(), vocab=list(tokenizer.labels),
        dropped=dropped, truncated=truncated, residual=torch.stack([r[0] for r in stream]), model=model,
    )

