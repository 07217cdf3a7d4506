"""Batch-1 decoding on a CPU in PyTorch operations: the fallback where numba is missing.

The default CPU decoder is jitstep.JitDecoder, one compiled call per token. This
module is the same computation in PyTorch operations, for machines without
numba (``stepper(..., backend="torch")`` picks it anywhere), and the reference
the compiled step is tested against.

Generating a character is a forward pass over one token. On a CPU that pass is
bound by two things the training-shaped code in ``model.py`` does not care
about: reading every weight once per character (13 MB for the shipped 3.2M
Shakespeare model, in fp32) and the fixed cost of each small operation (5 to 70 us here,
about twenty of them per layer). ``Decoder`` cuts both:

* Weights are stored as int8 with one fp32 scale per output row (weight-only
  quantization, as in llama.cpp or gpt-fast) and multiplied with
  ``torch._weight_int8pack_mm`` on bf16 activations: a quarter of the bytes per
  character. Norms, attention, softmax and the residual stream stay in fp32;
  the feed-forward's GELU takes its tanh form there (a third of the cost of
  erf's on this CPU, within 1e-3 of it: far inside the int8 tolerance).
* One step is about fifteen operations per layer: no module calls, views
  instead of copies, the keys and values of a layer written with one copy into
  a preallocated (2, H, capacity, D) buffer, the attention scale folded into
  the query weights, no masks for a single query, and ALiBi's bias for a full
  window made once.

``precision="fp32"`` keeps the model's own weights (no quantization) and still
saves the small operations. The logits match ``GPT.forward`` to within the
tolerance stated in tests/test_fastdecode.py (exactly the same computation up to
float rounding in fp32; int8 changes the validation loss by less than 0.01).

The window rules (jitstep.Window) are ``KVCache``'s: with a relative position
encoding the cache slides (the oldest key is dropped once the window is full);
with an absolute one the caller re-feeds the window (see ``sampler.Generation``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tinygpt_tui.fast import decode as jitstep
from tinygpt_tui.model import GPT, alibi_slopes, rope_rotate, sinusoidal_table

PRECISIONS = ("auto", "int8", "fp32")


def int8_available() -> bool:
    return hasattr(torch, "_weight_int8pack_mm")


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K) float -> int8 weights (N, K) and one scale per row (N,): w ~ q * scale (jitstep.quantize_rows)."""
    q, scale = jitstep.quantize_rows(w.detach().float().cpu().numpy())
    return torch.from_numpy(q), torch.from_numpy(scale)


