"""A GPT's decoding step as one compiled function (numba): the decoder on a CPU.

In PyTorch a one-token forward pass is mostly the fixed cost of small operations (about fifteen
per layer, each microseconds of dispatch). Here ``step``, every layer, is one call into machine
code that numba compiles from the plain loops below: int8 weights with a scale per output row
(or fp32), fp32 activations, keys and values written into the decoder's buffer in place; a
prompt in one call, four tokens sharing each pass over a weight row. ``sample`` runs step and
draw for a run of tokens in one call that releases the GIL. The tests hold the logits to
model.py's. Nothing here imports torch: ``JitModel`` takes the weights as numpy arrays.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np

from tinygpt_tui import sampler
from tinygpt_tui.config import RELATIVE, GPTConfig, Window, alibi_slope_list, rope_frequencies, sinusoidal_table
from tinygpt_tui.fast import enabled

try:  # optional: the model's KV cache works without it
    import numba
except ImportError:  # pragma: no cover - exercised only where numba has no wheel
    numba = None

LAYERNORM, RMSNORM = 0, 1
GELU, SWIGLU = 0, 1
POS_NONE, POS_TABLE, POS_ROPE, POS_ALIBI = 0, 1, 2, 3

# The model's part of ``step``'s arguments (one tuple), in order.
ARGS = (
    "kinds", "eps", "emb", "pos_table", "slopes", "inv_freq",
    "n1w", "n1b", "qkv_w", "qkv_s", "qkv_b", "proj_w", "proj_s", "proj_b",
    "n2w", "n2b", "up_w", "up_s", "up_b", "down_w", "down_s", "down_b",
    "nfw", "nfb", "head_w", "head_s", "head_b",
)
WAIT_S = 0.75  # how long a new decoder waits for the compiled step (loaded from numba's cache: a fraction of a second)


def available() -> bool:
    """numba is installed and speed is not switched off (TINYGPT_FAST=0)."""
    return numba is not None and enabled()


# erf(x) as x P(x^2) / Q(x^2) on [-4, 4] (+-1 in float32 beyond), Eigen's and XLA's: within 4e-7 of
# math.erf, and unlike it (a call per element) it vectorizes. Coefficients from the highest power down.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


def plain_erf(x):
    """erf of a float32 number (compiled) or array (numpy)."""
    x = np.minimum(np.maximum(x, np.float32(-4.0)), np.float32(4.0))
    x2, p, q = x * x, np.float32(0.0), np.float32(0.0)
    for c in _ERF_P:  # Horner's rule
        p = p * x2 + np.float32(c)
    for c in _ERF_Q:
        q = q * x2 + np.float32(c)
    return x * p / q


def erf_array(x: np.ndarray) -> np.ndarray:
    """plain_erf of a float32 array, its steps done in place (half the time of plain_erf's new arrays at one token)."""
    x = np.clip(x, np.float32(-4.0), np.float32(4.0))
    x2 = x * x
    p, q = np.full_like(x, _ERF_P[0]), np.full_like(x, _ERF_Q[0])
    for c in _ERF_P[1:]:  # Horner's rule
        p *= x2
        p += np.float32(c)
    for c in _ERF_Q[1:]:
        q *= x2
        q += np.float32(c)
    p *= x
    p /= q
    return p


VECDOT = hasattr(np, "vecdot")  # numpy 2


def plain_step(toks, pos, start, end, model, kv, logits):
    """``step`` in numpy, whole arrays at a time: the decoder while numba compiles the step (20-40 s,
    once per machine). Not the model's KVCache: importing torch alone takes longer than this
    brings the first character (about 2 s from the command, against 5 s through torch)."""
    (kinds, eps, emb, pos_table, slopes, inv_freq, n1w, n1b, qkv_w, qkv_s, qkv_b, proj_w, proj_s, proj_b,
     n2w, n2b, up_w, up_s, up_b, down_w, down_s, down_b, nfw, nfb, head_w, head_s, head_b) = model
    norm_kind, ffn_kind, pos_kind, window = kinds
    L, _, H, _, D = kv.shape
    T = len(toks)

    inv_c = np.float32(1.0 / emb.shape[1])

    def norm(x, w, b):  # (sums times 1/C: ndarray.mean's own set-up cost more than the sum, at one token)
        if norm_kind == LAYERNORM:
            x = x - x.sum(-1, keepdims=True) * inv_c
        return x / np.sqrt((x * x).sum(-1, keepdims=True) * inv_c + np.float32(eps)) * w + b  # (b: zeros for RMSNorm)

    def linear(W, b, x):  # x @ W.T, without BLAS's threads (they spun a core for a vector: 10x the time)
        return (np.vecdot(W, x[:, None]) if VECDOT else x @ W.T) + b  # (W fp32, its scales in it: plain_args)

    def rotate(v):  # RoPE, as _rope
        a, b = v[..., : D // 2], v[..., D // 2 :]
        return np.concatenate((a * cos - b * sin, b * cos + a * sin), axis=-1)

    x = emb[toks] + (pos_table[pos : pos + T] if pos_kind == POS_TABLE else np.float32(0))  # (T, C)
    angles = np.arange(pos, pos + T, dtype=np.float32)[:, None] * inv_freq
    cos, sin = np.cos(angles), np.sin(angles)  # (T, D/2)
    dist = (end + np.arange(T))[:, None] - np.arange(start, end + T)  # (T, S): how far back each key is
    hidden = (dist < 0) | (dist >= window)  # (T, S): the keys a query does not see
    for l in range(L):
        qkv = linear(qkv_w[l], qkv_b[l], norm(x, n1w[l], n1b[l]))
        q, k, v = qkv.reshape(T, 3, H, D).transpose(1, 2, 0, 3)  # 3 x (H, T, D)
        if pos_kind == POS_ROPE:
            q, k = rotate(q), rotate(k)
        kv[l, 0, :, end : end + T], kv[l, 1, :, end : end + T] = k, v
        scores = q @ kv[l, 0, :, start : end + T].transpose(0, 2, 1)  # (H, T, S)
        if pos_kind == POS_ALIBI:
            scores -= slopes[:, None, None] * dist.astype(np.float32)
        scores[:, hidden] = -np.inf
        w = np.exp(scores - scores.max(-1, keepdims=True))
        y = (w / w.sum(-1, keepdims=True)) @ kv[l, 1, :, start : end + T]  # (H, T, D)
        x = x + linear(proj_w[l], proj_b[l], y.transpose(1, 0, 2).reshape(T, -1))
        u = linear(up_w[l], up_b[l], norm(x, n2w[l], n2b[l]))
        if ffn_kind == SWIGLU:
            g, val = np.split(u, 2, axis=-1)
            act = g / (np.float32(1.0) + np.exp(-g)) * val
        else:
            act = np.float32(0.5) * u * (np.float32(1.0) + erf_array(u * np.float32(0.7071067811865476)))
        x = x + linear(down_w[l], down_b[l], act)
    logits[:] = linear(head_w, head_b, norm(x[-1:], nfw, nfb))[0]


def plain_args(args: tuple) -> tuple:
    """``step``'s arguments as plain_step takes them: each int8 weight times its rows' scales, once, in fp32
    (numpy cast the int8 rows at every token: 40% of its step), and no scales; fp32 weights with scales of 1
    (the fp32 decoder's) as they are, not a second copy of the model while numba compiles."""
    a = dict(zip(ARGS, args))
    for key in ("qkv", "proj", "up", "down", "head"):
        w, s = a[f"{key}_w"], a[f"{key}_s"]
        same = w.dtype == np.float32 and bool(np.all(s == 1))
        a[f"{key}_w"], a[f"{key}_s"] = w if same else np.ascontiguousarray(w.astype(np.float32) * s[..., None]), None
    return tuple(a[name] for name in ARGS)


if numba is not None:
    _uncached: list = []  # functions compiled at each run (no folder for numba's cache)
    # reassociation lets LLVM vectorize the dot products (sums in a different order: float rounding only)
    _FLAGS = dict(nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, boundscheck=False)

    def _compiled(**flags):
        """numba.njit, cached on disk (beside this file, or in the user's cache folder when this
        one is read-only); compiled in memory at each run where no folder can be written."""

        def wrap(fn):
            try:
                return numba.njit(cache=True, **flags)(fn)
            except RuntimeError:  # "cannot cache function ...: no locator available"
                _uncached.append(fn.__name__)
                return numba.njit(cache=False, **flags)(fn)

        return wrap

    @_compiled(**_FLAGS)
    def _norm(x, w, b, kind, eps, out):
        """LayerNorm: (x - mean) / sqrt(var + eps) * w + b; RMSNorm the same without the mean (b = 0)."""
        C, mean, var = x.shape[0], np.float32(0.0), np.float32(0.0)
        if kind == LAYERNORM:
            for i in range(C):
                mean += x[i]
            mean /= C
        for i in range(C):
            var += (x[i] - mean) * (x[i] - mean)
        r = np.float32(1.0 / math.sqrt(var / C + eps))
        for i in range(C):
            out[i] = (x[i] - mean) * r * w[i] + b[i]

    @_compiled(**_FLAGS)
    def _rope(v, pos, inv_freq):
        """Rotate the pairs (i, i + D/2) of one head's vector by the angles of position ``pos``
        (float32 angles, as model.rope_angles)."""
        half = inv_freq.shape[0]
        for i in range(half):
            ang = np.float32(pos) * inv_freq[i]
            c, s = math.cos(ang), math.sin(ang)
            a, b = v[i], v[i + half]
            v[i] = a * c - b * s
            v[i + half] = b * c + a * s

    erf = _compiled(inline="always", **_FLAGS)(plain_erf)

    @_compiled(**_FLAGS)
    def _matmat(W, s, b, X, out):
        """out[t] = (W @ X[t]) * s + b for T rows of X (T, K), W (N, K) int8 (one scale per row) or
        fp32 (s = 1): four rows share each pass over a weight row, the rest (one, while
        generating) one at a time."""
        N, K = W.shape
        T = X.shape[0]
        blocked = T - T % 4
        for t in range(0, blocked, 4):
            x0, x1, x2, x3 = X[t], X[t + 1], X[t + 2], X[t + 3]
            for n in range(N):
                a0 = a1 = a2 = a3 = np.float32(0.0)
                for k in range(K):
                    w = np.float32(W[n, k])
                    a0 += w * x0[k]
                    a1 += w * x1[k]
                    a2 += w * x2[k]
                    a3 += w * x3[k]
                out[t, n] = a0 * s[n] + b[n]
                out[t + 1, n] = a1 * s[n] + b[n]
                out[t + 2, n] = a2 * s[n] + b[n]
                out[t + 3, n] = a3 * s[n] + b[n]
        for t in range(blocked, T):
            for n in range(N):
                acc = np.float32(0.0)
                for k in range(K):
                    acc += np.float32(W[n, k]) * X[t, k]
                out[t, n] = acc * s[n] + b[n]

    @_compiled(**_FLAGS)
    def step(
        toks, pos, start, end,  # T token ids (int64), the first one's position, the live cache entries [start, end) before them
        model,  # JitModel.args: kinds, eps, (V, C) embedding, (P, C) position table, (H,) ALiBi slopes, (D/2,) RoPE
        # frequencies, the layers' norms and linear layers (weights, scales, biases) stacked on a first axis of L, the final ones
        kv,  # (L, 2, H, capacity, D) keys and values; the new tokens' go to [end, end + T)
        logits,  # (V,) out: after the last token
    ):
        (kinds, eps, emb, pos_table, slopes, inv_freq, n1w, n1b, qkv_w, qkv_s, qkv_b, proj_w, proj_s, proj_b,
         n2w, n2b, up_w, up_s, up_b, down_w, down_s, down_b, nfw, nfb, head_w, head_s, head_b) = model
        norm_kind, ffn_kind, pos_kind, window = kinds[0], kinds[1], kinds[2], kinds[3]
        L, _, H, _, D = kv.shape
        T, C, F = toks.shape[0], emb.shape[1], up_w.shape[1]
        hidden = F // 2 if ffn_kind == SWIGLU else F
        x = np.empty((T, C), np.float32)  # the residual stream of each new token
        for t in range(T):
            x[t] = emb[toks[t]]
            if pos_kind == POS_TABLE:
                x[t] += pos_table[pos + t]
        h, y, o = np.empty((T, C), np.float32), np.empty((T, C), np.float32), np.empty((T, C), np.float32)
        qkv, u, act = np.empty((T, 3 * C), np.float32), np.empty((T, F), np.float32), np.empty((T, hidden), np.float32)
        w = np.empty(end + T - start, np.float32)  # attention weights of one query
        for l in range(L):
            # attention: q, k, v of the new tokens; k and v join the cache at [end, end + T)
            for t in range(T):
                _norm(x[t], n1w[l], n1b[l], norm_kind, eps, h[t])
            _matmat(qkv_w[l], qkv_s[l], qkv_b[l], h, qkv)  # q comes pre-scaled by 1/sqrt(D)
            for t in range(T):
                for hd in range(H):
                    k = kv[l, 0, hd, end + t]
                    k[:] = qkv[t, C + hd * D : C + (hd + 1) * D]
                    kv[l, 1, hd, end + t, :] = qkv[t, 2 * C + hd * D : 2 * C + (hd + 1) * D]
                    if pos_kind == POS_ROPE:
                        _rope(qkv[t, hd * D : (hd + 1) * D], pos + t, inv_freq)
                        _rope(k, pos + t, inv_freq)
            for t in range(T):
                first = max(start, end + t - (window - 1))  # the keys token t sees: at most `window`
                n_keys = end + t + 1 - first
                for hd in range(H):
                    q = qkv[t, hd * D : (hd + 1) * D]
                    top = np.float32(-np.inf)
                    for j in range(n_keys):  # scores over the keys it sees, itself the last
                        kj = kv[l, 0, hd, first + j]
                        sc = np.float32(0.0)
                        for d in range(D):
                            sc += q[d] * kj[d]
                        if pos_kind == POS_ALIBI:
                            sc -= slopes[hd] * (n_keys - 1 - j)
                        w[j] = sc
                        top = max(top, sc)
                    total = np.float32(0.0)
                    for j in range(n_keys):
                        w[j] = math.exp(w[j] - top)
                        total += w[j]
                    out = y[t, hd * D : (hd + 1) * D]
                    out[:] = 0.0
                    for j in range(n_keys):  # the weighted sum of the values
                        vj = kv[l, 1, hd, first + j]
                        wj = w[j] / total
                        for d in range(D):
                            out[d] += wj * vj[d]
            _matmat(proj_w[l], proj_s[l], proj_b[l], y, o)
            x += o
            # feed-forward
            for t in range(T):
                _norm(x[t], n2w[l], n2b[l], norm_kind, eps, h[t])
            _matmat(up_w[l], up_s[l], up_b[l], h, u)
            for t in range(T):
                for i in range(hidden):
                    g = u[t, i]
                    if ffn_kind == SWIGLU:  # SiLU of the gate times the value
                        act[t, i] = g / (np.float32(1.0) + np.float32(math.exp(-g))) * u[t, hidden + i]
                    else:  # GELU
                        act[t, i] = np.float32(0.5) * g * (np.float32(1.0) + erf(g * np.float32(0.7071067811865476)))
            _matmat(down_w[l], down_s[l], down_b[l], act, o)
            x += o
        _norm(x[T - 1], nfw, nfb, norm_kind, eps, h[0])
        _matmat(head_w, head_s, head_b, h[:1], logits.reshape(1, -1))

    draw = _compiled(nogil=True)(sampler.draw)  # sampler.draw itself, compiled

    @_compiled(nogil=True)
    def sample(out, uniforms, temperature, top_k, top_p, pos, start, end, model, kv, logits):
        """sampler.sample compiled, for a JitDecoder's buffers: tokens drawn into ``out`` (one
        uniform number each) and fed back, all but the last; returns how many (fewer than
        len(out) when the buffer fills: the caller makes room)."""
        tok = np.empty(1, np.int64)
        for i in range(out.shape[0]):
            out[i] = draw(logits, temperature, top_k, top_p, uniforms[i])
            if i == out.shape[0] - 1 or end == kv.shape[3]:
                return i + 1
            tok[0] = out[i]
            step(tok, pos, start, end, model, kv, logits)
            pos += 1
            end += 1
        return out.shape[0]

_ready: dict = {}  # the compiled functions' argument types -> an Event set when they are ready


def compiling(types, cfg: GPTConfig | None = None, precision: str = "int8") -> threading.Event:
    """Get ``sample`` and ``step`` ready for these argument types in a thread, once per process; the event
    is set when they are. Compiled on this machine before: loaded from numba's cache, a fraction of a
    second. The first time (given the model's ``cfg``): compiled in a process of its own, then loaded
    (fast/warm.py says why). Where numba cannot cache, or the note of it cannot be written, compiled here."""
    if types not in _ready:
        _ready[types] = ready = threading.Event()
        if numba is not None:
            from tinygpt_tui.fast import warm

            beside = (cfg is not None and not _uncached and not os.environ.get(warm.CHILD_ENV) and not warm.known(types)
                      and warm.can_remember())  # (without the note, every run would start one)
            work, job = (warm.compile_beside, (types, ready, cfg, precision)) if beside else (compile_here, (types, ready))
            threading.Thread(target=work, args=job, name="tinygpt-compile", daemon=bool(_uncached) or beside).start()
    return _ready[types]


def compile_here(types, ready) -> None:
    """Compile (or load from numba's cache) ``sample`` and ``step`` for these types here; then set ``ready``."""
    try:
        sample.compile(types)
        step.compile(types[:1] + types[5:])  # feed's call: an int64 array of tokens, pos, start, end, model, kv, logits
        if not _uncached:
            from tinygpt_tui.fast import warm

            warm.remember(types)
    finally:  # (if it failed, the next call compiles again, and says why)
        ready.set()


# ---------------------------------------------------------------- the model and a stream, without torch


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) float -> int8 weights (N, K) and one fp32 scale per row (N,): w ~ q * scale."""
    w = np.asarray(w, dtype=np.float32)
    scale = np.maximum(np.abs(w).max(axis=1), 1e-12) / np.float32(127.0)
    q = np.clip(np.round(w / scale[:, None]), -127, 127).astype(np.int8)
    return np.ascontiguousarray(q), scale.astype(np.float32)


class JitModel:
    """A GPT for ``step``: its config and its weights as numpy arrays (the model's state dict),
    laid out on first use per precision: the layers stacked, the attention scale folded into the
    query rows, int8 rows with a scale each (or, for "fp32", the fp32 weights with scales of 1).
    ``JitModel(cfg, arrays).decoder()`` (or ``JitModel.from_torch(gpt)``): int8, or "fp32"."""

    def __init__(self, cfg: GPTConfig, arrays: dict):
        self.cfg = cfg
        self.arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
        self._laid_out: dict[bool, tuple] = {}  # int8 or not -> args

    @classmethod
    def from_torch(cls, model) -> "JitModel":
        return cls(model.cfg, {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()})

    def decoder(self, precision: str = "auto") -> "JitDecoder":
        return JitDecoder(self, precision)

    def args(self, precision: str = "int8") -> tuple:
        """The arguments of ``step`` named in ARGS, for "int8" (or "auto") or "fp32" weights."""
        if precision not in ("auto", "int8", "fp32"):
            raise ValueError(f"precision must be auto, int8 or fp32, got {precision!r}")
        int8 = precision != "fp32"
        if int8 not in self._laid_out:
            self._laid_out[int8] = self._lay_out(int8)
        return self._laid_out[int8]

    def _lay_out(self, int8: bool) -> tuple:
        cfg, arrays = self.cfg, self.arrays
        C, H, L = cfg.n_embd, cfg.n_head, cfg.n_layer
        D = C // H

        def linear(name, rows=None, int8=int8):
            w = arrays[f"{name}.weight"]
            b = arrays.get(f"{name}.bias", np.zeros(w.shape[0], np.float32))
            if rows is not None:  # a factor per output row: the attention scale of q
                w, b = w * rows[:, None], b * rows
            if int8:
                q, s = quantize_rows(w)
                return q, s, b
            return w, np.ones(w.shape[0], np.float32), b

        def norm(name):
            w = arrays[f"{name}.weight"]
            return w, arrays.get(f"{name}.bias", np.zeros_like(w))

        def stacked(parts):
            return tuple(np.ascontiguousarray(np.stack(p)) for p in zip(*parts))

        qscale = np.ones(3 * C, np.float32)
        qscale[:C] = 1.0 / np.sqrt(D)  # softmax(q k / sqrt(D)): scale q once, in its weights
        blocks = [f"blocks.{i}" for i in range(L)]
        a = dict(zip(("n1w", "n1b"), stacked(norm(f"{b}.norm1") for b in blocks)))
        a |= dict(zip(("n2w", "n2b"), stacked(norm(f"{b}.norm2") for b in blocks)))
        for key, name, rows in (("qkv", "attn.qkv", qscale), ("proj", "attn.proj", None), ("up", "ffn.up", None), ("down", "ffn.down", None)):
            a |= dict(zip((f"{key}_w", f"{key}_s", f"{key}_b"), stacked(linear(f"{b}.{name}", rows) for b in blocks)))
        a["nfw"], a["nfb"] = norm("norm")
        a["emb"] = arrays["tok_emb.weight"]
        head = "head" if "head.weight" in arrays and not cfg.tie_weights else "tok_emb"
        # the output layer: int8 only when it is big (a 65-character vocabulary is 16k weights)
        w, s, _ = linear(head, int8=int8 and cfg.vocab_size * C >= 2**18)
        a["head_w"], a["head_s"], a["head_b"] = w, s, np.zeros(cfg.vocab_size, np.float32)
        pos_kind = {"learned": POS_TABLE, "sinusoidal": POS_TABLE, "rope": POS_ROPE, "alibi": POS_ALIBI, "none": POS_NONE}[cfg.pos_encoding]
        a["pos_table"] = np.zeros((1, C), np.float32)
        if cfg.pos_encoding == "learned":
            a["pos_table"] = arrays["pos_emb.weight"]
        elif cfg.pos_encoding == "sinusoidal":
            a["pos_table"] = np.array(sinusoidal_table(cfg.block_size, C), np.float32)
        a["slopes"] = np.array(alibi_slope_list(H), np.float32)
        a["inv_freq"] = np.array(rope_frequencies(D, cfg.rope_base), np.float32)
        a["kinds"] = np.array([RMSNORM if cfg.norm == "rmsnorm" else LAYERNORM, SWIGLU if cfg.ffn == "swiglu" else GELU, pos_kind,
                               cfg.block_size], np.int64)
        a["eps"] = 1e-6 if cfg.norm == "rmsnorm" else 1e-5  # model.RMSNorm's, nn.LayerNorm's default
        return tuple(a[name] for name in ARGS)


class JitDecoder(Window):
    """One stream of tokens through a ``JitModel``: ``feed(ids)`` returns the (V,) logits after the
    last id (the decoder's buffer, valid until the next call), ``sample(...)`` is sampler.sample in
    one compiled call, ``reset()`` starts over. Until the compiled functions are ready
    (``compiled``), plain_step and the sampler's loop compute the same (up to float rounding)."""

    def __init__(self, model: JitModel, precision: str = "auto"):
        cfg = model.cfg
        super().__init__(cfg.block_size, sliding=cfg.pos_encoding in RELATIVE)
        self.cfg, self.args = cfg, model.args(precision)  # (which refuses an unknown precision)
        self.precision = "fp32" if precision == "fp32" else "int8"
        self.kv = np.zeros((cfg.n_layer, 2, cfg.n_head, self.capacity, cfg.n_embd // cfg.n_head), np.float32)
        self.logits = np.empty(cfg.vocab_size, np.float32)
        self.plain: tuple | None = None  # plain_step's arguments, made when it first runs
        types = numba.typeof((np.empty(1, np.int64), np.empty(1), 0.0, 0, 0.0, 0, 0, 0, self.args, self.kv, self.logits)).types if numba else ()
        self.ready = compiling(types, cfg, self.precision)
        self.ready.wait(WAIT_S)

    @property
    def compiled(self) -> bool:
        """The compiled functions run (else the numpy ones: the first seconds ever on a machine)."""
        return self.ready.is_set()

    def move(self, start: int, end: int) -> None:
        self.kv[:, :, :, : end - start] = self.kv[:, :, :, start:end].copy()  # (the ranges may overlap: copy first)

    def feed(self, ids) -> np.ndarray:
        if len(ids) == 0:
            raise ValueError("feed needs at least one token")
        V = self.cfg.vocab_size
        for tok in ids:
            if not 0 <= tok < V:  # (the compiled loops do not check bounds)
                raise IndexError(f"token id {tok} is outside the vocabulary of {V}")
        start, end = self.make_room(len(ids))
        if self.compiled:
            step(np.asarray(ids, np.int64), self.pos, start, end, self.args, self.kv, self.logits)
        else:
            self.plain = self.plain or plain_args(self.args)
            plain_step(np.asarray(ids, np.int64), self.pos, start, end, self.plain, self.kv, self.logits)
        self.advance(len(ids))
        return self.logits

    def sample(self, n: int, uniforms, temperature: float, top_k: int, top_p: float) -> list[int]:
        if not self.compiled:
            return sampler.sample(self, n, uniforms, temperature, top_k, top_p)
        out, u = np.empty(n, np.int64), np.ascontiguousarray(uniforms[:n], np.float64)
        count = sample(out, u, float(temperature), int(top_k), float(top_p), self.pos, self.start, self.end, self.args, self.kv, self.logits)
        self.advance(count - 1)  # (the last is not fed)
        return out[:count].tolist()
