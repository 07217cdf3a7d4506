"""Memory: what a training step keeps for the backward pass, and how to split a batch so it fits."""

from __future__ import annotations

DEFAULT_CPU_MEMORY_BUDGET = 1.0  # GB of activations per micro-batch (the 10.7M shape at batch 64 keeps 2.5 GB)


def memory_budget_bytes(budget: float | None, device) -> int:
    """The activation budget in bytes for this device (0: do not split batches)."""
    if budget is None:
        budget = DEFAULT_CPU_MEMORY_BUDGET if device.type == "cpu" else 0.0
    return int(budget * 1e9)


def activation_bytes_per_sequence(model, block_size: int, device, dtype: str) -> int:
    """Bytes that a training forward pass keeps for the backward pass, per sequence of block_size.

    Measured, not estimated: the tensors saved for the backward pass (deduplicated by
    storage) are counted for one and for two sequences, and the difference is what each
    sequence adds (the weights and their low-precision copies are saved once per pass).
    The global random state is left as it was.
    """
    import torch

    from tinygpt_tui.engine.device import autocast

    def saved(batch: int) -> int:
        seen: dict[int, int] = {}

        def pack(t):
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
            return t

        x = torch.zeros(batch, block_size, dtype=torch.long, device=device)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast(device, dtype):
            model(x, x)
        return sum(seen.values())

    was_training = model.training
    model.train()
    try:
        with torch.random.fork_rng(devices=[]):
            return max(saved(2) - saved(1), 1)
    finally:
        model.train(was_training)


def micro_batch_split(batch: int, bytes_per_seq: int, budget: int) -> int:
    """The fewest micro-batches (a divisor of batch) whose activations fit the budget; batch at worst."""
    for k in range(1, batch + 1):
        if batch % k == 0 and (batch // k) * bytes_per_seq <= budget:
            return k
    return batch
