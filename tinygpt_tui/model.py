"""A decoder-only transformer (GPT) in one file.

Shapes in comments: B batch, T time (tokens), C channels (n_embd), H heads,
D head size (C // H), V vocabulary size.

Options a learner can compare side by side:
  pos_encoding  learned | sinusoidal | rope | alibi | none
  ffn           gelu | swiglu
  norm          layernorm | rmsnorm        (pre-norm, plus a final norm)
  tie_weights   share the token embedding with the output layer

Generation uses a KV cache (``KVCache``). Within the window the cached logits
equal the full forward pass. Past it, with a relative encoding (rope, alibi,
none) the cache slides: the oldest key is dropped and each new token attends to
the last ``block_size`` keys. That is the usual streaming form, not a re-run of
the window: in layers above the first, the kept keys were computed when their
tokens could still see characters that have since left the window (logits
differ from a re-run by ~1e-2). With an absolute encoding (learned, sinusoidal)
positions shift when the window slides, so the sampler re-fills the cache from
the window instead.
"""

from __future__ import annotations

import math
import torch
import torch.nn as nn
import torch.nn.functional as F

from tinygpt_tui.config import RELATIVE, ConfigError, GPTConfig, alibi_slope_list  # noqa: F401  (the config lives apart: no torch needed to read it)


# ---------------------------------------------------------------- fast CPU pieces
# Each of these was measured on a 2-core AVX-512/AMX CPU (see docs/performance.md)
# and has a test that it matches the plain PyTorch form (tests/test_numerics.py).
# The switches exist so that the benchmark and the tests can compare both forms.
FAST_DROPOUT = True  # dropout masks from random bits (torch's bernoulli_ is slow on a CPU)
FAST_RMSNORM = True  # RMSNorm with a hand-written backward (F.rms_norm's is many small kernels)
EXPLICIT_BF16_ATTENTION = True  # on a CPU in bf16, attention written out (2-3x faster than SDPA's flash kernel)


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout whose mask comes from 16 random bits per element.

    ``bernoulli_`` draws one random number per element and dominated the
    training step with dropout 0.2 on a CPU (a quarter of it at the 10.7M shape).
    Here one 64-bit draw yields four 16-bit lanes: an element is kept when its
    lane is at or above a threshold, so the drop rate is p to within 1/65536 and
    the kept elements are scaled by the exact inverse of the keep rate, as
    F.dropout does. The mask is a (0 or 1/keep) tensor that autograd reuses in
    the backward pass. Draws come from torch's default generator, so
    ``torch.manual_seed`` makes them repeatable like F.dropout's.
    """
    if p <= 0.0:
        return x
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), 2**63 - 1)
    bits = bits.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
    threshold = min(round(p * 65536), 65536) - 32768
    keep = (32768 - threshold) / 65536
    if keep <= 0.0:
        return torch.zeros_like(x)
    scale = torch.full((), 1.0 / keep, dtype=x.dtype, device=x.device)
    return x * torch.where(bits >= threshold, scale, torch.zeros((), dtype=x.dtype, device=x.device))


class Dropout(nn.Dropout):
    """nn.Dropout with the fast mask on a CPU (same state dict: none)."""

    def forward(self, x):
        if self.training and self.p > 0 and FAST_DROPOUT and x.device.type == "cpu":
            return fast_dropout(x, self.p)
        return super().forward(x)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p <= 0:
        return x
    if FAST_DROPOUT and x.device.type == "cpu":
        return fast_dropout(x, p)
    return F.dropout(x, p)


class _RMSNormFunction(torch.autograd.Function):
    """y = x * r * w with r = 1/sqrt(mean(x^2) + eps), and its backward written out.

    F.rms_norm's backward on a CPU is a chain of small composite kernels, about 5x
    slower than layer_norm's fused one; this form makes three passes forward and
    five back and measured 1.6 to 2x faster than F.rms_norm (forward and backward).
    The backward saves x (alive anyway for the residual) and r (one number per row):
      dL/dx = r * (g*w) - x * r^3 * mean(g*w*x),   dL/dw = sum over rows of g * x * r
    """

    @staticmethod
    def forward(ctx, x, weight, eps):
        xc = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        r = torch.linalg.vector_norm(xc, dim=-1, keepdim=True).pow_(2).div_(xc.size(-1)).add_(eps).rsqrt_()
        ctx.save_for_backward(xc, r, weight)
        return torch.mul(xc, r).mul_(weight).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        x, r, weight = ctx.saved_tensors
        in_dtype = g.dtype
        g = g.to(x.dtype)
        gw = g * weight
        dot = torch.linalg.vecdot(gw, x).unsqueeze(-1)  # sum over the row of g*w*x
        gx = torch.addcmul(gw.mul_(r), x, dot * r.pow(3), value=-1.0 / x.size(-1))
        gweight = (g * x).mul_(r).flatten(0, -2).sum(0)
        return gx.to(in_dtype), gweight.to(weight.dtype), None


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        if FAST_RMSNORM and torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return _RMSNormFunction.apply(x, self.weight, self.eps)
        return F.rms_norm(x, (x.size(-1),), self.weight, self.eps)


def make_norm(cfg: GPTConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return RMSNorm(cfg.n_embd)
    return nn.LayerNorm(cfg.n_embd, bias=cfg.bias)


def sinusoidal_table(n: int, dim: int) -> torch.Tensor:
    """The fixed (n, dim) position table of 'Attention Is All You Need'."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(n, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table.float()


