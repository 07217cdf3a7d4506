"""A GPT's decoding step as one compiled function (numba): the decoder on a CPU.

In PyTorch a one-token forward pass is mostly the fixed cost of small operations (about
fifteen per layer, each microseconds of dispatch). Here the whole step, every layer, is one
call into machine code that numba compiles from the plain loops below (once per machine,
cached on disk): int8 weights with a scale per output row (or fp32), fp32 activations, keys
and values written into the decoder's buffer in place; a prompt in one call, four tokens
sharing each pass over a weight row. The loops are model.py's arithmetic written out, and
the tests hold their logits to the model's. The step releases the GIL (a thread that
generates does not hold up a user interface), and nothing here imports torch: ``JitModel``
takes the weights as numpy arrays, from a model folder's safetensors file or a PyTorch model.
Without numba, ``available()`` is False and the sampler runs the model's own KV cache.
"""

from __future__ import annotations

import math

import numpy as np

from tinygpt_tui.config import RELATIVE, GPTConfig, Window, alibi_slope_list, rope_frequencies, sinusoidal_table
from tinygpt_tui.sampler import draw as plain_draw

try:  # optional: the model's KV cache works without it
    import numba
except ImportError:  # pragma: no cover - exercised only where numba has no wheel
    numba = None

LAYERNORM, RMSNORM = 0, 1
GELU, SWIGLU = 0, 1
POS_NONE, POS_TABLE, POS_ROPE, POS_ALIBI = 0, 1, 2, 3

# The model's arguments of ``step``, in order, after (tokens, pos, start, end) and before (kv, logits).
ARGS = (
    "kinds", "eps", "emb", "pos_table", "slopes", "inv_freq",
    "n1w", "n1b", "qkv_w", "qkv_s", "qkv_b", "proj_w", "proj_s", "proj_b",
    "n2w", "n2b", "up_w", "up_s", "up_b", "down_w", "down_s", "down_b",
    "nfw", "nfb", "head_w", "head_s", "head_b",
)


def available() -> bool:
    """numba is installed and speed is not switched off (TINYGPT_FAST=0)."""
    from tinygpt_tui.fast import enabled

    return numba is not None and enabled()


