"""What runs fastest on this machine, measured rather than assumed: a probe of a few seconds.

    p = probe.run()                # {"matmul_gflops": {"fp32": .., "bf16": ..}, "step_ms": {...}, ...}
    probe.settle(cfg, note=print)  # --dtype auto, --threads unset, --preset auto: filled from the probe

It times, on the CPU, a large matmul in fp32 and in bf16, the training step (Muon, as `tinygpt train` runs it)
of each budget preset in both precisions, checking bf16's loss against fp32's from the same start, and the small
preset's step on 1 thread against all the cores (timed again later, once, if more cores are free then than were
at the probe). The result is cached as JSON per machine (CPU model, a hash of its flags, core count) and torch
version in $XDG_CACHE_HOME/tinygpt/probe.json; a cache from another machine or torch version, or one that does
not validate, is ignored with a note and measured again. GPUs (CUDA, MPS) are not probed: the device module's
rules stand there, as they do where nothing can be measured or cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

from tinygpt_tui.config import GPTConfig
from tinygpt_tui.engine.device import autocast, cpu_has_fast_bf16, device_kind, pick_device
from tinygpt_tui.engine.files import atomic_write, cache_dir, read_json, read_text
from tinygpt_tui.engine.presets import BUDGET_PRESETS, MODEL_KEYS, PRESETS, TrainConfig, budget_preset, build_optimizer, check_threads
from tinygpt_tui.errors import SettingsError, TinyGPTError

VERSION = 6  # a new number when the presets the probe times change: older caches are measured again
CACHE_FILE = "probe.json"
MAX_CACHE_BYTES = 64 * 1024
BUDGET_S = 5.0  # seconds of measuring (with building the models and warming up: under 10 s on a free core)
MATMUL_N = 1024  # the rate of one N x N x N matmul: near this CPU's peak for the precision
SCREEN_N = 256  # the first look at bf16 against fp32, before anything slow is timed in bf16
BF16_LOSS_TOLERANCE = 0.1  # bf16's loss after a few steps within this of fp32's from the same start
THREADS_GAIN = 1.15  # more threads only when they were measured at least this much faster
LOST_BY_FAR = 1.5  # more threads this much slower than one: a core was held by another process
VOCAB = 65  # Tiny Shakespeare's characters: the budget presets' vocabulary


# ----------------------------------------------------------------- the machine
def cpu_identity() -> dict:
    """The CPU's model name, a hash of its feature flags and its core count (what a cache belongs to)."""
    info = {}
    try:  # (Linux; elsewhere the platform's name, and no flags)
        text = read_text("/proc/cpuinfo", "/proc/cpuinfo", 8 * 1024 * 1024, error=SettingsError)
    except TinyGPTError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())  # the first processor's
    name = info.get("model name") or platform.processor() or platform.machine()
    flags = " ".join(sorted((info.get("flags") or info.get("Features") or "").split()))
    return {"cpu": name[:200], "flags": hashlib.sha256(flags.encode()).hexdigest()[:16], "cores": os.cpu_count() or 1}


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_times() -> tuple[int, int] | None:
    """(busy, total) time of all CPUs so far, in clock ticks, from Linux's /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal (guests are in user)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4], sum(ticks)) if fields[:1] == ["cpu"] and len(ticks) >= 5 else None


def busy_cores(before: tuple[int, int], after: tuple[int, int], cpus: int) -> float:
    """How many of ``cpus`` were busy between two cpu_times() readings."""
    total = after[1] - before[1]
    return cpus * max(0, after[0] - before[0]) / total if total > 0 else 0.0


def free_cores(window: float = 0.2) -> int:
    """The cores not busy with other work now: those we may use, less the CPUs busy over a short window (the last
    minute's load average where the CPUs' times cannot be read; alone, it lags: a run started right after another
    would count the finished one as a neighbour and take one thread on an idle machine)."""
    before = cpu_times()
    after = time.sleep(window) or cpu_times() if before is not None else None
    if before is not None and after is not None and after[1] > before[1]:
        busy = busy_cores(before, after, os.cpu_count() or 1)
    else:
        try:
            busy = os.getloadavg()[0]
        except (OSError, AttributeError):  # (unobtainable, or no such call here)
            busy = 0.0
    return max(1, cores() - int(busy + 0.5))


def torch_version() -> str:
    """torch's version, from its metadata where it has one (the app's form reads the cache without importing torch)."""
    from importlib import metadata

    try:
        return metadata.version("torch").split("+")[0]
    except metadata.PackageNotFoundError:  # (a torch built in place)
        import torch

        return torch.__version__.split("+")[0]


# ----------------------------------------------------------------- measuring
def _seconds(fn, clock) -> float:
    t = clock()
    fn()
    return clock() - t


def interleaved(fns: dict, budget_s: float, clock=time.perf_counter, min_reps: int = 2, warmup: bool = True) -> dict[str, float]:
    """Median seconds per call of each fn, measured A, B, B, A, ... (a busy machine slows all alike)
    until ``budget_s`` is spent (at least ``min_reps`` rounds, after a warm-up call each)."""
    for fn in fns.values() if warmup else ():
        fn()
    times = {k: [] for k in fns}
    start, r = time.perf_counter(), 0
    while r < min_reps or (time.perf_counter() - start < budget_s and r < 50):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            times[k].append(_seconds(fns[k], clock))
        r += 1
    return {k: statistics.median(v) for k, v in times.items()}


def matmul_fn(dtype: str, n: int = MATMUL_N):
    import torch

    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g).to(dt), torch.randn(n, n, generator=g).to(dt)
    return lambda: torch.mm(a, b)


def model_flops(model, tokens: int) -> float:
    """The model's FLOPs for a training step of ``tokens`` tokens (nanoGPT's estimate, PaLM's appendix B):
    6 per weight of every matmul (the blocks' matrices and the output layer) per token, forward and
    backward, and 12 * layers * context * width per token for attention's two T x T products (counted
    whole, as the explicit attention computes them). Embedding lookups, norms and biases are not matmuls."""
    cfg = model.cfg
    weights = sum(p.numel() for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2)
    weights += cfg.vocab_size * cfg.n_embd  # the output layer
    return tokens * (6 * weights + 12 * cfg.n_layer * cfg.block_size * cfg.n_embd)


def muon_flops(model, ns_steps: int = 5) -> float:
    """The FLOPs of Muon's Newton-Schulz iterations in one step: per hidden (A x B) matrix, A <= B after a
    transpose, each iteration X X^T (2A^2B), b G + c G G (2A^3) and a X + P X (2A^2B)."""
    total = 0
    for n, p in model.named_parameters():
        if n.startswith("blocks.") and p.dim() == 2:
            a, b = sorted(p.shape)
            total += ns_steps * (4 * a * a * b + 2 * a**3)
    return float(total)


class StepTimer:
    """The training step of ``tinygpt train`` (its optimizer, gradient accumulation and clipping, the fast
    kernels) for one shape and precision; ``step()`` returns the loss. ``preset``: the model's settings,
    batch_size, grad_accum, optimizer (Muon by default) and its learning rates. ``batches``: a function
    returning the next (x, y) batch (the estimate draws real ones from the corpus); by default fixed
    batches of a learnable sequence over ``vocab`` symbols."""

    def __init__(self, preset: dict, dtype: str, seed: int = 0, vocab: int = VOCAB, batches=None):
        import torch

        from tinygpt_tui import fast
        from tinygpt_tui.fast.kernels import accelerate
        from tinygpt_tui.model import GPT

        self.cfg = GPTConfig(vocab_size=vocab, **{k: v for k, v in preset.items() if k in MODEL_KEYS}).validate()
        self.batch = preset.get("batch_size", 32)
        self.accum = preset.get("grad_accum", 1)
        torch.manual_seed(seed)
        self.model = GPT(self.cfg)
        if fast.enabled():
            accelerate(self.model)
        tc = TrainConfig(optimizer=preset.get("optimizer", "muon"), lr=preset.get("lr", 1e-3), muon_lr=preset.get("muon_lr", 0.02),
                         muon_ns_steps=preset.get("muon_ns_steps"), muon_weight_decay=preset.get("muon_weight_decay"))
        self.ns_steps = tc.muon_ns_steps or 5
        self.opt = build_optimizer(self.model, tc, dtype)
        self.autocast = lambda: autocast(torch.device("cpu"), dtype)
        if batches is None:
            # a text with structure to learn: a random "alphabet" walked in a fixed order, with noise
            g = torch.Generator().manual_seed(seed + 1)
            walk = torch.randperm(vocab, generator=g)
            idx = (torch.arange(self.batch * (self.cfg.block_size + 1)) * 7 + torch.randint(0, 2, (1,), generator=g)) % vocab
            seq = walk[idx].view(self.batch, -1)
            seq = torch.where(torch.rand(seq.shape, generator=g) < 0.1, torch.randint(0, vocab, seq.shape, generator=g), seq)
            fixed = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()
            batches = lambda: fixed  # noqa: E731
        self.batches = batches
        self.model.train()

    @property
    def tokens(self) -> int:
        return self.batch * self.accum * self.cfg.block_size

    def step(self) -> float:
        import torch

        for _ in range(self.accum):
            self.x, y = self.batches()
            with self.autocast():
                _, loss = self.model(self.x, y)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.last = float(loss.detach())
        return self.last

    def forward_s(self) -> float:
        """Seconds for one forward pass of the last batch in inference mode (an evaluation's unit)."""
        import torch

        t = time.perf_counter()
        with torch.inference_mode(), self.autocast():
            self.model.eval()(self.x)
        self.model.train()
        return time.perf_counter() - t


def _size(p: dict) -> float:
    """A preset's work per step, roughly: layers x width^2 x tokens."""
    return p.get("n_layer", 4) * p.get("n_embd", 256) ** 2 * p.get("batch_size", 32) * p.get("block_size", 128)


def thread_times(timer: StepTimer, n: int, budget_s: float) -> dict[int, float]:
    """Median seconds of the step on 1 thread and on ``n``, taking turns until the budget is spent; n threads
    that lose clearly (a busy machine: their barriers wait for a core) are not measured again."""
    import torch

    times: dict[int, list] = {1: []} | ({n: []} if n > 1 else {})
    start = time.perf_counter()
    for r in range(50):
        for t in (list(times) if r % 2 == 0 else list(times)[::-1]):
            torch.set_num_threads(t)
            times[t].append(_seconds(timer.step, time.perf_counter))
        if n > 1 and min(times[n]) > 3 * max(times[1]):
            break  # (even warming up, n threads lost by far)
        if r >= 2 and (time.perf_counter() - start > budget_s or n > 1 and min(times[n][1:]) > LOST_BY_FAR * max(times[1][1:])):
            break
    torch.set_num_threads(1)
    return {t: statistics.median(v[1:] or v) for t, v in times.items()}


def run(budget_s: float = BUDGET_S, presets: dict | None = None, bf16: bool = True) -> dict:
    """Measure this CPU in about ``budget_s`` seconds: the matmul rate in each precision, each preset's step
    (``presets``: name -> preset dict; default tiny and the budget presets), the smallest budget one's on 1 thread
    against all cores. bf16 is measured at the smallest preset; the larger ones in bf16 alone when it won
    there (its lead grows with the width), in both otherwise. ``bf16=False`` leaves bf16 out."""
    import torch

    presets = presets or {"tiny": PRESETS["tiny"], **BUDGET_PRESETS}
    order = sorted(presets, key=lambda k: _size(presets[k]))
    on = next((k for k in order if k in BUDGET_PRESETS), order[0])  # threads: at the smallest budget preset
    t0 = time.perf_counter()
    n, threads = cores(), torch.get_num_threads()
    dtypes = ["fp32", "bf16"] if bf16 else ["fp32"]
    share = budget_s / (3 + 2 * len(presets))
    # per core, in this process's CPU time (a busy machine's waits for a core not counted: what the
    # machine can do, not what it did this minute); threads are measured apart, on the wall clock
    torch.set_num_threads(1)
    cpu = time.process_time
    try:
        if bf16:  # a first look at a small size: a CPU that emulates bf16 (17-27x slower) is not timed further
            small = interleaved({d: matmul_fn(d, SCREEN_N) for d in dtypes}, 0.2, cpu)
            if small["bf16"] > small["fp32"]:
                dtypes = ["fp32"]
        mm = interleaved({d: matmul_fn(d) for d in dtypes}, share, cpu)
        gflops = {d: round(2 * MATMUL_N**3 / s / 1e9, 2) for d, s in mm.items()}
        if "bf16" not in gflops and bf16:
            gflops["bf16"] = round(2 * SCREEN_N**3 / small["bf16"] / 1e9, 2)
        steps, losses = {}, {}
        for name in order:
            timers = {d: StepTimer(presets[name], d) for d in dtypes}
            first = {d: timers[d].step() for d in dtypes}  # the same start in each precision
            ms = interleaved({d: timers[d].step for d in dtypes}, share * 2, cpu, warmup=False)
            steps[name] = {d: round(s * 1e3, 3) for d, s in ms.items()}
            losses[name] = {"first": round(first[dtypes[0]], 4), **{d: round(timers[d].last, 4) for d in dtypes}}
            if name == order[0] and len(dtypes) == 2 and steps[name]["bf16"] < steps[name]["fp32"]:
                dtypes = ["bf16"]
        best = min(steps[on], key=steps[on].get)
        free = free_cores()
        th = thread_times(StepTimer(presets[on], best), n, share * 2)
    finally:
        torch.set_num_threads(threads)
    checked = [v for v in losses.values() if "bf16" in v and "fp32" in v]
    ok = bool(checked) and all(math.isfinite(v["bf16"]) and abs(v["bf16"] - v["fp32"]) <= BF16_LOSS_TOLERANCE for v in checked)
    try:
        load = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        load = None
    return {"version": VERSION, "machine": cpu_identity(), "torch": torch_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - t0, 2), "load_avg": load, "matmul_n": MATMUL_N, "matmul_gflops": gflops,
            "step_ms": steps, "loss": losses, "bf16_loss_ok": ok, "threads_ms": {str(k): round(v * 1e3, 3) for k, v in th.items()},
            "threads_preset": on, "threads_free": free}


