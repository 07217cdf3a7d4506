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


def machine_memory(device) -> int:
    """Bytes of memory the device has: the GPU's own, or the machine's RAM (CPU, and MPS's shared memory)."""
    import os

    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: no check


def sequence_bytes(cfg) -> int:
    """A generous estimate of what one sequence keeps for the backward pass, in fp32 (no model needed):
    per token and layer the residual stream, norms, q/k/v and projections, the feed-forward's hidden
    layer, and the attention weights (T per head); then the logits."""
    T, C, L = cfg.block_size, cfg.n_embd, cfg.n_layer
    return 4 * T * (L * (10 * C + 3 * cfg.ffn_hidden + 2 * cfg.n_head * T) + 3 * cfg.vocab_size)


def check_fits(cfg, batch: int, device, budget: int, training: bool = True) -> None:
    """Refuse, before anything is allocated, a model (and batch) that cannot fit in the device's memory.

    Training keeps four copies of every parameter (weights, gradients, two optimizer moments) and
    the activations of one micro-batch (at most the memory budget when one applies)."""
    from tinygpt_tui.errors import SettingsError

    have = machine_memory(device)
    params = cfg.param_count()
    per_seq = sequence_bytes(cfg)
    acts = batch * per_seq if not budget else min(batch * per_seq, max(budget, per_seq))
    need = params * (16 if training else 4) + (acts if training else per_seq // cfg.n_layer)
    if need <= 0.9 * have:
        return
    gb = 1e9
    what = f"a model of {params / 1e6:,.1f}M parameters" + (f" at batch {batch}" if training else "")
    if params * (16 if training else 4) + per_seq > 0.9 * have:
        fits = f"at most about {0.9 * have / (16 if training else 4) / 1e6:,.0f}M parameters fit"
    else:
        fits = f"a batch of up to {int((0.9 * have - params * 16) // per_seq)} fits (--batch-size)"
    raise SettingsError(f"{what} needs about {need / gb:,.1f} GB, this {device.type} has {have / gb:,.1f} GB: {fits}")
