"""The device (CUDA, then MPS, then CPU), the precision that runs fastest on it, and what fits in its memory."""

from __future__ import annotations

import contextlib
import functools
import os

from tinygpt_tui.errors import SettingsError, not_one_of

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "fp32", "bf16", "fp16")


def device_kind(name: str = "auto") -> str:
    """auto, cpu, cuda or mps for a device name ("cuda:1" is cuda); a typo is refused before torch loads."""
    name = (name or "auto").lower()
    base = "cuda" if name.startswith("cuda:") else name
    if base not in DEVICES:
        raise not_one_of("device", name, DEVICES)
    return base


def pick_device(name: str = "auto"):
    base = device_kind(name)
    import torch

    name = (name or "auto").lower()
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise SettingsError("CUDA was asked for, but no CUDA GPU is available to this PyTorch build")
    if base == "mps" and not mps_available():
        raise SettingsError("MPS was asked for, but Apple's Metal backend is not available here")
    return torch.device(name)


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """AMX or AVX-512 BF16 matrix units: bf16 matmuls run several times faster than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def pick_dtype(device, dtype: str = "auto", n_embd: int = 0) -> str:
    """The autocast precision for training. auto: bf16 on CUDA (fp16 without it); on a CPU what this machine's
    probe measured faster at about this width (engine/probe.py), or without a probe bf16 on a CPU with AMX or
    AVX-512 BF16 for models of 192+ dims; fp32 on MPS (its autocast varies by release)."""
    import torch

    dtype = (dtype or "auto").lower()
    if dtype not in DTYPES:
        raise not_one_of("dtype", dtype, DTYPES)
    if dtype != "auto":
        if dtype == "fp16" and device.type == "cpu":
            raise SettingsError("fp16 is for GPUs; on the CPU use bf16 or fp32")
        return dtype
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        from tinygpt_tui.engine import probe

        doc = probe.cached()  # measured on this machine and torch version; None: not yet (see probe.settle)
        if doc is not None:
            return probe.choose_dtype(doc, n_embd)
    if device.type == "cpu" and cpu_has_fast_bf16() and n_embd >= 192:
        return "bf16"
    return "fp32"


def autocast(device, dtype: str):
    import torch

    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


def describe(device) -> str:
    import torch

    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "MPS (Apple GPU)"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'s' if n != 1 else ''})"


# ---------------------------------------------------------------- memory
DEFAULT_CPU_MEMORY_BUDGET = 1.0  # GB of activations per micro-batch (the 10.7M shape at batch 64 keeps 2.5 GB)


def memory_budget_bytes(budget: float | None, device) -> int:
    """The activation budget in bytes for this device (0: do not split batches)."""
    if budget is None:
        budget = DEFAULT_CPU_MEMORY_BUDGET if device.type == "cpu" else 0.0
    return int(budget * 1e9)


def activation_bytes_per_sequence(model, block_size: int, device, dtype: str) -> int:
    """Bytes a training forward pass keeps for the backward pass, per sequence: measured, as the storage
    saved for two sequences less that for one (weights and their low-precision copies are saved once)."""
    import torch

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
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: no check


def sequence_bytes(cfg) -> int:
    """A generous fp32 estimate (no model needed) of what one sequence keeps for the backward pass: per token
    and layer the residual stream, norms, q/k/v, projections, the hidden layer and T attention weights per head."""
    T, C, L = cfg.block_size, cfg.n_embd, cfg.n_layer
    return 4 * T * (L * (10 * C + 3 * cfg.ffn_hidden + 2 * cfg.n_head * T) + 3 * cfg.vocab_size)


def check_fits(cfg, batch: int, device, budget: int, training: bool = True) -> None:
    """Refuse, before anything is allocated, a model (and batch) that cannot fit in the device's memory:
    training keeps four copies of each parameter (weights, gradients, two moments) and one micro-batch's activations."""
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
