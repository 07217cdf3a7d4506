"""One decoding step of a GPT as a single compiled function (numba), for a CPU.

``fastdecode.Decoder`` spends most of a character on the fixed cost of small
PyTorch operations (about fifteen per layer, each a few microseconds of
dispatch before any arithmetic) and on ``torch._weight_int8pack_mm``, which is
built for many rows and reads one row's weights at about 5 GB/s. Here the whole
step for one token, every layer, is one call into machine code that numba
compiles from the plain loops below (once per machine; the result is cached on
disk): int8 weights with one scale per output row, fp32 activations, keys and
values written into the decoder's own cache in place. The loops are the model's
arithmetic written out, so they double as a readable reference for what one
token's forward pass does.

The compiled function releases the GIL, so a thread that generates does not
hold up a user interface in the same process.

If numba is missing (it is an optional speed-up on platforms without wheels),
``available()`` is False and the decoder keeps its PyTorch path.
"""

from __future__ import annotations

import math

try:  # optional: the PyTorch path works without it
    import numba
    import numpy as np
except ImportError:  # pragma: no cover - exercised only where numba has no wheel
    numba = None

LAYERNORM, RMSNORM = 0, 1
GELU, SWIGLU = 0, 1
POS_NONE, POS_TABLE, POS_ROPE, POS_ALIBI = 0, 1, 2, 3

# The model's arguments of ``step``, in order, after (token, pos, start, end) and before (kv, logits).
ARGS = (
    "kinds", "eps", "emb", "pos_table", "slopes", "inv_freq",
    "n1w", "n1b", "qkv_w", "qkv_s", "qkv_b", "proj_w", "proj_s", "proj_b",
    "n2w", "n2b", "up_w", "up_s", "up_b", "down_w", "down_s", "down_b",
    "nfw", "nfb", "head_w", "head_s", "head_b",
)


def available() -> bool:
    return numba is not None


