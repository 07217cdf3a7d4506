"""Look deeper: the logit lens and ablation (of an ``analyze`` pass), the embedding map, head roles.

The residual stream is read with forward hooks on the model's own blocks, so the lens sees exactly
the numbers of the forward pass (the last layer's lens is the model's prediction).
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from tinygpt_tui.errors import SettingsError


@contextmanager
def residual_hooks(model, store: list):
    """While open, each forward pass appends to store the residual stream (B, T, C) before the first
    block (the embeddings) and after every block: n_layer + 1 tensors."""
    handles = [model.blocks[0].register_forward_pre_hook(lambda m, args: store.append(args[0]))]
    for block in model.blocks:
        handles.append(block.register_forward_hook(lambda m, args, out: store.append(out[0] if isinstance(out, tuple) else out)))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


@contextmanager
def evaluating(model):
    """The model in eval mode (no dropout) for the duration, then back as it was."""
    was = model.training
    try:
        yield model.eval()
    finally:
        model.train(was)


@dataclass
class LensRow:
    layer: int  # 0 = the embeddings, l = after block l
    top: list[tuple[str, float]]  # (char, probability), most likely first
    actual: tuple[int, float] | None  # rank and probability of the character that came next


def logit_lens(analysis, position: int = -1, top_k: int = 5) -> list[LensRow]:
    """For each layer: softmax(head(norm(residual))) at the query position."""
    p = analysis.check_position(position)
    model = analysis.model
    with torch.inference_mode():
        probs = model.head(model.norm(analysis.residual[:, p])).float().softmax(-1).cpu().numpy()  # (L + 1, V)
    nxt = analysis.ids[p + 1] if p + 1 < analysis.length else None
    rows = []
    for layer, pr in enumerate(probs):
        order = np.argsort(-pr, kind="stable")[:top_k]
        actual = (int((pr > pr[nxt]).sum()) + 1, float(pr[nxt])) if nxt is not None else None
        rows.append(LensRow(layer, [(analysis.vocab[i], float(pr[i])) for i in order], actual))
    return rows


@dataclass
class Ablation:
    position: int
    target: str  # the top prediction at the position
    logprob: float  # its log-probability with the context intact
    deltas: list[float]  # (position + 1,) change in that log-probability with character j replaced (nan: not yet)


def _ablate_range(analysis, p: int, start: int, end: int):
    """Characters start..end replaced one per row, in one batched pass over start..p; the shared
    characters before start go once (batch 1) into a KV cache that every row reads."""
    model, ids = analysis.model, analysis.ids
    dev = analysis.residual.device
    n, cache = end - start + 1, None
    with torch.inference_mode(), evaluating(model):
        if start:
            cache = model.new_cache()
            model(torch.tensor([ids[:start]], device=dev), cache=cache)
            cache.k = [t.expand(n + 1, -1, -1, -1).contiguous() for t in cache.k]
            cache.v = [t.expand(n + 1, -1, -1, -1).contiguous() for t in cache.v]
        x = torch.tensor([ids[start : p + 1]] * (n + 1), device=dev)  # row n: intact
        mean, rows = model.tok_emb.weight.mean(0), torch.arange(n, device=dev)

        def replace(module, args, out):
            out = out.clone()
            out[rows, rows] = mean.to(out.dtype)  # row r: character start + r replaced
            return out

        handle = model.tok_emb.register_forward_hook(replace)
        try:
            logp = model(x, cache=cache)[0][:, -1].float().log_softmax(-1).cpu().numpy()  # (n + 1, V)
        finally:
            handle.remove()
    top = int(np.argmax(logp[n]))
    return analysis.vocab[top], float(logp[n, top]), (logp[:n, top] - logp[n, top]).tolist()


def ablation_steps(analysis, position: int = -1, chunk: int = 32):
    """Each character j <= position replaced by the mean token embedding (an "average character"):
    the change in the top prediction's log-probability. Nearest first, ``chunk`` per batched pass,
    yielding the Ablation so far after each pass."""
    p = analysis.check_position(position)
    deltas = [float("nan")] * (p + 1)
    for end in range(p, -1, -chunk):
        start = max(0, end - chunk + 1)
        target, logprob, deltas[start : end + 1] = _ablate_range(analysis, p, start, end)
        yield Ablation(p, target, logprob, list(deltas))


def ablate(analysis, position: int = -1, chunk: int | None = 32) -> Ablation:
    """``ablation_steps`` to the end (chunk None: every character in one pass)."""
    p = analysis.check_position(position)
    *_, last = ablation_steps(analysis, p, chunk or p + 1)
    return last


@dataclass
class EmbeddingMap:
    which: str  # "embedding" or "output" (the head's rows, when untied)
    chars: list[str]  # the N shown, most frequent first
    xy: np.ndarray  # (N, 2) PCA coordinates
    explained: tuple[float, float]  # share of the variance along each axis
    method: str = "PCA"
    vocab_size: int = 0  # the vocabulary's: the map may show every token of it


def weights_of(model, which: str = "embedding"):
    if which not in ("embedding", "output"):
        raise SettingsError(f"which must be embedding or output, got {which!r}")
    return (model.tok_emb.weight if which == "embedding" else model.head.weight).detach().float().cpu().numpy()


def pca2(w: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The rows of w on their two main directions; each axis's sign fixed so that the row farthest
    along it is on the positive side (an SVD may return either sign)."""
    c = w - w.mean(0)
    u, s, _ = np.linalg.svd(c.astype(np.float64), full_matrices=False)
    xy = u[:, :2] * s[:2]
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    for k in range(2):
        if xy[np.argmax(np.abs(xy[:, k])), k] < 0:
            xy[:, k] *= -1
    ratios = (s[:2] ** 2 / ((s**2).sum() or 1.0)).tolist() + [0.0, 0.0]
    return xy, (ratios[0], ratios[1])


