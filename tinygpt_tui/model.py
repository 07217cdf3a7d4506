"""A GPT (a decoder-only transformer) in one file, to read top to bottom.

Shapes in comments: B batch, T new tokens, S keys attended over (the cached ones plus
the T new), C channels (n_embd), H heads, D head size (C // H), V vocabulary size.
The options a learner compares (config.py): pos_encoding learned | sinusoidal | rope |
alibi | none; ffn gelu | swiglu; norm layernorm | rmsnorm; tie_weights; bias; dropout.

Generation feeds the prompt once, then one token per call, keeping every layer's keys and
values in a KVCache (the logits equal the full forward pass). Past the context window
(block_size) a relative encoding (rope, alibi, none) slides: each token sees the last
block_size keys, which in the layers above the first were computed when their tokens still
saw characters since gone (the usual streaming form, not a re-run of the window). An
absolute encoding (learned, sinusoidal) stops at block_size: the sampler starts over.

This is the plain form: fast/ holds the same computation made faster, tested against it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from tinygpt_tui.config import RELATIVE, GPTConfig, Window, alibi_slope_list, rope_frequencies, sinusoidal_table


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight: LayerNorm without subtracting the mean, and no bias."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.rms_norm(x, (x.size(-1),), self.weight, self.eps)


def make_norm(cfg: GPTConfig) -> nn.Module:
    return RMSNorm(cfg.n_embd) if cfg.norm == "rmsnorm" else nn.LayerNorm(cfg.n_embd, bias=cfg.bias)


def rope_rotate(x, cos, sin):
    """RoPE: turn each pair (x[i], x[i + D/2]) of a head's vector by its position's angle.
    x (B, H, T, D); cos, sin (T, D/2)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).type_as(x)


def causal_mask(T: int, device) -> torch.Tensor:
    """(T, T): 0 where a query may look (itself and earlier tokens), -inf above the diagonal."""
    return torch.full((T, T), float("-inf"), device=device).triu(1)


class KVCache(Window):
    """The keys and values of every layer for the tokens seen so far, in (B, H, capacity, D)
    buffers; which of them stay live is config.Window's rule (shared with fast/decode.py)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__(cfg.block_size, sliding=cfg.pos_encoding in RELATIVE)
        self.k: list[torch.Tensor | None] = [None] * cfg.n_layer
        self.v: list[torch.Tensor | None] = [None] * cfg.n_layer

    def move(self, start: int, end: int) -> None:
        for buf in self.k + self.v:
            buf[:, :, : end - start] = buf[:, :, start:end].clone()  # (the ranges may overlap)

    def update(self, layer: int, k, v):
        """Write T new keys and values (B, H, T, D) at [end, end + T); return the live ones (B, H, S, D)."""
        if self.k[layer] is None:
            B, H, _, D = k.shape
            self.k[layer], self.v[layer] = k.new_zeros(B, H, self.capacity, D), v.new_zeros(B, H, self.capacity, D)
        end = self.end + k.size(2)
        self.k[layer][:, :, self.end : end], self.v[layer][:, :, self.end : end] = k, v
        return self.k[layer][:, :, self.start : end], self.v[layer][:, :, self.start : end]


class Attention(nn.Module):
    """Causal self-attention: each token mixes in the values of the tokens before it (and its
    own), weighted by how well its query matches their keys; H heads do this side by side."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.head_size = cfg.n_head, cfg.n_embd // cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # queries, keys, values in one product
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.proj.is_residual = True
        self.dropout = cfg.dropout  # on the attention weights, inside the fused kernel (training only)
        self.drop = nn.Dropout(cfg.dropout)  # on the output, before it joins the residual stream

    def forward(self, x, rope=None, mask=None, cache: KVCache | None = None, layer: int = 0, want_weights: bool = False):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.head_size).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, D)
        if rope is not None:
            q, k = rope_rotate(q, *rope), rope_rotate(k, *rope)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, H, S, D): the cached keys and values, then these T
        y, weights = self.attend(q, k, v, mask, want_weights)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)  # the heads side by side again
        return self.drop(self.proj(y)), weights

    def attend(self, q, k, v, mask, want_weights: bool = False):
        """softmax(q k^T / sqrt(D) + mask) v. ``mask``: None for plain causal attention (S == T),
        else an additive (1 or H, T, S) bias, -inf on the keys a query may not see."""
        if not want_weights:  # PyTorch's fused kernel
            mask = None if mask is None else mask.to(q.dtype)
            drop = self.dropout if self.training else 0.0
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, is_causal=mask is None), None
        # the same, written out, to hand the weights to the inspector
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_size)  # (B, H, T, S)
        scores = scores.float() + (causal_mask(q.size(2), q.device) if mask is None else mask)
        weights = scores.softmax(dim=-1)  # each row sums to 1
        return weights.to(v.dtype) @ v, weights


