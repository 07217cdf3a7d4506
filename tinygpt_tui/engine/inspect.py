"""Look inside a model: next-character probabilities and attention weights.

    from tinygpt_tui.engine.inspect import analyze
    a = analyze(model, tokenizer, "the honou")        # one forward pass, no KV cache
    view = a.at(position=-1, top_k=10, temperature=1.0)
    view.candidates[0].char, view.candidates[0].prob   # ('r', 0.93...)
    view.attention[layer][head]                        # weights over the context, sum to 1
    view.mean_over_heads[layer], view.mean_all         # the "all heads" / "all layers" summaries

``analyze`` runs the plain forward pass once (no KV cache: the same numbers up to rounding) over
the last ``block_size`` known characters and keeps every position's logits and every layer's,
head's and query's attention, so moving the query (``Analysis.at``) costs no new pass. Indices
are 0-based; a negative position counts from the end. At position p the probabilities are of the
character *after* p; before the last position the character that did follow is ranked too
(``actual``). No textual, no rich: cli/inspect.py and app/inspector.py render these numbers.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field

from tinygpt_tui.errors import SettingsError
from tinygpt_tui.tokenizer import CharTokenizer, printable

SPACE, NEWLINE, TAB = "\u00b7", "\u23ce", "\u21e5"  # · ⏎ ⇥


def display_char(ch: str) -> str:
    """A visible, terminal-safe stand-in for one context character, at least one cell wide: space ·,
    newline ⏎, tab ⇥, controls their pictures, a combining mark on a dotted circle."""
    if ch in (" ", "\n", "\t", "\r"):
        return {" ": SPACE, "\n": NEWLINE, "\t": TAB, "\r": "\u240d"}[ch]
    s = printable(ch)
    if s != ch:
        return s
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me") or unicodedata.combining(ch):
        return "\u25cc" + ch
    if cat == "Zs":  # other spaces (ideographic space, nbsp): keep them visible
        return "\u2423" if unicodedata.east_asian_width(ch) not in ("W", "F") else "\u3000"
    return ch


@dataclass
class Ranked:
    """One character with its place in the model's ranking at a position."""

    char: str
    id: int
    rank: int  # 1 = most likely
    prob: float  # probability at the chosen temperature
    raw_prob: float  # probability at temperature 1 (the model's own)
    logit: float

    def to_dict(self) -> dict:
        return {"rank": self.rank, "char": self.char, "id": self.id, "prob": self.prob,
                "raw_prob": self.raw_prob, "logit": self.logit}