def alibi_slopes(n_head: int) -> torch.Tensor:
    """Head slopes from the ALiBi paper, (H,)."""
    return torch.tensor(alibi_slope_list(n_head), dtype=torch.float32)


def rope_rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the head dimension. x: (B, H, T, D)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).type_as(x)


_CAUSAL: dict = {}


def causal_bias(T: int, dtype, device) -> torch.Tensor:
    """(T, T): 0 on and below the diagonal, -inf above it; made once per size, type and device."""
    key = (T, dtype, str(device))
    bias = _CAUSAL.get(key)
    if bias is None:
        bias = torch.full((T, T), float("-inf"), dtype=dtype, device=device).triu_(1)
        _CAUSAL[key] = bias
    return bias


class KVCache:
    """Keys and values of every layer for the tokens seen so far, in preallocated buffers.

    ``pos`` is the absolute position of the next token. Each layer's keys live in
    a (B, H, capacity, D) buffer; new ones are written in place (no copy of the
    whole cache per token, which cost a sixth of a decoding step) and attention
    reads the view of the live entries. For relative encodings the live entries
    are at most ``block_size`` (a sliding window): the buffer holds two windows,
    so the live ones are moved back to its start once every ``block_size`` tokens.
    """

    def __init__(self, n_layer: int, block_size: int = 0, sliding: bool = False):
        self.k: list[torch.Tensor | None] = [None] * n_layer
        self.v: list[torch.Tensor | None] = [None] * n_layer
        self.block_size, self.sliding = block_size, sliding
        self.start = [0] * n_layer  # live entries of layer i: [start[i], end[i])
        self.end = [0] * n_layer
        self.pos = 0

    def __len__(self) -> int:
        return self.end[0] - self.start[0]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Add T new keys and values (B, H, T, D); return the live keys and values
        (B, H, S, D) they attend over and how many of those came before them."""
        T = k.size(2)
        start, end = self.start[layer], self.end[layer]
        if self.sliding and T == 1 and end - start >= self.block_size:
            start = end - (self.block_size - 1)  # drop the oldest key
        buf_k, buf_v = self.k[layer], self.v[layer]
        live = end - start
        if buf_k is None or buf_k.dtype != k.dtype or live + T > buf_k.size(2):  # a new, larger buffer
            B, H, _, D = k.shape
            cap = max(live + T, 2 * self.block_size if self.sliding else self.block_size)
            new_k, new_v = k.new_empty(B, H, cap, D), v.new_empty(B, H, cap, D)
            if live:
                new_k[:, :, :live], new_v[:, :, :live] = buf_k[:, :, start:end], buf_v[:, :, start:end]
            buf_k, buf_v = self.k[layer], self.v[layer] = new_k, new_v
            start, end = 0, live
        elif end + T > buf_k.size(2):  # full at the back: move the live entries to the front (overlap: clone)
            buf_k[:, :, :live] = buf_k[:, :, start:end].clone()
            buf_v[:, :, :live] = buf_v[:, :, start:end].clone()
            start, end = 0, live
        buf_k[:, :, end : end + T] = k
        buf_v[:, :, end : end + T] = v
        past = live
        end += T
        self.end[layer] = end
        self.start[layer] = max(start, end - self.block_size) if self.sliding else start
        return buf_k[:, :, start:end], buf_v[:, :, start:end], past


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.n_head, self.head_size = cfg.n_head, cfg.n_embd // cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.proj.is_residual = True
        self.dropout = cfg.dropout
        self.resid_drop = Dropout(cfg.dropout)

    def forward(self, x, rope=None, alibi=None, cache=None, layer=0, want_attn=False):
        B, T, C = x.shape
        # (B, T, 3C) -> 3 x (B, H, T, D), as views (fewer small ops: they dominate a decoding step)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.head_size).permute(2, 0, 3, 1, 4).unbind(0)
        if rope is not None:
            cos, sin = rope  # (T, D/2) for the new tokens' absolute positions
            q, k = rope_rotate(q, cos, sin), rope_rotate(k, cos, sin)
        past = 0
        if cache is not None:  # (with a relative encoding the window slides; see the module docstring)
            k, v, past = cache.append(layer, k, v)
        S = k.size(2)  # keys: the past ones plus these T

        mask, causal = None, False
        if past == 0 and alibi is None and 1 < T <= self.cfg.block_size:
            causal = True
        elif T > 1 or alibi is not None:
            # query i sits at key index past + i; it may see keys j <= past + i
            # that lie within the window of block_size.
            qi = torch.arange(T, device=x.device)[:, None] + past
            kj = torch.arange(S, device=x.device)[None, :]
            dist = qi - kj  # (T, S), >= 0 for visible keys
            visible = (dist >= 0) & (dist < self.cfg.block_size)
            if alibi is not None:
                mask = (-alibi[:, None, None] * dist.clamp(min=0)).to(q.dtype)  # (H, T, S)
                mask = mask.masked_fill(~visible, float("-inf"))
            else:
                mask = visible

        attn = None
        if want_attn or (EXPLICIT_BF16_ATTENTION and q.dtype == torch.bfloat16 and q.device.type == "cpu"):
            # The explicit form: to hand the weights to the inspector, and because on
            # a CPU in bf16 it runs 2-3x faster than SDPA's flash kernel (measured,
            # see README "Performance"); SDPA is used everywhere else.
            # (scaled and masked in place: the (B, H, T, S) scores are the largest tensor of the step)
            scores = (q @ k.transpose(-2, -1)).mul_(1.0 / math.sqrt(self.head_size))  # (B, H, T, S)
            if causal:
                scores = scores.add_(causal_bias(T, scores.dtype, x.device))
            elif mask is not None:
                if mask.dtype == torch.bool:
                    mask = torch.zeros(mask.shape, dtype=scores.dtype, device=x.device).masked_fill_(~mask, float("-inf"))
                scores = scores.add_(mask)
            if want_attn:
                attn = scores.float().softmax(dim=-1)
                y = attn.to(v.dtype) @ v
            else:
                w = scores.softmax(dim=-1)
                w = dropout(w, self.dropout, self.training)
                y = w @ v
        else:
            drop = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, is_causal=causal)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, H, T, D) -> (B, T, C)
        y = self.proj(y)
        return (self.resid_drop(y) if self.training else y), attn


class FeedForward(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.swiglu = cfg.ffn == "swiglu"
        hidden = cfg.ffn_hidden
        self.up = nn.Linear(cfg.n_embd, (2 if self.swiglu else 1) * hidden, bias=cfg.bias)
        self.down = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)
        self.down.is_residual = True
        self.drop = Dropout(cfg.dropout)

    def forward(self, x):
        h = self.up(x)
        if self.swiglu:
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value
        else:
            h = F.gelu(h)
        h = self.down(h)
        return self.drop(h) if self.training else h


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.norm1, self.attn = make_norm(cfg), Attention(cfg)
        self.norm2, self.ffn = make_norm(cfg), FeedForward(cfg)

    def forward(self, x, layer, **kw):
        a, attn = self.attn(self.norm1(x), layer=layer, **kw)
        x = x + a
        x = x + self.ffn(self.norm2(x))
        return x, attn


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        if cfg.pos_encoding == "learned":
            self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        if cfg.pos_encoding == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_table(cfg.block_size, cfg.n_embd), persistent=False)
        elif cfg.pos_encoding == "alibi":
            self.register_buffer("alibi", alibi_slopes(cfg.n_head), persistent=False)
        self.drop = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = make_norm(cfg)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.head.weight = self.tok_emb.weight
        self.apply(self._init)
        # Activation checkpointing (a training choice, not part of the architecture): about a
        # third more compute per step for a fraction of the activation memory.
        self.checkpointing = False

    def _init(self, m):
        if isinstance(m, nn.Linear):
            std = 0.02 / math.sqrt(2 * self.cfg.n_layer) if getattr(m, "is_residual", False) else 0.02
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _rope(self, start: int, T: int, device):
        D = self.cfg.n_embd // self.cfg.n_head
        inv = 1.0 / (self.cfg.rope_base ** (torch.arange(0, D, 2, dtype=torch.float64, device=device) / D))
        pos = torch.arange(start, start + T, dtype=torch.float64, device=device)
        ang = pos[:, None] * inv[None, :]  # (T, D/2), in float64 so late positions stay exact
        return ang.cos().float(), ang.sin().float()

    def forward(self, idx, targets=None, cache: KVCache | None = None, return_attention: bool = False):
        """idx (B, T) token ids -> logits (B, T, V) and the loss when targets are given.

        With a cache, idx holds only the new tokens; positions continue from
        ``cache.pos``. With ``return_attention`` a list of (B, H, T, S)
        attention weights, one per layer, comes back as a third value.
        """
        B, T = idx.shape
        start = cache.pos if cache is not None else 0
        absolute = self.cfg.pos_encoding in ("learned", "sinusoidal")
        if absolute and start + T > self.cfg.block_size:
            raise ValueError(f"{start + T} positions exceed block_size {self.cfg.block_size}")
        if not absolute and cache is None and T > self.cfg.block_size:
            raise ValueError(f"{T} tokens exceed block_size {self.cfg.block_size}")
        x = self.tok_emb(idx)  # (B, T, C)
        if self.cfg.pos_encoding == "learned":
            x = x + self.pos_emb(torch.arange(start, start + T, device=idx.device))
        elif self.cfg.pos_encoding == "sinusoidal":
            x = x + self.pos_table[start : start + T]
        x = self.drop(x)
        rope = self._rope(start, T, idx.device) if self.cfg.pos_encoding == "rope" else None
        alibi = self.alibi if self.cfg.pos_encoding == "alibi" else None
        attns = []
        recompute = self.checkpointing and self.training and cache is None and not return_attention and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            if recompute:  # keep only each block's input; its activations are recomputed in the backward pass
                from torch.utils.checkpoint import checkpoint

                x, attn = checkpoint(block, x, i, rope=rope, alibi=alibi, use_reentrant=False)
            else:
                x, attn = block(x, i, rope=rope, alibi=alibi, cache=cache, want_attn=return_attention)
            attns.append(attn)
        if cache is not None:
            cache.pos += T
        x = self.norm(x)
        logits = self.head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        if return_attention:
            return logits, loss, attns
        return logits, loss

    def new_cache(self) -> KVCache:
        return KVCache(self.cfg.n_layer, self.cfg.block_size, sliding=self.cfg.pos_encoding in RELATIVE)