# ----------------------------------------------------------------- the cache
def cache_path() -> Path | None:
    """$XDG_CACHE_HOME/tinygpt/probe.json (~/.cache by default, see engine/files.py cache_dir); None without a home to put it in."""
    folder = cache_dir()
    return folder / CACHE_FILE if folder is not None else None


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _rates(d) -> bool:  # a non-empty {precision: positive number} of the precisions the probe measures
    return isinstance(d, dict) and bool(d) and all(k in ("fp32", "bf16") and _positive(v) for k, v in d.items())


def check(doc) -> str | None:
    """Why ``doc`` is not a probe of this machine and torch (None: it is); every field read from it checked."""
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        return "it is not a probe result of this tinygpt version"
    if doc.get("machine") != cpu_identity():
        return "it was measured on another machine"
    if doc.get("torch") != torch_version():
        return f"it was measured with torch {str(doc.get('torch'))[:20]}, this is {torch_version()}"
    rates, steps, th = doc.get("matmul_gflops"), doc.get("step_ms"), doc.get("threads_ms")
    if not (_rates(rates) and "fp32" in rates and isinstance(steps, dict) and steps and all(map(_rates, steps.values()))):
        return "its matmul rates or step times are missing, not positive numbers or of an unknown precision"
    if not all(k in PRESETS for k in steps):  # (hand-edited: `tinygpt bench` printed every one, in one line)
        return "its step times are of presets this tinygpt does not have"
    if not (isinstance(th, dict) and "1" in th and len(th) <= 2 and all(k.isdigit() and int(k) >= 1 and _positive(v) for k, v in th.items())):
        return "its thread timings are missing, not positive numbers or more than the probe takes (1 thread and all the cores)"
    created, load, on = doc.get("created"), doc.get("load_avg"), doc.get("threads_preset")  # (what bench shows)
    if not (isinstance(doc.get("bf16_loss_ok"), bool) and _positive(doc.get("seconds")) and isinstance(created, str) and len(created) <= 40
            and created.isprintable() and (load is None or _positive(load) or load == 0) and isinstance(on, str) and on in PRESETS):
        return "its bf16 check or its record of when and how it was measured is missing or damaged"
    return None


