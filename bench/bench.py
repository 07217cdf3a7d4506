"""`python -m bench.bench` (from a checkout): the performance figures, each against its baseline.

A tool of the project, not of the product: nothing in tinygpt_tui imports it.

Everything is measured in one run, side by side, with interleaved repetitions
(A, B, A, B, ...) so that a busy machine slows both sides alike; the tables
report medians and the ratio of the medians.

1. Training throughput (tokens/s) of tinygpt's training step (auto precision,
   its attention path, fused AdamW, gradient clipping) against a plain fp32
   eager nanoGPT-style reference of the same shape (``RefGPT`` below: learned
   positions, LayerNorm, GELU MLP, SDPA causal attention, plain AdamW). Two
   shapes: nanoGPT's CPU recipe (4 layers, 4 heads, 128 dims, context 64,
   batch 12) and nanoGPT's Shakespeare model / the video's gpt.py (6 layers,
   6 heads, 384 dims, context 256, batch 64, 10.7M parameters), with each
   implementation's peak memory measured in a fresh process.
2. Generation (characters/s, batch 1) with the KV-cached sampler against
   recomputing the whole window for every character (``recompute_window``).
3. Time from starting `tinygpt generate` to its first generated character.
4. Optionally (``--quality-seconds``), time to quality: `tinygpt train` with a
   wall-clock budget on a corpus, and the validation loss it ends with.

    python -m bench.bench --quick                 # smoke run, under a minute
    python -m bench.bench --json bench.json       # the full run (docs/performance.md)

Quick mode shrinks the 10.7M shape's batch (it is labelled so) and takes fewer
repetitions; it asserts nothing about speed. Only the standard library, typer
and rich are imported at the top: torch loads when a benchmark runs.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import typer

from tinygpt_tui.cli.common import HELP, Command  # one-line errors, as in `tinygpt`

# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class Shape:
    name: str
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    batch_size: int
    dropout: float = 0.0
    vocab_size: int = 65

    @property
    def tokens_per_step(self) -> int:
        return self.block_size * self.batch_size

    def label(self) -> str:
        return f"{self.n_layer}L {self.n_head}H {self.n_embd}d, ctx {self.block_size}, batch {self.batch_size}"


# nanoGPT README's CPU recipe (dropout 0.0 there) and nanoGPT's Shakespeare config (dropout 0.2, as the video's gpt.py)
NANOGPT_CPU = Shape("nanoGPT CPU recipe (0.8M)", 4, 4, 128, 64, 12, 0.0)
NANOGPT_10M = Shape("nanoGPT Shakespeare (10.7M)", 6, 6, 384, 256, 64, 0.2)
# the shipped models' size, for generation
SHIPPED = dict(vocab_size=65, block_size=128, n_layer=4, n_head=4, n_embd=256, pos_encoding="alibi", ffn="gelu", norm="layernorm", dropout=0.0)

# the architectures tinygpt is measured with, at the same shapes as the reference:
# its defaults (GPTConfig's), and the modern alternative (RoPE, SwiGLU, RMSNorm)
def _archs() -> dict:
    from tinygpt_tui.config import GPTConfig  # no torch

    d = GPTConfig()
    archs = {f"tinygpt defaults ({d.pos_encoding}, {d.ffn}, {d.norm})": {}}
    alt = dict(pos_encoding="rope", ffn="swiglu", norm="rmsnorm")
    if (d.pos_encoding, d.ffn, d.norm) != tuple(alt.values()):
        archs["tinygpt (rope, swiglu, rmsnorm)"] = alt
    return archs


TINYGPT_ARCHS = _archs()
REFERENCE = "reference (nanoGPT-style, fp32 eager)"
# tinygpt train's own optimizer: the rows above use AdamW like the reference (the same work per
# step); this one shows what Muon adds to a step (it buys more progress per step: docs/performance.md)
MUON = "tinygpt defaults + Muon (tinygpt train's optimizer)"
# the same step with --checkpoint-activations: measured for its peak memory
CHECKPOINTED = "tinygpt defaults, --checkpoint-activations"


# --------------------------------------------------------------------------- the reference
def reference_model(shape: Shape):
    """A plain nanoGPT-style GPT (what people copy), built on first use so torch loads lazily."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class CausalSelfAttention(nn.Module):
        def __init__(self, C, H, dropout):
            super().__init__()
            self.c_attn = nn.Linear(C, 3 * C, bias=False)
            self.c_proj = nn.Linear(C, C, bias=False)
            self.resid_dropout = nn.Dropout(dropout)
            self.n_head, self.dropout = H, dropout

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(C, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.resid_dropout(self.c_proj(y))

    class MLP(nn.Module):
        def __init__(self, C, dropout):
            super().__init__()
            self.c_fc = nn.Linear(C, 4 * C, bias=False)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * C, C, bias=False)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self, C, H, dropout):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(C, bias=False), CausalSelfAttention(C, H, dropout)
            self.ln_2, self.mlp = nn.LayerNorm(C, bias=False), MLP(C, dropout)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class RefGPT(nn.Module):
        def __init__(self, s: Shape):
            super().__init__()
            self.block_size = s.block_size
            self.wte = nn.Embedding(s.vocab_size, s.n_embd)
            self.wpe = nn.Embedding(s.block_size, s.n_embd)
            self.drop = nn.Dropout(s.dropout)
            self.h = nn.ModuleList(Block(s.n_embd, s.n_head, s.dropout) for _ in range(s.n_layer))
            self.ln_f = nn.LayerNorm(s.n_embd, bias=False)
            self.lm_head = nn.Linear(s.n_embd, s.vocab_size, bias=False)
            self.wte.weight = self.lm_head.weight  # weight tying, as nanoGPT
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, 0.0, 0.02)

        def forward(self, idx, targets=None):
            B, T = idx.size()
            pos = torch.arange(0, T, dtype=torch.long, device=idx.device)
            x = self.drop(self.wte(idx) + self.wpe(pos))
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
            return logits, loss

    return RefGPT(shape)


