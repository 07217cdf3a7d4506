"""The one training loop, shared by `tinygpt train`, `python train.py`, the app and torchrun.

    for event in train(TrainConfig(corpus="input.txt", name="mine", max_steps=2000), stop_event):
        print(event)

It yields events (Started, Step, Eval, Saved, Finished) and appends the same
records to the model folder's metrics.jsonl, so anyone can follow a run. It
stops cleanly when ``stop_event`` is set: one more checkpoint, then Finished.

Everything a distributed run needs is explicit: ``DistInfo`` says which rank
this process is; only rank 0 writes; all ranks agree each step on stopping.

Determinism: the batches of step s on rank r are drawn from a generator
seeded with (seed, r, s), and dropout's RNG likewise, so a resumed run draws
exactly what the uninterrupted run would have drawn; the RNG state is a
function of the seed and the step, both saved in the checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.config import ConfigError, GPTConfig
from tinygpt_tui.data import Dataset, read_corpus
from tinygpt_tui.errors import CorpusError, SettingsError, TinyGPTError
from tinygpt_tui.tokenizer import CharTokenizer

# ----------------------------------------------------------------- settings
MODEL_KEYS = ("block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "pos_encoding", "ffn", "norm", "tie_weights", "mlp_ratio")

# Presets: sizes a learner can pick by name. "small" is the CPU default, chosen
# by measurement on a 2-core AVX-512 machine (see README, Performance).
OPTIMIZERS = ("muon", "adamw")
# Sized for a wall-clock budget on a laptop CPU (measured on 2 cores, Tiny Shakespeare: see
# docs/performance.md). "auto", the default, picks one of these from --minutes, else "small".
BUDGET_PRESETS: dict[str, dict] = {
    # 60 s: small and fast steps beat a bigger model (3 layers beat 4); context 64 (128 was 0.12 worse)
    "1min": dict(n_layer=3, n_head=4, n_embd=128, block_size=64, batch_size=16, lr=3e-3, warmup_steps=20,
                 eval_interval=200, eval_iters=10, dropout=0.0),
    "5min": dict(n_layer=4, n_head=6, n_embd=192, block_size=128, batch_size=16, lr=3e-3, warmup_steps=20,
                 eval_interval=250, eval_iters=10, dropout=0.0),
}


def budget_preset(seconds: float | None) -> str:
    """The preset "auto" stands for: sized for the time budget, or "small" without one."""
    if not seconds:
        return "small"
    return "1min" if seconds <= 180 else "5min" if seconds <= 900 else "small"


PRESETS: dict[str, dict] = {
    **BUDGET_PRESETS,
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, batch_size=16, lr=3e-3, warmup_steps=20, eval_interval=50, eval_iters=5),
    "small": dict(n_layer=4, n_head=4, n_embd=256, batch_size=32, lr=2e-3, warmup_steps=50, eval_interval=200, eval_iters=10),
    "medium": dict(n_layer=6, n_head=6, n_embd=384, batch_size=32, lr=1e-3, warmup_steps=100, eval_interval=250, eval_iters=20, dropout=0.1),
    "large": dict(n_layer=8, n_head=8, n_embd=512, batch_size=64, lr=6e-4, warmup_steps=200, eval_interval=250, eval_iters=20, dropout=0.2),
    # the shape of nanoGPT's default Shakespeare model and the video's gpt.py (10.7M parameters)
    "nanogpt": dict(n_layer=6, n_head=6, n_embd=384, batch_size=64, lr=1e-3, warmup_steps=100, eval_interval=250, eval_iters=20, dropout=0.2,
                    pos_encoding="learned", ffn="gelu", norm="layernorm", bias=False),
}


@dataclass
class TrainConfig:
    corpus: str = ""
    name: str = ""
    models_dir: str | None = None
    preset: str = "auto"  # auto: sized for --minutes (see BUDGET_PRESETS), else small
    # model (None: from the preset, then GPTConfig's default)
    block_size: int | None = None
    n_layer: int | None = None
    n_head: int | None = None
    n_embd: int | None = None
    dropout: float | None = None
    bias: bool | None = None
    pos_encoding: str | None = None
    ffn: str | None = None
    norm: str | None = None
    tie_weights: bool | None = None
    mlp_ratio: float | None = None
    # optimisation
    batch_size: int | None = None
    grad_accum: int = 1
    max_steps: int | None = None  # stop after this many steps ...
    time_budget: float | None = None  # ... or after this many seconds; the LR schedule fits whichever is set
    lr: float | None = None
    min_lr_ratio: float = 0.1
    warmup_steps: int | None = None
    optimizer: str | None = None  # muon (hidden matrices; AdamW for the rest) or adamw; None: from the preset
    muon_lr: float | None = None  # Muon's peak learning rate (the schedule scales it with --lr's)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    checkpoint_activations: bool = False  # recompute each block's activations in the backward pass (less memory)
    # split a batch into micro-batches (same step, same result) when the activations it keeps for
    # the backward pass would pass this many GB; None: 1 GB on a CPU, no split on a GPU; 0: never
    memory_budget: float | None = None
    # reporting
    eval_interval: int | None = None
    eval_iters: int | None = None
    log_interval: int = 10
    sample_chars: int = 200
    seed: int = 1337
    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    resume: bool = False
    command: str = ""

    def resolved(self) -> "TrainConfig":
        """Fill what was left None from the preset and the defaults, and check everything."""
        if self.preset != "auto" and self.preset not in PRESETS:
            raise SettingsError(f"unknown preset {self.preset!r}; choose one of auto, {', '.join(PRESETS)}")
        out = TrainConfig(**asdict(self))
        if out.preset == "auto":
            out.preset = budget_preset(out.time_budget)  # recorded, so the card says what ran
        defaults = {**asdict(GPTConfig()), "batch_size": 32, "lr": 1e-3, "warmup_steps": 100, "eval_interval": 250, "eval_iters": 20,
                    "optimizer": "muon", "muon_lr": 0.02}
        for k, v in {**defaults, **PRESETS[out.preset]}.items():
            if hasattr(out, k) and getattr(out, k) is None:
                setattr(out, k, v)
        if out.max_steps is None and out.time_budget is None:
            out.max_steps = 2000
        out.check()
        return out

    def check(self) -> None:
        def whole(name, lo=1):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise SettingsError(f"{name.replace('_', '-')} must be a whole number of at least {lo}, got {v!r}")

        def real(name, lo, hi, lo_open=False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
                raise SettingsError(f"{name.replace('_', '-')} must be {'above' if lo_open else 'at least'} {lo} and at most {hi}, got {v!r}")

        if not self.name or not str(self.name).strip():
            raise SettingsError("a model needs a name (--name)")
        check_name(self.name)
        for n in ("batch_size", "grad_accum", "eval_interval", "eval_iters", "log_interval"):
            whole(n)
        whole("sample_chars", 0)
        if self.max_steps is not None:
            whole("max_steps")
        if self.time_budget is not None:
            real("time_budget", 0, 1e9, lo_open=True)
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise SettingsError(f"warmup-steps must be 0 or more, got {self.warmup_steps!r}")
        real("lr", 0, 10, lo_open=True)
        real("min_lr_ratio", 0, 1)
        if self.optimizer not in OPTIMIZERS:
            raise SettingsError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        real("muon_lr", 0, 10, lo_open=True)
        real("weight_decay", 0, 10)
        real("beta1", 0, 1)
        real("beta2", 0, 1)
        real("grad_clip", 0, 1e6)
        if self.memory_budget is not None:
            real("memory_budget", 0, 1e6)
        if self.threads is not None:
            whole("threads")
        self.model_config(vocab_size=1)  # raises ConfigError for an impossible shape

    def model_config(self, vocab_size: int) -> GPTConfig:
        try:
            return GPTConfig(vocab_size=vocab_size, **{k: getattr(self, k) for k in MODEL_KEYS}).validate()
        except ConfigError as e:
            raise SettingsError(str(e).replace("n_embd", "n-embd").replace("n_head", "n-head").replace("block_size", "block-size")) from None

    def training_dict(self) -> dict:
        skip = set(MODEL_KEYS) | {"corpus", "name", "models_dir", "resume", "command", "device", "threads"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


DEFAULT_CPU_MEMORY_BUDGET = 1.0  # GB of activations per micro-batch (measured: the 10.7M shape at batch 64 keeps 2.5 GB)


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
            _, loss = model(x, x)
        del loss
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


def build_optimizer(model, cfg: TrainConfig) -> "Optimizers":
    """The optimizer `tinygpt train` uses for cfg.optimizer, cfg.lr, cfg.muon_lr, weight decay and betas."""
    import torch

    named = list(model.named_parameters())
    parts = []
    if cfg.optimizer == "muon":
        # Muon orthogonalizes the update of each hidden weight matrix (the 2-D weights inside the
        # blocks); embeddings, the output layer, norms and biases stay with AdamW, as Muon's authors
        # prescribe. Its learning rate follows the same schedule, scaled by muon_lr / lr.
        hidden = [p for n, p in named if n.startswith("blocks.") and p.dim() == 2]
        named = [(n, p) for n, p in named if not (n.startswith("blocks.") and p.dim() == 2)]
        from tinygpt_tui.engine.muon import BatchedMuon  # torch's Muon, its iterations batched over same-shape matrices

        muon = BatchedMuon(hidden, lr=cfg.muon_lr, weight_decay=0.0, momentum=0.95, nesterov=True)
        muon.param_groups[0]["lr_scale"] = cfg.muon_lr / cfg.lr
        parts.append(muon)
    decay = [p for _, p in named if p.dim() >= 2]
    no_decay = [p for _, p in named if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kw = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    try:
        parts.append(torch.optim.AdamW(groups, fused=True, **kw))
    except (RuntimeError, TypeError):
        parts.append(torch.optim.AdamW(groups, **kw))
    return Optimizers(parts)


class Optimizers:
    """One or more torch optimizers (Muon and AdamW) behind a single optimizer's interface.

    state_dict() numbers the parameters across the parts in order, as one optimizer
    over all their groups would, so a checkpoint holds one flat optimizer state.
    """

    def __init__(self, parts):
        self.parts = list(parts)

    @property
    def param_groups(self) -> list[dict]:
        return [g for o in self.parts for g in o.param_groups]

    def step(self) -> None:
        for o in self.parts:
            o.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.parts:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        state, groups, offset = {}, [], 0
        for o in self.parts:
            sd = o.state_dict()
            state.update({i + offset: st for i, st in sd["state"].items()})
            groups += [{**g, "params": [i + offset for i in g["params"]]} for g in sd["param_groups"]]
            offset += sum(len(g["params"]) for g in sd["param_groups"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict) -> None:
        groups, first, offset = sd["param_groups"], 0, 0
        for o in self.parts:
            mine = groups[first : first + len(o.param_groups)]
            ids = [i for g in mine for i in g["params"]]
            if len(ids) != sum(len(g["params"]) for g in o.param_groups):
                raise ValueError("the saved optimizer has different parameter groups")
            o.load_state_dict({
                "state": {i - offset: sd["state"][i] for i in ids if i in sd["state"]},
                "param_groups": [{**g, "params": [i - offset for i in g["params"]]} for g in mine],
            })
            first, offset = first + len(mine), offset + len(ids)


class NameTaken(SettingsError):
    """A fresh run named after a model that already exists (the app words its own remedy)."""

    def __init__(self, name: str, models_dir):
        self.name, self.models_dir = name, models_dir
        super().__init__(f"a model named {name!r} already exists in {models_dir}; pick another --name, or --resume it")


def check_name(name: str) -> None:
    bad = set('/\\\0') | {chr(i) for i in range(32)}
    if name in (".", "..") or any(c in bad for c in name) or len(name) > 100 or name.startswith("."):
        raise SettingsError(f"model name {name!r} can't be a folder name: use letters, digits, spaces, - or _ (at most 100)")


# ----------------------------------------------------------------- events
@dataclass
class Event:
    kind = "event"

    def record(self) -> dict:
        return {"event": self.kind, **asdict(self)}


@dataclass
class Started(Event):
    kind = "start"
    step: int
    max_steps: int | None
    time_budget: float | None
    params: int
    device: str
    dtype: str
    tokens_per_step: int
    world_size: int
    model: dict = field(default_factory=dict)
    corpus: str = ""
    resumed: bool = False
    dropped_chars: list = field(default_factory=list)
    time: float = 0.0
    micro_batch: int = 0  # sequences per forward pass ...
    accum: int = 1  # ... and passes per step (their product is this process's share of the batch)
    activation_mb: float | None = None  # kept for the backward pass per micro-batch (measured), when a memory budget applies


@dataclass
class Step(Event):
    kind = "step"
    step: int
    loss: float
    lr: float
    tokens_per_s: float
    elapsed_s: float
    progress: float  # 0..1 of the run (steps or time budget, whichever is nearer its end)
    eta_s: float
    tokens_seen: int


@dataclass
class Eval(Event):
    kind = "eval"
    step: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    elapsed_s: float
    sample: str = ""


@dataclass
class Saved(Event):
    kind = "saved"
    step: int
    path: str
    elapsed_s: float


@dataclass
class Finished(Event):
    kind = "finish"
    step: int
    reason: str  # "done" | "stopped" | "budget"
    val_loss: float | None  # over the whole validation split (what `tinygpt eval` reports)
    best_val_loss: float | None
    elapsed_s: float
    path: str
    # a checksum of each rank's weights (param_digest); a distributed run's ranks must agree
    rank_digests: list = field(default_factory=list)


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
    """The device one rank of a distributed run trains on: GPU number local_rank, or the CPU.

    The process group's backend follows from it (NCCL for CUDA, gloo for the
    CPU), so ``--device cpu`` trains with gloo even where GPUs are present.
    """
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


# ----------------------------------------------------------------- schedule
def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup over warmup_steps, then cosine from lr to lr*min_lr_ratio over the run's progress."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * p))


def step_seed(seed: int, rank: int, step: int, micro: int = 0) -> int:
    return (seed * 1_000_003 + rank * 7_919 + step * 31 + micro) % (2**63 - 1)


# ----------------------------------------------------------------- evaluation
def estimate_loss(model, data: Dataset, split: str, iters: int, batch_size: int, device, dtype: str, seed: int,
                  dist: "DistInfo | None" = None) -> float:
    """Mean loss over ``iters`` random batches (nanoGPT's estimate).

    In a distributed run every rank draws the same ``iters`` batches from the
    seed but evaluates only every world_size-th one, and the sums are added
    up: the figure is the one a single process would report, in 1/world_size
    of the time.
    """
    import torch

    from tinygpt_tui.engine.device import autocast

    rank, world = (dist.rank, dist.world_size) if dist else (0, 1)
    cpu = torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    was = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    with torch.inference_mode(), autocast(device, dtype):
        for i in range(iters):
            if i % world != rank:
                data.batch(split, batch_size, gen, cpu)  # another rank's batch: only advance the generator
                continue
            x, y = data.batch(split, batch_size, gen, device)
            total += model(x, y)[1].double()
    model.train(was)
    return _sum_over_ranks(total, world) / iters


def evaluate_split(model, data: Dataset, split: str = "val", device=None, batch_size: int = 32, dtype: str = "fp32",
                   dist: "DistInfo | None" = None) -> float:
    """Mean loss over every non-overlapping window of a split, in order: deterministic.

    Distributed, each rank takes every world_size-th batch of windows and the
    sums are added up, so every world size gives the same figure.
    """
    import torch

    from tinygpt_tui.engine.device import autocast

    rank, world = (dist.rank, dist.world_size) if dist else (0, 1)
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    with torch.inference_mode(), autocast(device, dtype):
        for i, (x, y) in enumerate(data.windows(split, batch_size, device)):
            if i % world != rank:
                continue
            logits, _ = model(x)
            total += torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), reduction="sum").double()
            count += y.numel()
    model.train(was)
    count = int(_sum_over_ranks(torch.tensor(float(count), dtype=torch.float64, device=device), world))
    return _sum_over_ranks(total, world) / max(count, 1)


def _sum_over_ranks(t, world: int) -> float:
    """A scalar tensor's sum over all ranks (itself when not distributed)."""
    if world > 1:
        import torch.distributed as torch_dist

        t = t.clone()
        torch_dist.all_reduce(t)
    return float(t.item())


# ----------------------------------------------------------------- the loop
class Run:
    """Everything one training run holds; ``events()`` runs it."""

    def __init__(self, cfg: TrainConfig, stop_event: threading.Event | None = None, dist: DistInfo | None = None):
        self.stop_event = stop_event or threading.Event()
        self.dist = dist or DistInfo()
        self.raw_cfg = cfg

    # -- setup ------------------------------------------------------------
    def _prepare(self):
        import torch

        from tinygpt_tui.engine.device import describe, pick_device, pick_dtype

        cfg = self.raw_cfg
        models_dir = Path(cfg.models_dir) if cfg.models_dir else ckpt.default_models_dir()
        if not cfg.name or not str(cfg.name).strip():
            raise SettingsError("a model needs a name (--name)")
        check_name(cfg.name)
        self.folder = models_dir / cfg.name
        self.start_step, self.elapsed_before, self.tokens_before = 0, 0.0, 0
        self.best_val = None
        state = None
        if cfg.resume:
            if not self.folder.is_dir():
                raise ckpt.CheckpointError(f"nothing to resume: {self.folder} does not exist")
            doc, model_cfg = ckpt.check_folder(self.folder)
            state_tensors, state_meta = ckpt.load_train_state(self.folder)
            saved = doc.get("training", {})
            merged = {**{k: v for k, v in saved.items() if k in {f.name for f in fields(TrainConfig)}}, **{k: model_cfg.to_dict()[k] for k in MODEL_KEYS}}
            merged.setdefault("optimizer", "adamw")  # runs saved before Muon was offered used AdamW
            # what the user gave now wins for the length of the run and the reporting; the shape can't change.
            # The length is one setting: given steps or minutes (or both), the run's length is what was given,
            # and a limit left out is no limit (`--resume --max-steps 600` after `--minutes 1` must not stop at
            # the old minute). Given neither, the saved limits stand (a stopped run carries on to its end).
            if cfg.max_steps is not None or cfg.time_budget is not None:
                merged["max_steps"], merged["time_budget"] = cfg.max_steps, cfg.time_budget
            for k in ("eval_interval", "eval_iters", "log_interval", "sample_chars", "dtype", "checkpoint_activations",
                      "memory_budget"):
                v = getattr(cfg, k)
                if v is not None and v != getattr(TrainConfig(), k):
                    merged[k] = v
            new = TrainConfig(**{**asdict(TrainConfig()), **merged})
            new.corpus, new.name, new.models_dir, new.resume = cfg.corpus, cfg.name, cfg.models_dir, True
            new.device, new.threads, new.command = cfg.device, cfg.threads, cfg.command
            if not new.corpus:
                new.corpus = doc.get("corpus", {}).get("path", "")
            cfg = new.resolved() if new.max_steps or new.time_budget else new
            cfg.check()
            state = (state_tensors, state_meta)
            self.start_step = state_meta["step"]
            self.elapsed_before = float(state_meta.get("elapsed_s", 0.0))
            self.tokens_before = int(state_meta.get("tokens_seen", 0))
            self.best_val = state_meta.get("best_val_loss")
            tokenizer = CharTokenizer.from_json((self.folder / ckpt.VOCAB).read_text(encoding="utf-8"))
            corpus = read_corpus(cfg.corpus)
            want = doc.get("corpus", {}).get("sha256")
            if want and want != corpus.sha256:
                raise CorpusError(f"{cfg.corpus} is not the corpus {cfg.name} was trained on (sha256 differs); resume with the same file")
        else:
            cfg = cfg.resolved()
            corpus = read_corpus(cfg.corpus)
            if self.folder.exists() and (self.folder / ckpt.CONFIG).exists():
                raise NameTaken(cfg.name, models_dir)
            tokenizer = CharTokenizer.from_text(corpus.text)
        self.cfg, self.corpus, self.tokenizer = cfg, corpus, tokenizer
        self.data = Dataset(corpus, tokenizer, cfg.block_size)
        if self.dist.is_main:  # one run per model folder: a second one is refused, never interleaved
            self.lock = ckpt.FolderLock(self.folder)
            if not cfg.resume and (self.folder / ckpt.CONFIG).exists():
                self.lock.release()
                raise NameTaken(cfg.name, models_dir)

        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = dist_device(cfg.device, self.dist) if self.dist.world_size > 1 else pick_device(cfg.device)
        self.model_cfg = cfg.model_config(tokenizer.vocab_size)
        self.dtype = pick_dtype(self.device, cfg.dtype, self.model_cfg.n_embd)
        self.device_name = describe(self.device)

        # gradient accumulation: the global batch is batch_size * grad_accum whatever the world size
        W = self.dist.world_size
        if cfg.grad_accum % W == 0:
            self.micro_batch, self.accum = cfg.batch_size, cfg.grad_accum // W
        elif cfg.batch_size % W == 0 and cfg.grad_accum == 1:
            self.micro_batch, self.accum = cfg.batch_size // W, 1
        else:
            raise SettingsError(
                f"the global batch ({cfg.batch_size} x {cfg.grad_accum} accumulation steps) can't be shared by {W} processes; "
                f"make --grad-accum or --batch-size divisible by {W}"
            )
        self.tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.block_size

        from tinygpt_tui.model import GPT

        torch.manual_seed(cfg.seed)
        self.model = GPT(self.model_cfg).to(self.device)
        self.model.checkpointing = bool(cfg.checkpoint_activations)
        self.activation_mb = None  # what a micro-batch keeps for the backward pass (measured when a budget applies)
        budget = memory_budget_bytes(cfg.memory_budget, self.device)
        if budget:
            per_seq = activation_bytes_per_sequence(self.model, self.model_cfg.block_size, self.device, self.dtype)
            k = micro_batch_split(self.micro_batch, per_seq, budget)
            self.micro_batch, self.accum = self.micro_batch // k, self.accum * k
            self.activation_mb = per_seq * self.micro_batch / 1e6
        self.optimizer = self._make_optimizer()
        if state is not None:
            weights = ckpt.state_weights(state[0])  # its own copy: the weights file may be a save behind
            if self.model_cfg.tie_weights and "tok_emb.weight" in weights:
                weights["head.weight"] = weights["tok_emb.weight"]
            try:
                self.model.load_state_dict(weights)
            except RuntimeError as e:
                raise ckpt.CheckpointError(f"the weights in the training state do not fit the model: {str(e).splitlines()[-1].strip()[:160]}") from None
            self._load_optimizer(*state)
        self.ddp_model = self.model
        if W > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp_model = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.dtype == "fp16" else None

    def _make_optimizer(self) -> "Optimizers":
        return build_optimizer(self.model, self.cfg)

    def optimizer_state(self):
        """Optimizer moments as flat tensors (safetensors) and the rest as JSON."""
        sd = self.optimizer.state_dict()
        tensors, scalars = {}, {}
        for idx, st in sd["state"].items():
            for k, v in st.items():
                if hasattr(v, "detach"):
                    tensors[f"opt.{idx}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars[f"{idx}.{k}"] = v
        groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
        return tensors, {"param_groups": groups, "scalars": scalars}

    def _load_optimizer(self, tensors, meta):
        import torch

        sd = self.optimizer.state_dict()
        state = {}
        for key, t in tensors.items():
            if not key.startswith("opt."):
                continue
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = t.to(self.device) if name != "step" else t
        for key, v in meta.get("scalars", {}).items():
            idx, name = key.split(".", 1)
            state.setdefault(int(idx), {})[name] = torch.tensor(v) if name == "step" else v
        groups = meta.get("param_groups") or sd["param_groups"]
        if len(groups) != len(sd["param_groups"]):
            raise ckpt.CheckpointError("training state does not match this model's optimizer; cannot resume")
        for g, live in zip(groups, sd["param_groups"]):
            g["params"] = live["params"]
        try:
            self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError, RuntimeError) as e:
            raise ckpt.CheckpointError(f"cannot restore the optimizer state: {e}") from None

    # -- saving -------------------------------------------------------------
    def _doc(self, step, elapsed, tokens, val_loss=None, train_loss=None) -> dict:
        import torch

        from tinygpt_tui import __version__

        cfg = self.cfg
        return {
            "name": cfg.name,
            "model": self.model_cfg.to_dict(),
            "training": cfg.training_dict(),
            "corpus": {"name": self.corpus.name, "path": self.corpus.path, "sha256": self.corpus.sha256, "chars": len(self.corpus.text)},
            "figures": {
                "step": step,
                "tokens_seen": tokens,
                "train_time_s": round(elapsed, 2),
                "best_val_loss": self.best_val,
                "val_loss": val_loss,
                "train_loss": train_loss,
                "params": self.model.num_params(),
            },
            "device": self.device_name,
            "dtype": self.dtype,
            "world_size": self.dist.world_size,
            "command": cfg.command,
            "versions": {"tinygpt": __version__, "torch": torch.__version__.split("+")[0]},
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def save(self, step, elapsed, tokens, val_loss=None, train_loss=None, final_val=None):
        doc = self._doc(step, elapsed, tokens, final_val if final_val is not None else val_loss, train_loss)
        if final_val is None:
            doc["figures"]["val_loss_is"] = "estimate"
        else:
            doc["figures"]["val_loss_is"] = "full validation split"
        tensors, meta = self.optimizer_state()
        meta.update(elapsed_s=elapsed, tokens_seen=tokens, best_val_loss=self.best_val, seed=self.cfg.seed)
        ckpt.save_model(self.folder, self.model, self.tokenizer, doc, card=ckpt.render_card(doc), train_state=(tensors, meta))

    # -- the loop -------------------------------------------------------------
    def events(self):
        import torch
        import torch.distributed as torch_dist

        from tinygpt_tui.engine.device import autocast
        from tinygpt_tui.sampler import Generation, SamplingSettings

        try:
            self._prepare()
            failed = None
        except TinyGPTError as e:
            failed = e
        if self.dist.world_size > 1:
            failed = _agree_on_failure(failed, self.dist)
        if failed is not None:
            raise failed
        cfg, model, dist = self.cfg, self.model, self.dist
        main = dist.is_main
        if main:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                if cfg.resume:
                    ckpt.truncate_metrics(self.folder, self.start_step)
            except OSError as e:
                raise ckpt.CheckpointError(f"cannot write to {self.folder}: {e.strerror or e}") from None

        pending: list[dict] = []

        def emit(ev):
            if main:
                rec = ev.record()
                rec["time"] = round(time.time(), 3)
                pending.append(rec)
                if not isinstance(ev, Step) or len(pending) >= 20:
                    flush()
            return ev

        def flush():
            if pending:
                try:
                    ckpt.append_metrics(self.folder, pending)
                except OSError:
                    pass  # metrics are a log; a full disk must not kill the run (the save will say so)
                pending.clear()

        started = Started(
            step=self.start_step, max_steps=cfg.max_steps, time_budget=cfg.time_budget, params=model.num_params(),
            device=self.device_name, dtype=self.dtype, tokens_per_step=self.tokens_per_step, world_size=dist.world_size,
            model=self.model_cfg.to_dict(), corpus=self.corpus.name, resumed=cfg.resume, dropped_chars=self.data.dropped[:50],
            micro_batch=self.micro_batch, accum=self.accum,
            activation_mb=None if self.activation_mb is None else round(self.activation_mb, 1),
        )
        yield emit(started)

        step, tokens = self.start_step, self.tokens_before
        t0 = time.perf_counter()
        elapsed = self.elapsed_before
        last_log_t, last_log_step = t0, step
        reason = "done"
        train_loss_est = val_est = None
        gen = torch.Generator()
        model.train()

        def progress_of(step, elapsed):
            p = 0.0
            if cfg.max_steps:
                p = max(p, step / cfg.max_steps)
            if cfg.time_budget:
                p = max(p, elapsed / cfg.time_budget)
            return p

        def do_eval(step, elapsed):
            nonlocal train_loss_est, val_est
            # the same batches whatever the world size (each rank takes its share): figures compare across runs
            es = step_seed(cfg.seed, 0, step, 999)
            train_loss_est = estimate_loss(model, self.data, "train", cfg.eval_iters, cfg.batch_size, self.device, self.dtype, es, dist)
            val_est = estimate_loss(model, self.data, "val", cfg.eval_iters, cfg.batch_size, self.device, self.dtype, es + 1, dist)
            if self.best_val is None or val_est < self.best_val:
                self.best_val = val_est
            sample = ""
            if main and cfg.sample_chars:
                s = SamplingSettings(max_new_tokens=cfg.sample_chars, temperature=0.8, seed=cfg.seed + step)
                sample = "".join(Generation(model, self.tokenizer, "\n", s))
                model.train()
            return Eval(step=step, train_loss=train_loss_est, val_loss=val_est, best_val_loss=self.best_val, elapsed_s=elapsed, sample=sample)

        self.progress_start = progress_of(step, elapsed)
        while True:
            elapsed = self.elapsed_before + (time.perf_counter() - t0)
            progress = progress_of(step, elapsed)
            stop_now = self.stop_event.is_set()
            if dist.world_size > 1:
                # every rank agrees on stopping (any rank asked) and on the schedule (rank 0's clock)
                flag = torch.tensor([1.0 if stop_now else 0.0], device=self.device)
                torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MAX)
                stop_now = flag.item() > 0
                clock = torch.tensor([progress, elapsed], dtype=torch.float64, device=self.device)
                torch_dist.broadcast(clock, src=0)
                progress, elapsed = clock.tolist()
            if stop_now:
                reason = "stopped"
                break
            if progress >= 1.0:
                reason = "done" if (cfg.max_steps and step >= cfg.max_steps) else "budget"
                break

            lr = lr_at(cfg, step, progress)
            for g in self.optimizer.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
            loss_sum = 0.0
            for micro in range(self.accum):
                gen.manual_seed(step_seed(cfg.seed, dist.rank, step, micro))
                torch.manual_seed(step_seed(cfg.seed, dist.rank, step, micro + 500))
                x, y = self.data.batch("train", self.micro_batch, gen, self.device)
                sync = micro == self.accum - 1
                ctx = self.ddp_model.no_sync() if (dist.world_size > 1 and not sync) else _null()
                with ctx:
                    with autocast(self.device, self.dtype):
                        _, loss = self.ddp_model(x, y)
                    loss = loss / self.accum
                    if self.scaler:
                        self.scaler.scale(loss).backward()
                    else:
                        loss.backward()
                loss_sum += loss.detach()
            if self.scaler:
                for o in self.optimizer.parts:
                    self.scaler.unscale_(o)
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if self.scaler:
                for o in self.optimizer.parts:
                    self.scaler.step(o)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens += self.tokens_per_step

            if step % cfg.log_interval == 0 or step == 1:
                if dist.world_size > 1:
                    torch_dist.all_reduce(loss_sum)  # the loss of the global batch, not rank 0's share
                    loss_sum = loss_sum / dist.world_size
                now = time.perf_counter()
                loss_val = float(loss_sum)
                if not math.isfinite(loss_val):
                    raise TinyGPTError(f"training diverged at step {step} (loss is {loss_val}); try a lower --lr")
                tps = (step - last_log_step) * self.tokens_per_step / max(now - last_log_t, 1e-9)
                last_log_t, last_log_step = now, step
                elapsed = self.elapsed_before + (now - t0)
                progress = progress_of(step, elapsed)
                eta = self._eta(elapsed, progress)
                yield emit(Step(step=step, loss=loss_val, lr=lr, tokens_per_s=tps, elapsed_s=elapsed, progress=min(progress, 1.0), eta_s=eta, tokens_seen=tokens))

            if step % cfg.eval_interval == 0:
                elapsed = self.elapsed_before + (time.perf_counter() - t0)
                yield emit(do_eval(step, elapsed))
                if main:
                    self.save(step, elapsed, tokens, val_est, train_loss_est)
                    yield emit(Saved(step=step, path=str(self.folder), elapsed_s=elapsed))
                last_log_t = time.perf_counter()

        elapsed = self.elapsed_before + (time.perf_counter() - t0)
        if step > self.start_step and (step % cfg.eval_interval != 0):
            yield emit(do_eval(step, elapsed))
        must_save = step > self.start_step or not cfg.resume
        # The final step may be saved twice: at its evaluation (max_steps a multiple of eval_interval) or, when
        # stopped, before the full evaluation (a scheduler's SIGTERM gives a grace period: torchrun, Slurm 30 s),
        # then again with the full validation loss, so a kill during that evaluation loses nothing. Both saves
        # stay; the "saved" event is logged once per step (the checkpoint of that step is on disk from then on).
        saved_step = step if step % cfg.eval_interval == 0 and step > self.start_step else None
        if main and must_save and reason == "stopped" and saved_step != step:
            self.save(step, elapsed, tokens, val_est, train_loss_est)
            saved_step = step
            yield emit(Saved(step=step, path=str(self.folder), elapsed_s=elapsed))
        final_val = evaluate_split(model, self.data, "val", self.device, dist=dist)  # every rank takes a share
        if main and must_save:
            self.save(step, elapsed, tokens, val_est, train_loss_est, final_val=final_val)
            if saved_step != step:
                yield emit(Saved(step=step, path=str(self.folder), elapsed_s=elapsed))
        digests = rank_digests(model, dist)
        if dist.world_size > 1:
            if len(set(digests)) > 1 and main:
                print(f"warning: the {dist.world_size} processes ended with different weights; rank 0's were saved", file=sys.stderr)
            torch_dist.barrier()  # no rank leaves before rank 0 has saved
        yield emit(Finished(step=step, reason=reason, val_loss=final_val, best_val_loss=self.best_val, elapsed_s=elapsed,
                            path=str(self.folder), rank_digests=digests))
        flush()

    def _eta(self, elapsed, progress):
        """Seconds left, from this session's pace (a resumed run's earlier time not counted)."""
        done = progress - self.progress_start
        if done <= 0:
            return float("inf")
        return max(0.0, (elapsed - self.elapsed_before) * (1 - progress) / done)


def param_digest(model) -> str:
    """A short SHA-256 of a model's parameters (names, shapes and fp32 values), to compare copies of a model."""
    import hashlib

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


def _agree_on_failure(failed, dist: DistInfo):
    """Every rank learns whether any rank failed to set up, so none waits forever in a collective.

    Every rank gets the same error, naming the ranks that failed unless all
    did; only rank 0 prints it (train_cli).
    """
    import torch.distributed as torch_dist

    mine = None if failed is None else (str(failed), getattr(failed, "exit_code", 2))
    every: list = [None] * dist.world_size
    torch_dist.all_gather_object(every, mine)
    bad = [(r, m) for r, m in enumerate(every) if m is not None]
    if not bad:
        return None
    messages = list(dict.fromkeys(m[0] for _, m in bad))
    if len(messages) == 1 and len(bad) == dist.world_size:
        text = messages[0]
    else:
        text = "; ".join(f"rank {r}: {m[0]}" for r, m in bad)
    err = TinyGPTError(text)
    err.exit_code = bad[0][1][1]
    return err


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def train(cfg: TrainConfig, stop_event: threading.Event | None = None, dist: DistInfo | None = None):
    """Run training; yields events. See the module docstring."""
    run = Run(cfg, stop_event, dist)
    try:
        yield from run.events()
    finally:
        if getattr(run, "lock", None) is not None:
            run.lock.release()


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])


def dumps(ev: Event) -> str:
    return json.dumps(ev.record(), ensure_ascii=False)