if numba is not None:
    # reassociation lets LLVM vectorize the dot products (sums in a different order: float rounding only)
    _FLAGS = dict(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, boundscheck=False)

    @numba.njit(**_FLAGS)
    def _matvec(W, s, b, x, out):
        """out = (W @ x) * s + b for W (N, K) int8 (one scale per row) or fp32 (s = 1)."""
        N, K = W.shape
        for n in range(N):
            acc = np.float32(0.0)
            for k in range(K):
                acc += np.float32(W[n, k]) * x[k]
            out[n] = acc * s[n] + b[n]

    @numba.njit(**_FLAGS)
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

    @numba.njit(**_FLAGS)
    def _rope(v, pos, inv_freq):
        """Rotate the pairs (i, i + D/2) of one head's vector by the angles of position ``pos``."""
        half = inv_freq.shape[0]
        for i in range(half):
            ang = pos * inv_freq[i]
            c, s = np.float32(math.cos(ang)), np.float32(math.sin(ang))
            a, b = v[i], v[i + half]
            v[i] = a * c - b * s
            v[i + half] = b * c + a * s

    @numba.njit(**_FLAGS)
    def step(
        tok, pos, start, end, kinds, eps,  # token id, its position, live cache entries [start, end), (norm, ffn, pos) kinds
        emb, pos_table, slopes, inv_freq,  # (V, C) embedding, (P, C) position table, (H,) ALiBi slopes, (D/2,) RoPE
        n1w, n1b, qkv_w, qkv_s, qkv_b, proj_w, proj_s, proj_b,  # per layer, stacked on a first axis of L
        n2w, n2b, up_w, up_s, up_b, down_w, down_s, down_b,
        nfw, nfb, head_w, head_s, head_b,  # the final norm and the output layer
        kv,  # (L, 2, H, capacity, D) keys and values; this token's go to index ``end``
        logits,  # (V,) out
    ):
        norm_kind, ffn_kind, pos_kind = kinds[0], kinds[1], kinds[2]
        L, _, H, _, D = kv.shape
        C = emb.shape[1]
        F = up_w.shape[1]
        hidden = F // 2 if ffn_kind == SWIGLU else F
        x = emb[tok].copy()  # (C,) the residual stream
        if pos_kind == POS_TABLE:
            x += pos_table[pos]
        h = np.empty(C, np.float32)
        qkv = np.empty(3 * C, np.float32)
        y = np.empty(C, np.float32)
        o = np.empty(C, np.float32)
        u = np.empty(F, np.float32)
        act = np.empty(hidden, np.float32)
        n_keys = end + 1 - start
        w = np.empty(n_keys, np.float32)
        for l in range(L):
            # attention: q, k, v of this token; k and v join the cache at index ``end``
            _norm(x, n1w[l], n1b[l], norm_kind, eps, h)
            _matvec(qkv_w[l], qkv_s[l], qkv_b[l], h, qkv)  # q comes pre-scaled by 1/sqrt(D)
            for hd in range(H):
                q = qkv[hd * D : (hd + 1) * D]
                k = kv[l, 0, hd, end]
                k[:] = qkv[C + hd * D : C + (hd + 1) * D]
                kv[l, 1, hd, end, :] = qkv[2 * C + hd * D : 2 * C + (hd + 1) * D]
                if pos_kind == POS_ROPE:
                    _rope(q, pos, inv_freq)
                    _rope(k, pos, inv_freq)
                top = np.float32(-np.inf)
                for j in range(n_keys):  # scores over the live keys
                    kj = kv[l, 0, hd, start + j]
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
                out = y[hd * D : (hd + 1) * D]
                out[:] = 0.0
                for j in range(n_keys):  # the weighted sum of the values
                    vj = kv[l, 1, hd, start + j]
                    wj = w[j] / total
                    for d in range(D):
                        out[d] += wj * vj[d]
            _matvec(proj_w[l], proj_s[l], proj_b[l], y, o)
            x += o
            # feed-forward
            _norm(x, n2w[l], n2b[l], norm_kind, eps, h)
            _matvec(up_w[l], up_s[l], up_b[l], h, u)
            if ffn_kind == SWIGLU:
                for i in range(hidden):
                    g = u[i]
                    act[i] = g / (np.float32(1.0) + np.float32(math.exp(-g))) * u[hidden + i]
            else:
                for i in range(hidden):
                    g = u[i]
                    act[i] = np.float32(0.5) * g * (np.float32(1.0) + np.float32(math.erf(g * np.float32(0.7071067811865476))))
            _matvec(down_w[l], down_s[l], down_b[l], act, o)
            x += o
        _norm(x, nfw, nfb, norm_kind, eps, h)
        _matvec(head_w, head_s, head_b, h, logits)

    @numba.njit(cache=True, nogil=True)
    def sample(logits, temperature, top_k, top_p, u):
        """The next token drawn from ``logits`` (V,): softmax(logits / temperature), cut to the
        ``top_k`` most likely (0: no cut; ties at the k-th value are kept) and to the smallest set
        whose probability reaches ``top_p`` (1: no cut), then the token where the running sum
        of the probabilities first passes ``u`` (uniform in [0, 1)) of their total.
        The same rule as ``sampler.draw`` for PyTorch tensors, in float64."""
        V = logits.shape[0]
        z = logits.astype(np.float64) / temperature
        keep = np.ones(V, np.bool_)
        if 0 < top_k < V:
            kth = np.sort(z)[V - top_k]
            for i in range(V):
                keep[i] = z[i] >= kth
        top = -np.inf
        for i in range(V):
            if keep[i] and z[i] > top:
                top = z[i]
        p = np.zeros(V, np.float64)
        for i in range(V):
            if keep[i]:
                p[i] = math.exp(z[i] - top)
        if top_p < 1.0:
            total = p.sum()
            before = 0.0  # the probability of the tokens ranked above this one
            for i in np.argsort(-p, kind="mergesort"):
                mass = p[i]
                if before >= top_p * total:
                    p[i] = 0.0
                before += mass
        target = u * p.sum()
        run = 0.0
        last = 0
        for i in range(V):
            if p[i] > 0.0:
                run += p[i]
                last = i
                if run > target:
                    return i
        return last