def cached(note=None) -> dict | None:
    """The cached probe of this machine and torch version, or None (a note says why one was ignored)."""
    path = cache_path()
    if os.environ.get("TINYGPT_PROBE") == "0" or path is None or not os.path.exists(path):  # (0: the test suite; device.py rules)
        return None  # (os.path's: False where the folder can't be looked in, where Path.exists raised into the training form)
    try:
        doc = read_json(path, "it", MAX_CACHE_BYTES, error=SettingsError)
    except TinyGPTError as e:
        why = str(e).removesuffix(f": {path}")  # (the note names the path)
    else:
        why = check(doc)
        if why is None:
            return doc
    if note:
        note(f"note: ignoring the probe cache {path} ({why[:120]}); measuring again")
    return None


def save(doc: dict) -> Path:
    """Cache the probe; a TinyGPTError saying why when it can't (no home for a cache, not a writable file)."""
    path = cache_path()
    if path is None:
        raise TinyGPTError("no cache folder ($XDG_CACHE_HOME or a home folder)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(doc, indent=1) + "\n")
    except (OSError, TinyGPTError) as e:
        file = next((p for p in path.parents if p.is_file()), None)  # (a file where a folder should be)
        reason = "it is a folder" if path.is_dir() else f"{file} is a file, not a folder" if file else getattr(e, "strerror", None) or str(e)
        raise TinyGPTError(f"could not write {path}: {reason}") from None
    return path


def current(note=None, budget_s: float = BUDGET_S) -> dict | None:
    """The probe of this machine: cached, or measured now (and cached); None when it can't."""
    doc = cached(note)
    if doc is not None or os.environ.get("TINYGPT_PROBE") == "0":
        return doc
    if note:
        note("measuring this machine once (under 10 s on a free core; `tinygpt bench --probe` measures again) ...")
    try:
        doc = run(budget_s)
    except (RuntimeError, TypeError, ValueError) as e:  # a build without bf16 on the CPU, say
        if note:
            note(f"note: the probe could not run ({str(e).splitlines()[0][:100]}); using the default settings")
        return None
    try:
        save(doc)
    except TinyGPTError as e:
        if note:
            note(f"note: the probe is not cached ({str(e)[:160]}): it will run again next time")
    return doc


# ----------------------------------------------------------------- choices
def bf16_wins(doc: dict) -> bool:
    """bf16 measured faster than fp32 at the matmul, and with a sane loss."""
    r = doc["matmul_gflops"]
    return doc["bf16_loss_ok"] and r.get("bf16", 0) > 1.1 * r["fp32"]


def choose_dtype(doc: dict, n_embd: int, why: dict | None = None) -> str:
    """bf16 when its step was measured faster than fp32's at the nearest width probed (and its matmuls faster, its
    loss sane); fp32 otherwise. ``why``, given: its "dtype" says why."""
    widths = {name: PRESETS.get(name, {}).get("n_embd", 0) for name in doc["step_ms"]}
    near = min((w for w in widths.items() if w[1]), key=lambda kv: abs(kv[1] - n_embd), default=None)
    ms = doc["step_ms"][near[0]] if near is not None else {"bf16": 0}  # (only bf16 measured there: it won at a narrower width)
    dtype = min(ms, key=ms.get) if bf16_wins(doc) else "fp32"
    lost = not doc["bf16_loss_ok"] and doc["matmul_gflops"].get("bf16", 0) > 1.1 * doc["matmul_gflops"]["fp32"]
    (why if why is not None else {})["dtype"] = ("measured faster here" if dtype == "bf16" else "bf16's loss was off here" if lost
                                                 else "bf16 measured no faster here")
    return dtype


def choose_threads(doc: dict, why: dict | None = None) -> int:
    """More threads only when measured faster and that many cores are free now; else 1 (``why``: its "threads" says why)."""
    th = {int(k): v for k, v in doc["threads_ms"].items()}
    best = min(th, key=lambda k: th[k])
    faster = best > 1 and th[1] / th[best] >= THREADS_GAIN
    free = free_cores() if faster else 0
    n = best if faster and free >= best else 1
    (why if why is not None else {})["threads"] = ("measured faster here" if n > 1 else f"{free} of {cores()} cores free" if faster
                                                   else "the only core" if len(th) == 1 else "more threads no faster here")
    return n


def free_for(th: dict[int, float], free: int) -> int:
    """The cores that were free for thread timings ``th`` (threads -> seconds), by free_cores()'s ``free``: fewer
    than the most timed when those lost by far (a core held by another process, which can wake after it looked)."""
    n = max(th)
    return min(free, n - 1) if n > 1 and th[n] > LOST_BY_FAR * th[1] else free


def retime_threads(doc: dict, note=None) -> dict:
    """``doc``, its thread timings taken again (and cached) when more cores are free now than then: on a busy
    machine more threads lose (their barriers wait for a core), which says nothing of it at rest. About a second,
    once: the new timings remember the cores free for them (thread_times stops at the first round lost by far)."""
    import torch

    was = doc.get("threads_free")
    was = was if isinstance(was, int) and not isinstance(was, bool) else 1  # (a cache from before this was kept)
    was = free_for({int(k): v for k, v in doc["threads_ms"].items()}, was)
    n = min(cores(), free_cores())
    if n <= was or doc.get("threads_preset") not in PRESETS:
        return doc
    if note:
        note(f"note: {n} cores are free now, {was} {'was' if was == 1 else 'were'} when the probe timed its threads: "
             "timing them again (about 2 s)")
    preset, threads = PRESETS[doc["threads_preset"]], torch.get_num_threads()
    try:
        th = thread_times(StepTimer(preset, choose_dtype(doc, preset.get("n_embd", 0))), n, 1.0)
    finally:
        torch.set_num_threads(threads)
    doc = {**doc, "threads_ms": {str(k): round(v * 1e3, 3) for k, v in th.items()}, "threads_free": n}
    try:
        save(doc)
    except TinyGPTError:
        pass  # (used for this run; timed again next time)
    return doc


def auto_preset(seconds: float | None, device: str = "auto") -> str:
    """What --preset auto stands for with this budget, measuring nothing: on a CPU by the cached probe, as settle()
    picks (a GPU's run makes none; one cached by `tinygpt bench --probe` is read here too), else by the budget."""
    doc = cached() if seconds and device_kind(device) in ("auto", "cpu") else None
    return budget_preset(seconds, doc["step_ms"] if doc else None)


def settle(cfg, note=None, why: dict | None = None):
    """cfg with what it left to the machine chosen from the probe on a CPU: --dtype auto, --threads unset, and
    --preset auto with --minutes (by the measured step times). Elsewhere, or without a probe, cfg as it was.
    ``why``, given: why the probe chose the precision and threads it chose ("dtype", "threads"), in a few words."""
    kind = device_kind(cfg.device)
    if cfg.threads is not None:
        check_threads(cfg.threads)
    kind = pick_device("auto").type if kind == "auto" else kind  # (a CPU-only machine's fp16: refused before measuring)
    if cfg.dtype == "fp16" and kind == "cpu":
        raise SettingsError("fp16 is for GPUs; on the CPU use bf16 or fp32")
    if kind in ("cuda", "mps") or int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return cfg
    wants = cfg.dtype in ("auto", "bf16") or cfg.threads is None or (cfg.preset == "auto" and cfg.time_budget and not cfg.resume)
    doc = current(note) if wants else None
    if cfg.dtype == "bf16" and note and not (bf16_wins(doc) if doc else cpu_has_fast_bf16()):
        note("note: this CPU has no fast bf16 (measured slower than fp32, or no AMX/AVX-512 BF16): this run will be slow; "
             "--dtype auto picks fp32")
    if doc is None:
        return cfg
    out = dataclasses.replace(cfg)
    if out.threads is None:
        out.threads = choose_threads(retime_threads(doc, note), why)
    if not out.resume:  # (a resumed run keeps its preset and precision)
        if out.preset == "auto":
            out.preset = budget_preset(out.time_budget, doc["step_ms"])
        if out.dtype == "auto":
            width = out.n_embd or PRESETS.get(out.preset, {}).get("n_embd") or GPTConfig().n_embd
            out.dtype = choose_dtype(doc, width, why) if out.preset in PRESETS else "auto"
    return out