# --------------------------------------------------------------------------- training steps
class Trainer:
    """One implementation's model, optimizer and step function at one shape."""

    def __init__(self, impl: str, shape: Shape, device, seed: int = 0):
        import torch

        from tinygpt_tui.config import GPTConfig
        from tinygpt_tui.engine.device import autocast, pick_dtype
        from tinygpt_tui.fast.kernels import accelerate
        from tinygpt_tui.model import GPT

        self.impl, self.shape, self.device = impl, shape, device
        self.micro = shape.batch_size  # sequences per forward pass
        torch.manual_seed(seed)
        if impl == REFERENCE:
            self.model = reference_model(shape).to(device)
            self.dtype = "fp32"
            decay = [p for p in self.model.parameters() if p.dim() >= 2]
            no_decay = [p for p in self.model.parameters() if p.dim() < 2]
            groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
            self.opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99))  # plain: no fused, no foreach asked for
        else:
            cfg = GPTConfig(vocab_size=shape.vocab_size, block_size=shape.block_size, n_layer=shape.n_layer, n_head=shape.n_head,
                            n_embd=shape.n_embd, dropout=shape.dropout, **TINYGPT_ARCHS.get(impl, {}))
            self.model = accelerate(GPT(cfg).to(device))  # as `tinygpt train` runs it
            self.model.checkpointing = impl == CHECKPOINTED
            self.dtype = pick_dtype(device, "auto", cfg.n_embd)  # what `tinygpt train` picks
            # ...and the micro-batches it splits the batch into to fit its default activation budget
            from tinygpt_tui.engine.device import activation_bytes_per_sequence, memory_budget_bytes, micro_batch_split

            budget = memory_budget_bytes(None, device)
            if budget:
                per_seq = activation_bytes_per_sequence(self.model, cfg.block_size, device, self.dtype)
                self.micro = shape.batch_size // micro_batch_split(shape.batch_size, per_seq, budget)
            decay = [p for p in self.model.parameters() if p.dim() >= 2]
            no_decay = [p for p in self.model.parameters() if p.dim() < 2]
            groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
            if impl == MUON:
                from tinygpt_tui.engine.presets import build_optimizer
                from tinygpt_tui.engine.presets import TrainConfig

                self.opt = build_optimizer(self.model, TrainConfig(optimizer="muon", lr=1e-3, muon_lr=0.02, beta2=0.99))
            else:
                try:  # as the trainer: fused AdamW where the build has it
                    self.opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), fused=True)
                except (RuntimeError, TypeError):
                    self.opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99))
        self.autocast = lambda: autocast(device, self.dtype)
        self.params = sum(p.numel() for p in self.model.parameters())
        gen = torch.Generator().manual_seed(seed + 1)
        self.batches = [
            tuple(torch.randint(0, shape.vocab_size, (shape.batch_size, shape.block_size), generator=gen).to(device) for _ in range(2))
            for _ in range(2)
        ]
        self.n = 0
        self.model.train()

    def step(self) -> float:
        import torch

        x, y = self.batches[self.n % len(self.batches)]
        self.n += 1
        k = x.size(0) // self.micro
        total = 0.0
        for i in range(0, x.size(0), self.micro):  # the same step as one pass over the batch
            with self.autocast():
                _, loss = self.model(x[i : i + self.micro], y[i : i + self.micro])
            (loss / k).backward()
            total = total + loss.detach() / k
        loss = total
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# The clock the timings use: wall time, or (``--clock cpu``) this process's CPU time, which
# on a machine shared with other work counts only the time this benchmark was running
# (use it with --threads 1: with more threads it adds up every thread's time).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = {"now": time.perf_counter}


