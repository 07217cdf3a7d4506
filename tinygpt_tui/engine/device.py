"""Pick the device (CUDA, then MPS, then CPU) and the precision that runs fastest on it."""

from __future__ import annotations

import contextlib
import functools

from tinygpt_tui.errors import SettingsError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "fp32", "bf16", "fp16")


def device_kind(name: str = "auto") -> str:
    """auto, cpu, cuda or mps for a device name ("cuda:1" is cuda); a SettingsError for any
    other (no torch: a command refuses a typo before importing it)."""
    name = (name or "auto").lower()
    base = "cuda" if name.startswith("cuda:") else name
    if base not in DEVICES:
        raise SettingsError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
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
    """The autocast precision for training: 'fp32', 'bf16' or 'fp16'.

    auto: CUDA runs bf16 (fp16 on GPUs without bf16); a CPU with AMX runs bf16
    for models wide enough to gain from it (measured: slower below n_embd 192);
    MPS stays fp32 (its autocast support varies by macOS release).
    """
    import torch

    dtype = (dtype or "auto").lower()
    if dtype not in DTYPES:
        raise SettingsError(f"unknown precision {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype != "auto":
        if dtype == "fp16" and device.type == "cpu":
            raise SettingsError("fp16 is for GPUs; on the CPU use bf16 or fp32")
        return dtype
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
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
    return f"CPU ({torch.get_num_threads()} threads)"