@dataclass
class Inspection:
    """The view at one query position: what the model predicts next and where it looks."""

    chars: list[str]  # the context characters (after dropping unknown ones, at most block_size)
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

    @property
    def query_char(self) -> str:
        return self.chars[self.position]

    def top_positions(self, weights: list[float], n: int = 5) -> list[tuple[int, float]]:
        """The n context positions with the most weight, heaviest first."""
        order = sorted(range(len(weights)), key=lambda j: (-weights[j], j))
        return [(j, weights[j]) for j in order[:n] if weights[j] > 0]

    def weight_by_char(self, weights: list[float] | None = None) -> list[tuple[str, float]]:
        """Attention summed per distinct character (default: over all layers and heads), heaviest first."""
        weights = self.mean_all if weights is None else weights
        total: dict[str, float] = {}
        for ch, w in zip(self.chars, weights):
            total[ch] = total.get(ch, 0.0) + w
        return sorted(total.items(), key=lambda kv: -kv[1])

    def to_dict(self) -> dict:
        return {
            "context": "".join(self.chars),
            "chars": list(self.chars),
            "ids": list(self.ids),
            "dropped": list(self.dropped),
            "truncated": self.truncated,
            "position": self.position,
            "query_char": self.query_char,
            "temperature": self.temperature,
            "top_k": [c.to_dict() for c in self.candidates],
            "actual_next": self.actual.to_dict() if self.actual else None,
            "sampled": self.sampled.to_dict() if self.sampled else None,
            "attention": {
                "layers": self.n_layer,
                "heads": self.n_head,
                "keys": len(self.chars),
                "weights": self.attention,
                "mean_over_heads": self.mean_over_heads,
                "mean_all": self.mean_all,
            },
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

    def probs(self, position: int = -1, temperature: float = 1.0):
        """softmax(logits[position] / temperature) as a float64 numpy array (temperature 0: all on the top character)."""
        import numpy as np

        p = self.check_position(position)
        check_temperature(temperature)
        z = self.logits[p].astype(np.float64)
        if temperature == 0:
            out = np.zeros_like(z)
            out[int(np.argmax(z))] = 1.0
            return out
        z = z / temperature
        z = z - z.max()
        e = np.exp(z)
        return e / e.sum()

    def at(self, position: int = -1, top_k: int = 10, temperature: float = 1.0, sampled: str | None = None) -> Inspection:
        import numpy as np

        p = self.check_position(position)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise SettingsError(f"top-k must be at least 1, got {top_k!r}")
        probs = self.probs(p, temperature)
        raw = self.probs(p, 1.0)
        logits = self.logits[p].astype(np.float64)
        order = np.argsort(-logits, kind="stable")
        rank_of = np.empty_like(order)
        rank_of[order] = np.arange(1, len(order) + 1)

        def ranked(i: int) -> Ranked:
            return Ranked(self.vocab[i], int(i), int(rank_of[i]), float(probs[i]), float(raw[i]), float(logits[i]))

        candidates = [ranked(int(i)) for i in order[: min(top_k, len(order))]]
        actual = ranked(self.ids[p + 1]) if p + 1 < self.length else None
        sampled_r, unknown = None, False
        if sampled is not None:
            stoi = {c: i for i, c in enumerate(self.vocab)}
            if sampled in stoi:
                sampled_r = ranked(stoi[sampled])
            else:
                unknown = True
        att = self.attention[:, :, p, :]  # (L, H, T)
        return Inspection(
            chars=list(self.chars), ids=list(self.ids), position=p, temperature=float(temperature),
            candidates=candidates, probs=probs.tolist(), logits=logits.tolist(),
            attention=att.tolist(), mean_over_heads=att.mean(axis=1).tolist(), mean_all=att.mean(axis=(0, 1)).tolist(),
            actual=actual, sampled=sampled_r, sampled_unknown=unknown, dropped=list(self.dropped), truncated=self.truncated,
        )


def check_temperature(t) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
        raise SettingsError(f"temperature must be 0 or more, got {t!r}")
    return float(t)


def context_window(tokenizer: CharTokenizer, text: str, block_size: int) -> tuple[list[int], list[str], int]:
    """(ids, dropped, truncated): the last ``block_size`` known characters of text, the unknown ones left
    out of that window, and how many characters come before it (only the tail is encoded)."""
    n = len(text)
    tail = min(n, 2 * block_size + 16)
    while True:
        enc = tokenizer.encode(text[n - tail :])
        if len(enc.ids) >= block_size or tail >= n:
            break
        tail = min(n, tail * 2)
    ids = enc.ids[-block_size:]
    # characters of the examined tail that lie before the window
    extra = len(enc.ids) - len(ids)
    truncated = n - tail
    if extra:
        stoi, seen, cut = tokenizer.stoi, 0, 0
        for ch in text[n - tail :]:
            cut += 1
            if ch in stoi:
                seen += 1
                if seen == extra:
                    break
        truncated += cut
    window_text = text[truncated:]
    dropped = [c for c in enc.dropped if c in window_text]
    return ids, dropped, truncated


def analyze(model, tokenizer: CharTokenizer, text: str) -> Analysis:
    """Run the model once (no KV cache) over the last block_size known characters of text."""
    import numpy as np
    import torch

    if not isinstance(text, str):
        raise SettingsError("the context must be text")
    cfg = model.cfg
    if tokenizer.vocab_size != cfg.vocab_size:
        raise SettingsError(f"the vocabulary has {tokenizer.vocab_size} characters but the model expects {cfg.vocab_size}")
    ids, dropped, truncated = context_window(tokenizer, text, cfg.block_size)
    if not ids:
        if dropped:
            raise SettingsError("no character of the prompt is in the model's vocabulary (left out: "
                                + printable(" ".join(dropped[:20])) + ")")
        raise SettingsError("the prompt is empty: give at least one character")
    from tinygpt_tui.engine.lens import evaluating, residual_hooks

    with torch.inference_mode(), evaluating(model), residual_hooks(model, []) as stream:
        logits, _, attns = model(torch.tensor([ids], device=next(model.parameters()).device), return_attention=True)
    att = torch.stack([a[0] for a in attns]).float().cpu().numpy()  # (L, H, T, T)
    return Analysis(
        chars=[tokenizer.chars[i] for i in ids], ids=ids, logits=logits[0].float().cpu().numpy().astype(np.float32),
        attention=att, vocab=list(tokenizer.chars), dropped=dropped, truncated=truncated,
        residual=torch.stack([r[0] for r in stream]), model=model,
    )


def inspect(model, tokenizer: CharTokenizer, text: str, position: int = -1, top_k: int = 10,
            temperature: float = 1.0, sampled: str | None = None) -> Inspection:
    """``analyze`` then ``at``: the view at one position in one call."""
    check_temperature(temperature)
    return analyze(model, tokenizer, text).at(position, top_k, temperature, sampled)
