"""The two validation figures of a model on a Dataset: an estimate from random batches (during training)
and the loss over every window of a split (the model card's, `tinygpt eval`'s). Distributed, each rank
takes a share and the sums are added: any world size reports what one process would."""

from __future__ import annotations

from tinygpt_tui.data import Dataset
from tinygpt_tui.engine.device import autocast
from tinygpt_tui.engine.distributed import DistInfo, sum_over_ranks


def estimate_loss(model, data: Dataset, split: str, iters: int, batch_size: int, device, dtype: str, seed: int,
                  dist: DistInfo | None = None) -> float:
    """Mean loss over ``iters`` random batches from the seed (every rank draws all, evaluates its share)."""
    import torch

    rank, world = (dist.rank, dist.world_size) if dist else (0, 1)
    gen = torch.Generator().manual_seed(seed)
    was = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    with torch.inference_mode(), autocast(device, dtype):
        for i in range(iters):
            if i % world != rank:
                data.batch(split, batch_size, gen, torch.device("cpu"))  # another rank's batch: only advance the generator
                continue
            x, y = data.batch(split, batch_size, gen, device)
            total += model(x, y)[1].double()
    model.train(was)
    return sum_over_ranks(total, world) / iters


MAX_EVAL_TOKENS = 1 << 20  # a split past this many tokens is evaluated on that many, evenly spread over it


def evaluate_split(model, data: Dataset, split: str = "val", device=None, batch_size: int = 32, dtype: str = "fp32",
                   dist: DistInfo | None = None, max_tokens: int | None = MAX_EVAL_TOKENS) -> float:
    """Mean loss over every non-overlapping window of a split, in order: deterministic (a split of more
    than max_tokens, e.g. a 500 MB book collection's 10%, is sampled by evenly spread windows)."""
    import torch

    rank, world = (dist.rank, dist.world_size) if dist else (0, 1)
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    with torch.inference_mode(), autocast(device, dtype):
        for i, (x, y) in enumerate(data.windows(split, batch_size, device, max_tokens)):
            if i % world == rank:
                logits, _ = model(x)
                total += torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), reduction="sum").double()
                count += y.numel()
    model.train(was)
    count = sum_over_ranks(torch.tensor(float(count), dtype=torch.float64, device=device), world)
    return sum_over_ranks(total, world) / max(count, 1)
