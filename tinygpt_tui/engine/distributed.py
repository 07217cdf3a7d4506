"""A distributed run (torchrun): which rank this process is, its device, and the moments all ranks must
agree (set-up failures, stopping, the clock, the final weights). One process skips every collective."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from tinygpt_tui.errors import SettingsError, TinyGPTError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistInfo":
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def dist_device(name: str, dist: DistInfo):
    """The device one rank trains on: GPU number local_rank, or the CPU (the backend follows: NCCL or gloo)."""
    import torch

    from tinygpt_tui.engine.device import pick_device

    want = pick_device(name)
    if want.type == "cuda":
        count = torch.cuda.device_count()
        if dist.local_rank >= count:
            raise SettingsError(
                f"process {dist.local_rank} on this machine has no GPU of its own ({count} visible); "
                f"start at most {count} per machine (--nproc_per_node={count}), or train on the CPU with --device cpu"
            )
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
        return device
    if want.type == "mps":
        if (name or "auto").lower() == "auto":
            return torch.device("cpu")  # neither gloo nor NCCL runs on Apple's GPU
        raise SettingsError("PyTorch can't train across processes on MPS; use --device cpu, or a single process")
    return torch.device("cpu")


def agree_on_failure(failed: TinyGPTError | None, dist: DistInfo) -> TinyGPTError | None:
    """Every rank gets the same error (naming the ranks that failed, unless all did) if any rank failed
    to set up, so none waits forever in a collective; rank 0 prints it."""
    if dist.world_size <= 1:
        return failed
    import torch.distributed as torch_dist

    mine = None if failed is None else (str(failed), getattr(failed, "exit_code", 2))
    every: list = [None] * dist.world_size
    torch_dist.all_gather_object(every, mine)
    bad = [(r, m) for r, m in enumerate(every) if m is not None]
    if not bad:
        return None
    messages = set(m[0] for _, m in bad)
    if len(messages) == 1 and len(bad) == dist.world_size:
        text = bad[0][1][0]
    else:
        text = "; ".join(f"rank {r}: {m[0]}" for r, m in bad)
    err = TinyGPTError(text)
    err.exit_code = bad[0][1][1]
    return err


def agree_on_stop(stop: bool, progress: float, elapsed: float, dist: DistInfo, device) -> tuple[bool, float, float]:
    """All ranks stop together (if any rank was asked to) and follow rank 0's clock."""
    if dist.world_size <= 1:
        return stop, progress, elapsed
    import torch
    import torch.distributed as torch_dist

    flag = torch.tensor([1.0 if stop else 0.0], device=device)
    torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MAX)
    clock = torch.tensor([progress, elapsed], dtype=torch.float64, device=device)
    torch_dist.broadcast(clock, src=0)
    progress, elapsed = clock.tolist()
    return flag.item() > 0, progress, elapsed


def sum_over_ranks(t, world: int) -> float:
    """A scalar tensor's sum over all ranks (itself when not distributed)."""
    if world > 1:
        import torch.distributed as torch_dist

        t = t.clone()
        torch_dist.all_reduce(t)
    return float(t.item())


def param_digest(model) -> str:
    """A short SHA-256 of a model's parameters (names, shapes and fp32 values), to compare copies of a model."""
    import torch

    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        t = p.detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def rank_digests(model, dist: DistInfo) -> list[str]:
    """param_digest of every rank's copy of the model, in rank order (gathered from all ranks)."""
    mine = param_digest(model)
    if dist.world_size <= 1:
        return [mine]
    import torch.distributed as torch_dist

    out: list = [None] * dist.world_size
    torch_dist.all_gather_object(out, mine)
    return out