class FeedForward(nn.Module):
    """The same small network on every token: widen, a non-linearity, narrow again."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.swiglu = cfg.ffn == "swiglu"
        hidden = cfg.ffn_hidden
        self.up = nn.Linear(cfg.n_embd, (2 if self.swiglu else 1) * hidden, bias=cfg.bias)
        self.down = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)
        self.down.is_residual = True
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        h = self.up(x)  # (B, T, hidden), or twice that for SwiGLU
        if self.swiglu:  # half of it, through SiLU, gates the other half
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value
        else:
            h = F.gelu(h)
        return self.drop(self.down(h))  # (B, T, C)


class Block(nn.Module):
    """One layer: attention, then the feed-forward, each reading a normalised copy of the
    residual stream x and adding its result back to it (pre-norm)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.norm1, self.attn = make_norm(cfg), Attention(cfg)
        self.norm2, self.ffn = make_norm(cfg), FeedForward(cfg)

    def forward(self, x, rope=None, mask=None, cache=None, layer=0, want_weights=False):
        a, weights = self.attn(self.norm1(x), rope, mask, cache, layer, want_weights)
        x = x + a
        x = x + self.ffn(self.norm2(x))
        return x, weights


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        if cfg.pos_encoding == "learned":
            self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        elif cfg.pos_encoding == "sinusoidal":  # fixed tables: buffers, not in the state dict
            self.register_buffer("pos_table", torch.tensor(sinusoidal_table(cfg.block_size, cfg.n_embd)), persistent=False)
        elif cfg.pos_encoding == "alibi":
            self.register_buffer("alibi", torch.tensor(alibi_slope_list(cfg.n_head)), persistent=False)  # (H,)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = make_norm(cfg)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.head.weight = self.tok_emb.weight
        self.apply(self._init)
        # Activation checkpointing (a training choice, not the architecture): each block's
        # activations are recomputed in the backward pass, a third more compute for less memory.
        self.checkpointing = False

    def _init(self, m):
        if isinstance(m, nn.Linear):  # layers that add into the residual stream start smaller
            std = 0.02 / math.sqrt(2 * self.cfg.n_layer) if getattr(m, "is_residual", False) else 0.02
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def new_cache(self) -> KVCache:
        return KVCache(self.cfg)

    def rope_angles(self, start: int, T: int, device):
        """cos and sin (T, D/2) of the angles of positions start .. start + T - 1, in float32 as
        Hugging Face's Llama computes them (its exported logits are then tinygpt's)."""
        inv_freq = torch.tensor(rope_frequencies(self.cfg.n_embd // self.cfg.n_head, self.cfg.rope_base))
        angles = torch.arange(start, start + T).float()[:, None] * inv_freq
        return angles.cos().to(device), angles.sin().to(device)

    def attention_mask(self, T: int, past: int, device):
        """What T new queries may see of the past + T keys: None for plain causal attention,
        else an additive (1 or H, T, S) bias. Query i is key past + i; it sees key j when
        0 <= past + i - j < block_size, and ALiBi lowers a score by slope * that distance."""
        if past == 0 and self.cfg.pos_encoding != "alibi":
            return None
        dist = torch.arange(T, device=device)[:, None] + past - torch.arange(past + T, device=device)  # (T, S)
        hidden = (dist < 0) | (dist >= self.cfg.block_size)
        bias = torch.zeros(dist.shape, device=device).masked_fill(hidden, float("-inf"))[None]  # (1, T, S)
        if self.cfg.pos_encoding == "alibi":
            bias = bias - self.alibi[:, None, None] * dist.clamp(min=0)  # (H, T, S)
        return bias

    def forward(self, idx, targets=None, cache: KVCache | None = None, return_attention: bool = False):
        """idx (B, T) token ids -> logits (B, T, V), and the loss when targets (B, T) are given.

        With a cache, idx holds only the new tokens; positions continue from ``cache.pos``.
        With ``return_attention`` the attention weights of each layer, (B, H, T, S), come third.
        """
        B, T = idx.shape
        start = past = 0  # the position of the first new token; the cached keys it sees
        if cache is not None:
            start, (first, end) = cache.pos, cache.make_room(T)  # (refuses what the window cannot hold)
            past = end - first
        elif T > self.cfg.block_size:
            raise ValueError(f"{T} tokens exceed block_size {self.cfg.block_size}")
        x = self.tok_emb(idx)  # (B, T, C)
        if self.cfg.pos_encoding == "learned":
            x = x + self.pos_emb(torch.arange(start, start + T, device=idx.device))
        elif self.cfg.pos_encoding == "sinusoidal":
            x = x + self.pos_table[start : start + T]
        x = self.drop(x)
        rope = self.rope_angles(start, T, idx.device) if self.cfg.pos_encoding == "rope" else None
        mask = self.attention_mask(T, past, idx.device)
        weights = []
        for i, block in enumerate(self.blocks):
            if self.checkpointing and self.training and cache is None and not return_attention:
                x, w = checkpoint(block, x, rope, mask, use_reentrant=False)
            else:
                x, w = block(x, rope, mask, cache, i, return_attention)
            weights.append(w)
        if cache is not None:
            cache.advance(T)
        logits = self.head(self.norm(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return (logits, loss, weights) if return_attention else (logits, loss)