class _Linear:
    """y = x @ W.T (+ b): int8 rows with a scale each for one token at a time, fp32 for several.

    A prompt (many tokens at once) is a matrix product that runs near the CPU's
    peak in fp32, faster than the int8 kernel, which is built for one row at a time.
    """

    __slots__ = ("bias", "scale", "w8", "w32")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, int8: bool, row_scale: torch.Tensor | None = None):
        w = weight.detach().float()
        if row_scale is not None:  # fold a per-row factor (the attention scale) into the weights
            w = w * row_scale[:, None]
            bias = None if bias is None else bias.detach().float() * row_scale
        self.w32 = w.contiguous()
        self.w8 = self.scale = None
        if int8 and w.size(1) % 16 == 0:  # (the kernel reads the rows 16 at a time: other widths give garbage)
            self.w8, s = quantize_rows(w)
            self.scale = s.to(torch.bfloat16)
        self.bias = None if bias is None else bias.detach().float().contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (T, K) -> (T, N): bf16 from the int8 kernel (one token: callers add it into fp32
        or feed it on, saving conversions), else fp32."""
        if self.w8 is not None and x.size(0) == 1:
            y = torch._weight_int8pack_mm(x if x.dtype == torch.bfloat16 else x.to(torch.bfloat16), self.w8, self.scale)
            return y if self.bias is None else y.float().add_(self.bias)
        y = F.linear(x.float(), self.w32)
        return y if self.bias is None else y.add_(self.bias)


def _norm(m):
    w = m.weight.detach().float()
    b = getattr(m, "bias", None)
    b = None if b is None else b.detach().float()
    if isinstance(m, torch.nn.LayerNorm):
        return ("layernorm", w, b, m.eps)
    return ("rmsnorm", w, None, m.eps)


class Weights:
    """The model's weights laid out for decoding (and quantized); shared by every Decoder of a model."""

    def __init__(self, model: GPT, int8: bool):
        cfg = model.cfg
        C, H = cfg.n_embd, cfg.n_head
        D = C // H
        qscale = torch.ones(3 * C)
        qscale[:C] = 1.0 / math.sqrt(D)  # softmax(q k / sqrt(D)): scale q once, in its weights
        self.layers = []
        for block in model.blocks:
            a, f = block.attn, block.ffn
            self.layers.append((
                _norm(block.norm1),
                _Linear(a.qkv.weight, a.qkv.bias, int8, qscale),
                _Linear(a.proj.weight, a.proj.bias, int8),
                _norm(block.norm2),
                _Linear(f.up.weight, f.up.bias, int8),
                _Linear(f.down.weight, f.down.bias, int8),
            ))
        self.norm = _norm(model.norm)
        self.tok_emb = model.tok_emb.weight.detach().float().contiguous()
        # the output layer: quantize it only when it is big (a 65-character vocabulary is 16k weights)
        self.head = _Linear(model.head.weight, None, int8 and cfg.vocab_size * C >= 2**18)
        self.pos_table = None
        if cfg.pos_encoding == "learned":
            self.pos_table = model.pos_emb.weight.detach().float().contiguous()
        elif cfg.pos_encoding == "sinusoidal":
            self.pos_table = sinusoidal_table(cfg.block_size, C)


def _cached(model: GPT, key, make):
    """``make()``, kept on the model until a parameter changes (every in-place change, an
    optimizer step or load_state_dict, bumps a tensor's version)."""
    versions = tuple((id(p), p._version) for p in model.parameters())
    cache = model.__dict__.setdefault("_decode_cache", {})
    hit = cache.get(key)
    if hit is None or hit[0] != versions:
        hit = cache[key] = (versions, make())
    return hit[1]


def weights_for(model: GPT, int8: bool) -> Weights:
    """The PyTorch decoding weights of ``model``, made once per model version."""
    return _cached(model, ("torch", int8), lambda: Weights(model, int8))


def jit_model_for(model: GPT) -> jitstep.JitModel:
    """The compiled step's weights of ``model``, made once per model version."""
    return _cached(model, "numba", lambda: jitstep.JitModel.from_torch(model))