def timed(fn, device, n: int) -> float:
    """Seconds per call of fn over n calls."""
    now = _clock["now"]
    sync(device)
    t = now()
    for _ in range(n):
        fn()
    sync(device)
    return (now() - t) / n


def interleaved(fns: dict, device, reps: int, n: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call for each fn, measured A, B, A, B, ... ``reps`` times (after ``warmup`` calls each)."""
    for fn in fns.values():
        timed(fn, device, warmup)
    out = {k: [] for k in fns}
    for r in range(reps):
        order = list(fns) if r % 2 == 0 else list(fns)[::-1]  # alternate the order too
        for k in order:
            out[k].append(timed(fns[k], device, n))
    return out


def bench_training(shape: Shape, device, reps: int, steps: int, impls=None) -> list[dict]:
    impls = impls or [REFERENCE, *TINYGPT_ARCHS, MUON]
    trainers = {k: Trainer(k, shape, device) for k in impls}
    times = interleaved({k: t.step for k, t in trainers.items()}, device, reps, steps)
    base = statistics.median(times[REFERENCE]) if REFERENCE in times else None
    rows = []
    for k, t in trainers.items():
        med = statistics.median(times[k])
        rows.append({
            "shape": shape.name, "shape_detail": shape.label(), "impl": k, "params": t.params, "precision": t.dtype,
            "ms_per_step": med * 1e3, "tokens_per_s": shape.tokens_per_step / med,
            "ratio": (base / med) if base else None, "samples_ms": [round(x * 1e3, 2) for x in times[k]],
        })
    del trainers
    return rows


def probe_memory(impl: str, shape: Shape, device_name: str, threads: int | None, steps: int = 1) -> float | None:
    """Peak resident memory (MB) of a fresh process that builds this model and trains ``steps`` steps."""
    args = [sys.executable, "-m", "bench.bench", "--_probe", json.dumps({"impl": impl, "shape": asdict(shape), "device": device_name,
                                                                                 "threads": threads, "steps": steps})]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=900)
        return json.loads(r.stdout.strip().splitlines()[-1])["peak_mb"]
    except (subprocess.SubprocessError, OSError, ValueError, IndexError, KeyError):
        return None


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    Linux: VmHWM from /proc/self/status. (ru_maxrss is not enough: Linux carries it
    across exec, so a child started by a big parent reports the parent's peak.)
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def _probe(spec: str) -> None:
    import torch

    from tinygpt_tui.engine.device import pick_device

    s = json.loads(spec)
    if s.get("threads"):
        torch.set_num_threads(s["threads"])
    device = pick_device(s["device"])
    t = Trainer(s["impl"], Shape(**s["shape"]), device)
    for _ in range(s["steps"]):
        t.step()
    sync(device)
    peak_mb = peak_rss_mb()
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 1e6  # on a GPU what matters is device memory
    print(json.dumps({"peak_mb": peak_mb}))


# --------------------------------------------------------------------------- generation
def shipped_model(device, model_dir: str | None = None):
    """The shipped Shakespeare model when it loads, else a random one of its size (speed does not depend on the weights)."""
    import torch

    from tinygpt_tui.engine.folder import default_models_dir, load_model
    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.errors import TinyGPTError
    from tinygpt_tui.model import GPT
    from tinygpt_tui.tokenizer import CharTokenizer

    folder = Path(model_dir) if model_dir else default_models_dir() / "shakespeare"
    if folder.is_dir():
        try:
            loaded = load_model(folder, device=device)
            return loaded.model, loaded.tokenizer, f"{folder.name} (shipped)", folder
        except (TinyGPTError, OSError, ValueError, RuntimeError):
            if model_dir:
                raise
    torch.manual_seed(0)
    chars = sorted(set("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    model = GPT(GPTConfig(**SHIPPED)).to(device).eval()
    return model, CharTokenizer(chars), "random weights, shipped size", None


PROMPT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
          "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n")


def recompute_window(model, tokenizer, prompt: str, chars: int, seed: int) -> None:
    """The baseline: the whole window through the model for every character, no cache."""
    import numpy as np
    import torch

    from tinygpt_tui.sampler import draw

    ids, uniform = tokenizer.encode(prompt).ids, np.random.default_rng(seed).random
    device = next(model.parameters()).device
    with torch.inference_mode():
        for _ in range(chars):
            logits, _ = model(torch.tensor([ids[-model.cfg.block_size :]], device=device))
            ids.append(draw(logits[0, -1].float().cpu().numpy(), 0.8, 0, 1.0, uniform()))


def bench_generation(model, tokenizer, device, chars: int, nocache_chars: int, reps: int) -> list[dict]:
    """KV-cached sampler vs recomputing the window, batch 1, temperature 0.8, a full-window prompt."""
    from tinygpt_tui.sampler import Generation, SamplingSettings

    prompt = (PROMPT * 4)[-model.cfg.block_size :]
    state = {"seed": 0}

    def cached(precision, backend="auto", on=model):
        def run():
            state["seed"] += 1
            s = SamplingSettings(max_new_tokens=chars, temperature=0.8, seed=state["seed"], precision=precision)
            for _ in Generation(on, tokenizer, prompt, s, backend=backend):
                pass
        return run

    def nocache():
        state["seed"] += 1
        recompute_window(model, tokenizer, prompt, nocache_chars, state["seed"])

    runs = {"nocache": nocache}
    if device.type == "cpu":  # the batch-1 decoder: int8 weights (the default) and fp32 ones, compiled; the model's own cache
        from tinygpt_tui.fast import decode as jitstep

        if jitstep.available():  # what `tinygpt generate` runs on a CPU: the weights as numpy arrays, no torch
            jit = jitstep.JitModel.from_torch(model)
            runs |= {"int8": cached("int8", on=jit), "fp32": cached("fp32", on=jit)}
        runs["torch"] = cached("fp32", "torch")
    else:
        runs["kv"] = cached("auto")
    times = interleaved(runs, device, reps, 1)
    old = nocache_chars / statistics.median(times["nocache"])
    label = {"int8": "KV cache, int8 weights, compiled step (tinygpt generate)",
             "fp32": "KV cache, fp32 weights, compiled step (--precision fp32)",
             "torch": "KV cache, the model's own (PyTorch; without numba)",
             "kv": "KV cache (tinygpt generate)"}
    rows = []
    for key in ("int8", "fp32", "torch", "kv"):
        if key in times:
            rate = chars / statistics.median(times[key])
            rows.append({"method": label[key], "chars_per_s": rate, "ratio": rate / old, "chars": chars})
    return rows + [{"method": "recompute the window (no cache)", "chars_per_s": old, "ratio": 1.0, "chars": nocache_chars}]


def tinygpt_command() -> list[str]:
    exe = Path(sys.executable).with_name("tinygpt")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("tinygpt")
    return [found] if found else [sys.executable, "-c", "from tinygpt_tui.cli.main import run; run()"]


def first_char_time(folder: Path, device_name: str, reps: int) -> dict:
    """Seconds from starting `tinygpt generate FOLDER` to its first character on stdout (median of reps)."""
    cmd = [*tinygpt_command(), "generate", str(folder), "--max-new", "1", "--seed", "1", "--device", device_name]
    samples, cpu = [], []
    for _ in range(reps):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = p.stdout.read(1)
        dt = time.perf_counter() - t
        out, err = p.communicate()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode != 0 or not first:
            raise RuntimeError(f"`{' '.join(cmd)}` failed: {err.decode('utf-8', 'replace').strip()[-300:]}")
        samples.append(dt)
        # the CPU time of the whole command (it exits right after its one character)
        cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return {"seconds": statistics.median(samples), "samples_s": [round(s, 3) for s in samples],
            "cpu_s": statistics.median(cpu), "command": " ".join(cmd)}


# --------------------------------------------------------------------------- time to quality
def time_to_quality(corpus: str, seconds: float, device_name: str, threads: int | None, workdir: Path) -> dict:
    """`tinygpt train CORPUS --minutes S/60` with its default settings; the final validation loss (whole split)."""
    cmd = [*tinygpt_command(), "train", corpus, "--name", "bench-quality", "--models-dir", str(workdir), "--minutes", f"{seconds / 60:.6g}",
           "--jsonl", "--sample-chars", "0", "--device", device_name]
    if threads:
        cmd += ["--threads", str(threads)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 3 + 300)
    finish = None
    for line in r.stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == "finish":
            finish = rec
    if r.returncode != 0 or finish is None:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {r.stderr.strip()[-300:]}")
    return {"seconds": seconds, "val_loss": finish["val_loss"], "steps": finish["step"], "elapsed_s": finish["elapsed_s"], "command": " ".join(cmd)}


# --------------------------------------------------------------------------- machine
def machine(device) -> dict:
    import torch

    from tinygpt_tui.engine.device import cpu_has_fast_bf16, describe

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = []
    try:
        info = Path("/proc/cpuinfo").read_text()
        flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in info]
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "cpu_flags": flags, "fast_bf16": cpu_has_fast_bf16(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "device": describe(device),
        "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}", "load_avg_1m": load,
    }


# --------------------------------------------------------------------------- the run
@dataclass
class Options:
    quick: bool = False
    device: str = "auto"
    threads: int | None = None
    json_path: str | None = None
    model: str | None = None  # model folder for generation and time to first char
    corpus: str | None = None  # for time to quality
    quality_seconds: float = 0.0  # 0: off
    memory: bool = True
    training: bool = True
    startup: bool = True
    clock: str = "wall"  # or "cpu": this process's CPU time (a shared machine; use with --threads 1)
    # sizes, overridable (tests use tiny ones)
    shapes: list = field(default_factory=list)
    reps: int | None = None
    steps: int | None = None
    gen_chars: int | None = None
    nocache_chars: int | None = None


def run_bench(opts: Options, console=None) -> dict:
    import torch

    from tinygpt_tui.engine.device import pick_device

    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = pick_device(opts.device)
    if opts.clock not in CLOCKS:
        raise ValueError(f"--clock must be wall or cpu, got {opts.clock!r}")
    if opts.clock == "cpu" and device.type != "cpu":
        raise ValueError("--clock cpu measures CPU time; it means nothing for a GPU: use --clock wall")
    _clock["now"] = CLOCKS[opts.clock]
    say = (lambda m: console.print(f"[dim]{m}[/dim]")) if console else (lambda m: None)
    quick = opts.quick
    shapes = opts.shapes or ([NANOGPT_CPU, Shape(NANOGPT_10M.name + ", batch 2 (quick)", 6, 6, 384, 256, 2, 0.2)] if quick else [NANOGPT_CPU, NANOGPT_10M])
    result = {"mode": "quick" if quick else "full", "clock": opts.clock, "machine": machine(device), "training": [], "memory": [], "generation": [], "startup": None,
              "quality": None, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    t_start = time.perf_counter()

    def save():  # after each section, so a long run that is cut short still leaves its figures
        result["wall_s"] = time.perf_counter() - t_start
        if opts.json_path:
            Path(opts.json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    for i, shape in enumerate(shapes if opts.training else []):
        big = shape.n_embd >= 256
        reps = opts.reps or (2 if quick else (3 if big else 7))
        steps = opts.steps or (1 if (quick or big) else 10)
        say(f"training: {shape.name}, {reps} x {steps} steps per implementation ...")
        result["training"] += bench_training(shape, device, reps, steps)
        save()
        if opts.memory and i == len(shapes) - 1:  # the largest shape's peak memory, each implementation in a fresh process
            for impl in [REFERENCE, *TINYGPT_ARCHS, CHECKPOINTED]:
                say(f"peak memory: {impl} ...")
                result["memory"].append({"shape": shape.name, "impl": impl, "peak_mb": probe_memory(impl, shape, opts.device, opts.threads)})
            save()

    say("generation: KV cache vs recomputing the window ...")
    model, tok, what, folder = shipped_model(device, opts.model)
    chars = opts.gen_chars or (200 if quick else 1000)
    nocache_chars = opts.nocache_chars or (30 if quick else 150)
    gen_rows = bench_generation(model, tok, device, chars, nocache_chars, opts.reps or (2 if quick else 3))
    for r in gen_rows:
        r["model"] = f"{what}: {model.cfg.n_layer}L {model.cfg.n_head}H {model.cfg.n_embd}d, ctx {model.cfg.block_size}, {model.cfg.pos_encoding}"
        r["params"] = model.num_params()
    result["generation"] = gen_rows
    save()

    with tempfile.TemporaryDirectory(prefix="tinygpt-bench-") as tmp:
        if opts.startup:
            say("time to first character of `tinygpt generate` ...")
            if folder is None:
                from tinygpt_tui.engine import folder as ckpt

                folder = Path(tmp) / "bench-model"
                doc = {"name": folder.name, "model": model.cfg.to_dict(), "corpus": {"name": "none", "sha256": "0" * 64},
                       "figures": {"step": 0, "params": model.num_params()}}
                ckpt.save_model(folder, model, tok, doc, card=ckpt.render_card(doc))
            result["startup"] = first_char_time(folder, "cpu" if device.type == "cpu" else opts.device, 2 if quick else 5)
            result["startup"]["model"] = what
        if opts.quality_seconds and not quick:
            if not opts.corpus:
                raise ValueError("--quality-seconds needs --corpus (a text file or catalog name)")
            from tinygpt_tui.engine.corpora import resolve_corpus

            say(f"time to quality: training {opts.quality_seconds:.0f} s on {opts.corpus} ...")
            result["quality"] = time_to_quality(str(resolve_corpus(opts.corpus)), opts.quality_seconds, opts.device, opts.threads, Path(tmp))
    save()
    return result


# --------------------------------------------------------------------------- the report
def render(result: dict, console) -> None:
    from rich.table import Table

    m = result["machine"]
    clock = "wall time" if result.get("clock", "wall") == "wall" else "CPU time of this process (--clock cpu)"
    console.print(f"[bold]python -m bench.bench[/bold] ({result['mode']} mode, {result.get('wall_s', 0):.0f} s; timings in {clock})")
    load = f", load average {m['load_avg_1m']:.1f}" if m.get("load_avg_1m") is not None else ""
    console.print(f"machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['cpu_flags']) or 'no AVX flags seen'}){load}; "
                  f"torch {m['torch']}, {m['threads']} threads, {m['device']}")

    if result["training"]:
        t = Table(title="Training throughput (same shape, side by side)", title_justify="left")
        for col, j in (("shape", "left"), ("implementation", "left"), ("precision", "left"), ("ms/step", "right"), ("tokens/s", "right"), ("vs reference", "right")):
            t.add_column(col, justify=j)
        for r in result["training"]:
            t.add_row(f"{r['shape']}\n{r['shape_detail']}" if r["impl"] == REFERENCE else "", r["impl"], r["precision"], f"{r['ms_per_step']:,.1f}",
                      f"{r['tokens_per_s']:,.0f}", f"{r['ratio']:.2f}x" if r["ratio"] else "")
        console.print(t)

    if result["memory"]:
        t = Table(title=f"Peak memory of a fresh process training {result['memory'][0]['shape']}", title_justify="left")
        t.add_column("implementation")
        t.add_column("peak memory", justify="right")
        for r in result["memory"]:
            t.add_row(r["impl"], f"{r['peak_mb'] / 1000:.2f} GB" if r["peak_mb"] else "failed")
        console.print(t)

    if result["generation"]:
        t = Table(title="Generation, batch 1, temperature 0.8", title_justify="left")
        for col, j in (("model", "left"), ("method", "left"), ("chars/s", "right"), ("vs no cache", "right")):
            t.add_column(col, justify=j)
        for i, r in enumerate(result["generation"]):
            t.add_row(r["model"] if i == 0 else "", r["method"], f"{r['chars_per_s']:,.0f}", f"{r['ratio']:.1f}x")
        console.print(t)

    if result["startup"]:
        s = result["startup"]
        console.print(f"time to first generated character of `tinygpt generate` ({s['model']}): [bold]{s['seconds']:.2f} s[/bold] "
                      f"wall, {s['cpu_s']:.2f} s CPU for the whole command (median of {len(s['samples_s'])})")
    if result["quality"]:
        q = result["quality"]
        console.print(f"time to quality: {q['seconds']:.0f} s of `tinygpt train` ({q['steps']} steps) -> validation loss [bold]{q['val_loss']:.4f}[/bold]")


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


@app.command(cls=Command, context_settings=HELP)
def bench(
    quick: bool = typer.Option(False, "--quick", help="Smoke run (under a minute); asserts nothing about speed."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, mps."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's choice)."),
    json_path: str | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    model: str | None = typer.Option(None, "--model", help="Model folder for the generation figures (default: models/shakespeare if it loads)."),
    corpus: str | None = typer.Option(None, "--corpus", help="Corpus for --quality-seconds."),
    quality_seconds: float = typer.Option(0.0, "--quality-seconds", help="Train this long with `tinygpt train --minutes` and report the val loss (full mode)."),
    clock: str = typer.Option("wall", "--clock", help="wall, or cpu (this process's CPU time: a shared machine, with --threads 1)."),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="Measure peak memory in fresh processes."),
    training: bool = typer.Option(True, "--training/--no-training", help="Measure training (off: generation and start-up only)."),
):
    """Training and generation speed against their baselines, side by side (see docs/performance.md)."""
    code = cli_main(quick=quick, device=device, threads=threads, json_path=json_path, model=model, corpus=corpus,
                    quality_seconds=quality_seconds, memory=memory, clock=clock, training=training)
    if code:
        raise typer.Exit(code)


def main(argv=None) -> int:
    """`python -m bench.bench ...`. The hidden first argument ``--_probe SPEC`` runs one peak-memory
    measurement in this fresh process."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--_probe"] and len(args) == 2:
        _probe(args[1])
        return 0
    code = typer.main.get_command(app).main(args, prog_name="python -m bench.bench", standalone_mode=False)
    return code if isinstance(code, int) else 0


def cli_main(**kw) -> int:
    from rich.console import Console

    from tinygpt_tui.errors import TinyGPTError

    console = Console(highlight=False)
    try:
        if kw.get("threads") is not None:
            from tinygpt_tui.engine.presets import check_threads

            check_threads(kw["threads"])  # (worded as tinygpt's commands word it)
        result = run_bench(Options(**kw), console)
    except (TinyGPTError, ValueError) as e:
        from rich.text import Text

        Console(stderr=True, highlight=False, soft_wrap=True).print(Text("error: ", style="bold red") + Text(" ".join(str(e).split())))
        return 2
    render(result, console)
    if kw.get("json_path"):
        console.print(f"results written to {kw['json_path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