def embedding_map(model, tokenizer, top: int = 80, text: str | None = None, which: str = "embedding") -> EmbeddingMap:
    """The ``top`` characters, most frequent in text first (else in vocabulary order), placed by PCA."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise SettingsError(f"top must be at least 1, got {top!r}")
    counts = Counter(text or "") if tokenizer.kind == "char" else Counter(tokenizer.encode(text or "").ids)
    key = (lambda i: counts[tokenizer.labels[i]]) if tokenizer.kind == "char" else counts.__getitem__
    ids = sorted(range(tokenizer.vocab_size), key=lambda i: (-key(i), i))[:top]
    xy, explained = pca2(weights_of(model, which))
    return EmbeddingMap(which, [tokenizer.labels[i] for i in ids], xy[ids], explained, vocab_size=tokenizer.vocab_size)


def neighbours(model, tokenizer, char: str, k: int = 10, which: str = "embedding") -> list[tuple[str, float]]:
    """The k characters whose vectors point most nearly the same way as char's (cosine similarity)."""
    me = tokenizer.token_id(char)
    if me is None:  # a token as the map and the inspector show it (·the for " the", ⏎ for a newline)
        from tinygpt_tui.engine.inspect import display_char

        me = next((i for i, label in enumerate(tokenizer.labels) if display_char(label) == char), None)
    if me is None:
        raise SettingsError(f"{char!r} is not a {tokenizer.unit} of the model's vocabulary")
    w = weights_of(model, which).astype(np.float64)
    w = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    cos = w @ w[me]
    order = [i for i in np.argsort(-cos, kind="stable") if i != me][:k]
    return [(tokenizer.labels[i], float(cos[i])) for i in order]


@dataclass
class HeadRole:
    layer: int
    head: int
    distance: float  # mean distance back (in characters) of the attention
    previous: float  # share of attention on the previous character
    word_start: float  # on the first character of the current word (of the clause, where spaced is False)
    induction: float  # on the character after an earlier occurrence of the current one
    role: str  # the hint: the strongest pattern, or ""
    windows: int = 0  # how many windows of the validation split were measured (fewer than asked when it is short)
    spaced: bool = True  # whether the text puts spaces between its words (Chinese does not: a "word" is a clause)

    def line(self) -> str:
        hint = f"  → {self.role}" if self.role else ""
        return (f"L{self.layer} h{self.head}: distance {self.distance:4.1f} · previous {self.previous:4.0%} · "
                f"{'word' if self.spaced else 'clause'} start {self.word_start:4.0%} · induction {self.induction:4.0%}{hint}")


