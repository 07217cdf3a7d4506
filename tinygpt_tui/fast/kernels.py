"""Faster forms of three of model.py's layers for training on a CPU, switched on per model:
``accelerate(model)`` (``on=False``: model.py's plain forms again). Each subclasses the plain
layer, holds the same weights, computes the same function, and is tested against it
(tests/test_numerics.py): dropout from 16 random bits per element (bernoulli_ draws a random
number each), RMSNorm with its backward written out (F.rms_norm's is a chain of small kernels),
attention written out in bf16 (SDPA's CPU kernel is slower). Off a CPU (attention: outside bf16)
each falls back to the plain form.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn

from tinygpt_tui.model import Attention, RMSNorm, causal_mask


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """F.dropout(x, p) with a cheaper mask. One 64-bit draw gives four 16-bit lanes; an element
    is kept when its lane is at or above a threshold, so the drop rate is p to within 1/65536,
    and kept elements are scaled by the exact inverse of the keep rate. The draws come from
    torch's default generator: ``torch.manual_seed`` repeats them (and resumed runs replay them)."""
    if p <= 0.0:
        return x
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), 2**63 - 1)
    bits = bits.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
    threshold = min(round(p * 65536), 65536) - 32768
    keep = (32768 - threshold) / 65536
    if keep <= 0.0:
        return torch.zeros_like(x)
    zero, scale = torch.zeros((), dtype=x.dtype, device=x.device), torch.full((), 1.0 / keep, dtype=x.dtype, device=x.device)
    return x * torch.where(bits >= threshold, scale, zero)  # (autograd reuses the mask in the backward pass)


class FastDropout(nn.Dropout):
    def forward(self, x):
        if self.training and self.p > 0 and x.device.type == "cpu":
            return fast_dropout(x, self.p)
        return super().forward(x)


class RMSNormFunction(torch.autograd.Function):
    """y = x * r * w with r = 1/sqrt(mean(x^2) + eps), three passes forward and five back:
      dL/dx = r * (g*w) - x * r^3 * mean(g*w*x),   dL/dw = sum over rows of g * x * r
    It saves x (alive anyway for the residual) and r (one number per row)."""

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


class FastRMSNorm(RMSNorm):
    def forward(self, x):
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return RMSNormFunction.apply(x, self.weight, self.eps)
        return super().forward(x)  # (no backward to save: F.rms_norm's forward is fast)


@functools.cache
def causal_bias(T: int, dtype, device) -> torch.Tensor:
    """model.causal_mask(T) in ``dtype``, made once per size, type and device."""
    return causal_mask(T, device).to(dtype)


class FastAttention(Attention):
    def attend(self, q, k, v, mask, want_weights: bool = False):
        if want_weights or q.dtype != torch.bfloat16 or q.device.type != "cpu":
            return super().attend(q, k, v, mask, want_weights)
        # scaled and masked in place: the (B, H, T, S) scores are the largest tensor of the step
        scores = (q @ k.transpose(-2, -1)).mul_(1.0 / math.sqrt(self.head_size))
        scores = scores.add_(causal_bias(q.size(2), scores.dtype, q.device) if mask is None else mask.to(scores.dtype))
        w = scores.softmax(dim=-1)
        if self.training and self.dropout > 0:
            w = fast_dropout(w, self.dropout)
        return w @ v, None


FAST = {nn.Dropout: FastDropout, RMSNorm: FastRMSNorm, Attention: FastAttention}


def accelerate(model: nn.Module, on: bool = True) -> nn.Module:
    """Switch ``model``'s layers to their fast forms (or, ``on=False``, back to model.py's).
    The fast classes add no state, so each layer keeps its weights: only its class changes."""
    for m in model.modules():
        for plain, fast in FAST.items():
            if type(m) is (plain if on else fast):
                m.__class__ = fast if on else plain
    return model