if numba is not None:
    # reassociation lets LLVM vectorize the dot products (sums in a different order: float rounding only)
    _FLAGS = dict(nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, boundscheck=False)

    def _compiled(**flags):
        """numba.njit, cached on disk (beside this file, or in the user's cache folder when this
        one is read-only); compiled in memory at each run where no folder can be written."""

        def wrap(fn):
            try:
                return numba.njit(cache=True, **flags)(fn)
            except RuntimeError:  # "cannot cache function ...: no locator available"
                return numba.njit(cache=False, **flags)(fn)

        return wrap

    @_compiled(**_FLAGS)
    def _matvec(W, s, b, x, out):
        """out = (W @ x) * s + b for W (N, K) int8 (one scale per row) or fp32 (s = 1)."""
        N, K = W.shape
        for n in range(N):
            acc = np.float32(0.0)
            for k in range(K):
                acc += np.float32(W[n, k]) * x[k]
            out[n] = acc * s[n] + b[n]

    @_compiled(**_FLAGS)
    def _norm(x, w, b, kind, eps, out):
        C = x.shape[0]
        if kind == LAYERNORM:
            mean = np.float32(0.0)
            for i in range(C):
                mean += x[i]
            mean /= C
            var = np.float32(0.0)
            for i in range(C):
                d = x[i] - mean
                var += d * d
            r = np.float32(1.0 / math.sqrt(var / C + eps))
            for i in range(C):
                out[i] = (x[i] - mean) * r * w[i] + b[i]
        else:
            ms = np.float32(0.0)
            for i in range(C):
                ms += x[i] * x[i]
            r = np.float32(1.0 / math.sqrt(ms / C + eps))
            for i in range(C):
                out[i] = x[i] * r * w[i]

    @_compiled(**_FLAGS)
    def _rope(v, pos, inv_freq):
        """Rotate the pairs (i, i + D/2) of one head's vector by the angles of position ``pos``."""
        half = inv_freq.shape[0]
        for i in range(half):
            ang = pos * inv_freq[i]
            c, s = np.float32(math.cos(ang)), np.float32(math.sin(ang))
            a, b = v[i], v[i + half]
            v[i] = a * c - b * s
            v[i + half] = b * c + a * s

    # erf(x) as x P(x^2) / Q(x^2) on [-4, 4] (erf is +-1 in float32 beyond): the rational
    # approximation of Eigen and XLA, within 4e-7 of math.erf (tests/test_fastdecode.py). Unlike
    # math.erf, which is a call per element, it vectorizes. Coefficients from the highest power down.
    _ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
              -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
    _ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
              -1.42647390514189e-02)

    @_compiled(inline="always", **_FLAGS)
    def erf(x):
        x = min(max(x, np.float32(-4.0)), np.float32(4.0))
        x2, p, q = x * x, np.float32(0.0), np.float32(0.0)
        for c in _ERF_P:  # Horner's rule
            p = p * x2 + np.float32(c)
        for c in _ERF_Q:
            q = q * x2 + np.float32(c)
        return x * p / q

    @_compiled(**_FLAGS)
    def _matmat(W, s, b, X, out):
        """out[t] = (W @ X[t]) * s + b for T rows of X (T, K): four rows share each pass over a
        weight row (1.5x the speed of four matrix-vector products), the rest (one, while
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
            _matvec(W, s, b, X[t], out[t])

    @_compiled(**_FLAGS)
    def step(
        toks, pos, start, end, kinds, eps,  # T token ids (int64), the first one's position, the live
        # cache entries [start, end) before them (config.Window), kinds of norm, ffn and positions
        emb, pos_table, slopes, inv_freq,  # (V, C) embedding, (P, C) position table, (H,) ALiBi slopes, (D/2,) RoPE
        n1w, n1b, qkv_w, qkv_s, qkv_b, proj_w, proj_s, proj_b,  # per layer, stacked on a first axis of L
        n2w, n2b, up_w, up_s, up_b, down_w, down_s, down_b,
        nfw, nfb, head_w, head_s, head_b,  # the final norm and the output layer
        kv,  # (L, 2, H, capacity, D) keys and values; the new tokens' go to [end, end + T)
        logits,  # (V,) out: after the last token
    ):
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
                if ffn_kind == SWIGLU:
                    for i in range(hidden):
                        g = u[t, i]
                        act[t, i] = g / (np.float32(1.0) + np.float32(math.exp(-g))) * u[t, hidden + i]
                else:
                    for i in range(hidden):
                        g = u[t, i]
                        act[t, i] = np.float32(0.5) * g * (np.float32(1.0) + erf(g * np.float32(0.7071067811865476)))
            _matmat(down_w[l], down_s[l], down_b[l], act, o)
            x += o
        _norm(x[T - 1], nfw, nfb, norm_kind, eps, h[0])
        _matvec(head_w, head_s, head_b, h[0], logits)

    draw = _compiled(nogil=True)(plain_draw)  # sampler.draw itself, compiled
else:  # (nothing here runs: available() is False)
    draw = plain_draw


# ---------------------------------------------------------------- the model and a stream, without torch
NORM_EPS = {"layernorm": 1e-5, "rmsnorm": 1e-6}  # nn.LayerNorm's default and model.RMSNorm's


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
        self._laid_out: dict[str, tuple] = {}

    @classmethod
    def from_torch(cls, model) -> "JitModel":
        return cls(model.cfg, {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()})

    def decoder(self, precision: str = "auto") -> "JitDecoder":
        return JitDecoder(self, precision)

    def args(self, precision: str = "int8") -> tuple:
        """The arguments of ``step`` named in ARGS, for "int8" or "fp32" weights."""
        if precision not in ("int8", "fp32"):
            raise ValueError(f"precision must be int8 or fp32, got {precision!r}")
        if precision not in self._laid_out:
            self._laid_out[precision] = self._lay_out(precision == "int8")
        return self._laid_out[precision]

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
        a["inv_freq"] = np.array(rope_frequencies(D, cfg.rope_base), np.float64)
        a["kinds"] = np.array([RMSNORM if cfg.norm == "rmsnorm" else LAYERNORM, SWIGLU if cfg.ffn == "swiglu" else GELU, pos_kind,
                               cfg.block_size], np.int64)
        a["eps"] = NORM_EPS[cfg.norm]
        return tuple(a[name] for name in ARGS)


class JitDecoder(Window):
    """One stream of tokens through a ``JitModel``, one ``step`` call per ``feed`` (no torch).

        dec = model.decoder()
        logits = dec.feed([ids...])   # (V,) float32 after the last id: the decoder's buffer,
        logits = dec.feed([next_id])  # valid until the next call; dec.reset() starts over
    """

    draw = staticmethod(draw)  # the sampler's draw, compiled

    def __init__(self, model: JitModel, precision: str = "auto"):
        cfg = model.cfg
        super().__init__(cfg.block_size, sliding=cfg.pos_encoding in RELATIVE)
        if precision not in ("auto", "int8", "fp32"):
            raise ValueError(f"precision must be auto, int8 or fp32, got {precision!r}")
        self.precision = "fp32" if precision == "fp32" else "int8"  # (auto: int8)
        self.cfg, self.args = cfg, model.args(self.precision)
        self.kv = np.zeros((cfg.n_layer, 2, cfg.n_head, self.capacity, cfg.n_embd // cfg.n_head), np.float32)
        self.logits = np.empty(cfg.vocab_size, np.float32)

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
        step(np.asarray(ids, np.int64), self.pos, start, end, *self.args, self.kv, self.logits)
        self.advance(len(ids))
        return self.logits