def spaced(letters: int, spaces: int) -> bool:
    """Whether a text of this many letters and spaces separates its words by spaces (English: one space in
    about 5 letters); Chinese has next to none, and a run of letters there is a clause between punctuation marks."""
    return spaces * 20 >= letters


def head_roles(model, tokenizer, text, windows: int = 16) -> list[HeadRole]:
    """Per-head attention statistics over ``windows`` evenly spaced windows of the validation split
    (the last 10% of text, or its token ids: a Dataset's val array, memory-mapped or not). Hints, not
    proofs: a share is of the attention of the queries where the pattern exists (an earlier word
    start, an earlier occurrence). In a text without spaces between words a word is a clause (spaced False)."""
    from tinygpt_tui.data import split_text

    ids = np.array(tokenizer.encode(split_text(text)[1]).ids) if isinstance(text, str) else text
    T = min(model.cfg.block_size, len(ids))
    if T < 4:
        raise SettingsError("the validation split has too few known characters to measure the heads")
    starts = np.linspace(0, len(ids) - T, num=min(windows, len(ids) - T + 1)).astype(int)
    x = np.stack([ids[s : s + T] for s in starts]).astype(np.int64)  # (B, T)
    with torch.inference_mode(), evaluating(model):
        _, _, att = model(torch.tensor(x, device=next(model.parameters()).device), return_attention=True)
    att = torch.stack(att).float().cpu().numpy()  # (L, B, H, T, T)
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    labels = tokenizer.labels
    alnum = np.vectorize(lambda t: labels[t].lstrip(" ").isalnum())(x)  # (B, T): inside a word (a BPE token may bring its space)
    lead = np.vectorize(lambda t: labels[t][:1] == " ")(x)  # a token that starts a word with its space (BPE)
    begins = alnum & (lead | ~np.pad(alnum, ((0, 0), (1, 0)))[:, :-1])
    words = spaced(int(alnum.sum()), int(np.vectorize(lambda t: labels[t].count(" "))(x).sum()))
    # the first token of the word at each position: the last position where a word began
    start = np.maximum.accumulate(np.where(begins, np.arange(T), 0), axis=1)
    word = (alnum[:, :, None] & (start[:, :, None] < i)) & (j == start[:, :, None])  # (B, T, T)
    same = (x[:, None, :] == x[:, :, None]) & (j < i)  # key k holds the query's character
    induct = np.zeros_like(same)
    induct[:, :, 1:] = same[:, :, :-1]
    induct &= j < i  # the character after an earlier occurrence

    def share(mask):  # (L, H): the mean over the queries that have the pattern
        return (att * mask[:, None]).sum((1, 3, 4)) / max(int(mask.any(-1).sum()), 1)

    prev = (i - j == 1)[None].repeat(len(x), 0)
    dist, stats = (att * (i - j)).sum(-1).mean((1, 3)), [share(prev), share(word), share(induct)]
    out = []
    for layer in range(att.shape[0]):
        for h in range(att.shape[2]):
            p, w, n = (float(s[layer, h]) for s in stats)
            best = max((p, "previous-character head"), (w, f"{'word' if words else 'clause'}-start head"), (n, "induction-style head"))
            role = best[1] if best[0] >= 0.4 else ("local head" if dist[layer, h] < 2 else "")
            out.append(HeadRole(layer, h, float(dist[layer, h]), p, w, n, role, len(x), words))
    return out


def head_hints(model, tokenizer, text) -> list[str] | None:
    """head_roles as the model card's lines, or None where the validation split is too short."""
    try:
        return [r.line() for r in head_roles(model, tokenizer, text)]
    except SettingsError:
        return None