class Decoder(jitstep.Window):
    """One stream of tokens through a trained GPT, for inference on a CPU.

        dec = Decoder(model)               # int8 weights where available
        logits = dec.feed([ids...])        # (V,) fp32 logits after the last id
        logits = dec.feed([next_id])       # and so on; dec.reset() starts over

    Each decoder has its own keys and values, so two streams never mix; the
    (quantized) weights are shared between the decoders of a model and made
    again after it changes. ``pos`` is the absolute position of the next token.
    """

    backend = "torch"

    def __init__(self, model: GPT, precision: str = "auto"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        cfg = self.cfg = model.cfg
        int8 = precision in ("auto", "int8") and int8_available()
        self.precision = "int8" if int8 else "fp32"
        self.w = weights_for(model, int8)
        self.C, self.H = cfg.n_embd, cfg.n_head
        self.D = self.C // self.H
        self.swiglu = cfg.ffn == "swiglu"
        self.alibi = alibi_slopes(self.H)[:, None, None] if cfg.pos_encoding == "alibi" else None  # (H, 1, 1)
        if self.alibi is not None:  # the bias of one query over a full window, made once: (H, 1, block_size)
            self.alibi_row = -self.alibi * torch.arange(cfg.block_size - 1, -1, -1, dtype=torch.float32)
        self.rope = cfg.pos_encoding == "rope"
        super().__init__(cfg)
        # keys and values of every layer: (L, 2, H, capacity, D); the live ones are [start, end)
        self.kv = torch.zeros(cfg.n_layer, 2, self.H, self.capacity, self.D)
        self._kv_np = self.kv.numpy()  # the same memory, for the window's moves
        self.caches = list(self.kv.unbind(0))  # each layer's view, made once

    @staticmethod
    def _apply_norm(norm, x):
        kind, w, b, eps = norm
        if kind == "layernorm":
            return F.layer_norm(x, (x.size(-1),), w, b, eps)
        return F.rms_norm(x, (x.size(-1),), w, eps)

    def _rope_tables(self, start: int, T: int):
        D = self.D
        inv = 1.0 / (self.cfg.rope_base ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
        ang = torch.arange(start, start + T, dtype=torch.float64)[:, None] * inv[None, :]
        return ang.cos().float(), ang.sin().float()  # (T, D/2)

    def feed(self, ids: list[int]) -> torch.Tensor:
        """Run the tokens ``ids`` (at positions pos, pos+1, ...) and return the (V,) logits after the last."""
        if not torch.is_inference_mode_enabled():
            with torch.inference_mode():
                return self.feed(ids)
        T = len(ids)
        if T == 0:
            raise ValueError("feed needs at least one token")
        cfg, w, C, H, D = self.cfg, self.w, self.C, self.H, self.D
        window = cfg.block_size
        start, end = self.make_room(T, self._kv_np)
        past = end - start  # keys before these T tokens
        S = past + T

        idx = torch.tensor(ids)
        x = w.tok_emb[idx]  # (T, C)
        if w.pos_table is not None:
            x = x + w.pos_table[self.pos : self.pos + T]
        rope = self._rope_tables(self.pos, T) if self.rope else None
        bias = None  # (H or 1, T, S) added to the scores
        if T == 1 and self.alibi is not None:
            bias = self.alibi_row[:, :, self.alibi_row.size(2) - S :]  # one query: no mask, distances S-1 .. 0
        elif T > 1 or self.alibi is not None:
            qi = torch.arange(T)[:, None] + past
            dist = (qi - torch.arange(S)[None, :]).float()  # (T, S): how far back each key is
            bias = torch.zeros(1, T, S).masked_fill_(((dist < 0) | (dist >= window))[None], float("-inf"))
            if self.alibi is not None:
                bias = bias - self.alibi * dist.clamp(min=0)
        for layer, (n1, qkv_l, proj, n2, up, down) in enumerate(w.layers):
            qkv = qkv_l(self._apply_norm(n1, x))  # (T, 3C)
            q, kv = qkv[:, :C].float(), qkv[:, C:].view(T, 2, H, D)  # (the cache copy converts k and v)
            cache = self.caches[layer]  # (2, H, cap, D)
            q = q.view(T, H, D).transpose(0, 1)  # (H, T, D)
            if rope is not None:
                cos, sin = rope
                q = rope_rotate(q, cos, sin)
                k = rope_rotate(kv[:, 0].transpose(0, 1), cos, sin)  # (H, T, D)
                cache[0, :, end : end + T] = k
                cache[1, :, end : end + T] = kv[:, 1].transpose(0, 1)
            else:
                cache[:, :, end : end + T] = kv.permute(1, 2, 0, 3)  # (2, H, T, D)
            keys, values = cache[0, :, start : end + T], cache[1, :, start : end + T]  # (H, S, D)
            scores = torch.bmm(q, keys.transpose(1, 2))  # (H, T, S), already scaled
            if bias is not None:
                scores = scores.add_(bias)
            y = torch.bmm(scores.softmax(-1), values)  # (H, T, D)
            x = x.add_(proj(y.transpose(0, 1).reshape(T, C)))  # (x is this call's own tensor)
            h = up(self._apply_norm(n2, x))
            if self.swiglu:
                gate, value = h.chunk(2, dim=-1)
                h = F.silu(gate).mul_(value)
            elif h.dtype == torch.bfloat16:  # from the int8 kernel: tanh's form, a third of erf's cost, within 1e-3 of it
                h = F.gelu(h, approximate="tanh")
            else:
                h = F.gelu(h)
            x = x.add_(down(h))
        self.advance(start, end, T)
        return w.head(self._apply_norm(w.norm, x[-1:]))[0].float()  # (V,)
