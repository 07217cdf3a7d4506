"""torch.optim.Muon with the Newton-Schulz iterations batched over matrices of the same shape.

Muon replaces each hidden matrix's update with the nearest semi-orthogonal matrix to its momentum,
found by a few Newton-Schulz iterations. torch runs them one matrix at a time: for a tiny model on
a CPU, hundreds of small products a step, each paying a call's fixed cost. A GPT's layers share
shapes, so here each shape's matrices are stacked and iterated once. The arithmetic, hyperparameters
and state are torch's, so checkpoints of either load into the other.
"""

from __future__ import annotations

import math

import torch
from torch.optim import Muon


def adjust_lr(lr: float, adjust_lr_fn: str | None, shape) -> float:
    """Muon's learning rate for an (A, B) matrix, as torch.optim.Muon documents its adjust_lr_fn."""
    A, B = shape[:2]
    if adjust_lr_fn in (None, "original"):
        return lr * math.sqrt(max(1, A / B))
    return lr * 0.2 * math.sqrt(max(A, B)) if adjust_lr_fn == "match_rms_adamw" else lr


def newton_schulz(g: torch.Tensor, coefficients, steps: int, eps: float, dtype=torch.bfloat16) -> torch.Tensor:
    """(N, A, B) float -> (N, A, B) in ``dtype``: each matrix replaced by ~U V^T of its SVD."""
    a, b, c = coefficients
    x = g.to(dtype)
    tall = g.size(-2) > g.size(-1)
    if tall:
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # spectral norm at most 1
    for _ in range(steps):
        gram = x @ x.mT
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)  # b*A + c*A@A
        x = torch.baddbmm(x, poly, x, beta=a)  # a*X + B@X
    return x.mT if tall else x


class BatchedMuon(Muon):
    """``ns_dtype``: the precision of the Newton-Schulz iterations. torch uses bf16, which is right where
    bf16 matmuls are fast (GPUs, CPUs with AMX or AVX-512 BF16); a CPU without them emulates bf16 and runs
    these products 17-27x slower than in fp32 (AMD EPYC Zen 3, measured), so the engine passes the
    precision the run computes in."""

    def __init__(self, params, ns_dtype=torch.bfloat16, **kw):
        super().__init__(params, **kw)
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd, mom = group["lr"], group["weight_decay"], group["momentum"]
            by_shape: dict[tuple, list] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.ndim != 2:
                    raise ValueError("Muon updates 2-D weight matrices only")
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad, memory_format=torch.preserve_format)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - mom)
                update = p.grad.lerp(buf, mom) if group["nesterov"] else buf
                by_shape.setdefault((tuple(p.shape), p.device), []).append((p, update))
            for (shape, _), items in by_shape.items():
                ortho = newton_schulz(torch.stack([u for _, u in items]), group["ns_coefficients"], group["ns_steps"], group["eps"], self.ns_dtype)
                step_lr = adjust_lr(lr, group["adjust_lr_fn"], shape)
                for (p, _), o in zip(items, ortho):
                    p.mul_(1 - lr * wd)
                    p.add_(o, alpha=-step_lr)
        return loss
