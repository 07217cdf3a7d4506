"""Training settings (TrainConfig, the presets a learner picks by name, the checks on both) and the
optimizer they build. torch is imported only when an optimizer is built: the app and the command line
resolve and check settings first."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields

from tinygpt_tui.config import ConfigError, GPTConfig
from tinygpt_tui.errors import CheckpointError, SettingsError, not_one_of
from tinygpt_tui.tokenizer import TOKENIZER_KINDS, check_bpe_size

MODEL_KEYS = ("block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "pos_encoding", "ffn", "norm", "tie_weights", "mlp_ratio")
OPTIMIZERS = ("muon", "adamw")
SCHEDULES = ("cosine", "wsd")
MAX_SEED = 2**63 - 1  # torch's and numpy's seeds are 64-bit
MAX_TOKENS_PER_STEP = 2**24  # 16M: thirty times GPT-2's batch; more is a typo, and a first step that never ends

# Sized for a wall-clock budget on a laptop CPU (measured on 2 cores, Tiny Shakespeare: see
# docs/performance.md). "auto", the default, picks one of these from --minutes, else "small".
BUDGET_PRESETS: dict[str, dict] = {
    # 60 s: small and fast steps beat a bigger model: 2 layers beat 3 in the same time (1,390 steps against
    # 1,000: 0.011 to 0.030 lower on 3 seeds, docs/speedrun.md), 3 beat 4; context 64 (128 was 0.12 worse)
    "1min": dict(n_layer=2, n_head=4, n_embd=128, block_size=64, batch_size=16, lr=3e-3, warmup_steps=20,
                 eval_interval=200, eval_iters=10, dropout=0.0, muon_ns_steps=4),
    # 300 s: 1min's settings with 4 layers, context 128, Muon's weight decay and a schedule down to nothing. Past
    # 3,000 steps these small models have read the book ten times and overfit it; 4 layers with decay learn more
    # from each pass, and the decay fades with the learning rate (AMD EPYC Zen 4, bf16, whole validation split,
    # seeds 1337, 1, 2, the 3,700 steps 300 s hold on both cores: 3 layers 1.501, 4 layers 1.491, 4 with decay
    # 0.05 1.488, with decay 0.1 and a floor of 0 1.464, range 0.004; docs/speedrun.md)
    "5min": dict(n_layer=4, n_head=4, n_embd=128, block_size=128, batch_size=16, lr=3e-3, warmup_steps=20,
                 eval_interval=200, eval_iters=10, dropout=0.0, muon_ns_steps=4, muon_weight_decay=0.1, min_lr_ratio=0.0),
}

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
# What each preset is for, in a newcomer's words (the app's form says it under Size). The times: a step of
# 5min takes about 0.1 s on 2 laptop cores; small about 8 times its work, medium 26 times, large 120 times.
PRESET_USES: dict[str, str] = {
    "1min": "sized for a run of a minute or two",
    "5min": "sized for about five minutes; the shipped shakespeare model is this size",
    "tiny": "a first try: it runs in seconds and learns little",
    "small": "for more than 15 minutes (auto's pick then, or with no minutes)",
    "medium": "hours on a laptop's CPU, minutes on a GPU",
    "large": "for a GPU: each step is 120 times 5min's work",
    "nanogpt": "the settings of nanoGPT's Shakespeare model: medium with more batch and dropout",
}


# The steps each budget preset needs to beat the one before it; "auto" takes the largest preset whose
# measured step time (engine/probe.py) fits that many in the budget. 1,400: where 5min meets 1min (in 120 s
# on the Zen 4, 1,400 steps of 5min 1.5596 and 4,730 of 1min 1.5597; docs/speedrun.md).
BUDGET_STEPS = {"1min": 0, "5min": 1400}
RUN_OVERHEAD = 1.1  # evaluations, samples and checkpoints: about a tenth of a budget run's time


def budget_preset(seconds: float | None, step_ms: dict | None = None) -> str:
    """The preset "auto" stands for: sized for the time budget (by measured step times when given: preset ->
    {precision: ms}), or "small" without one."""
    if not seconds or seconds > 900:
        return "small"
    if step_ms:
        fits = [name for name, need in BUDGET_STEPS.items()
                if name in step_ms and seconds * 1e3 / (RUN_OVERHEAD * min(step_ms[name].values())) >= need]
        if fits:
            return fits[-1]
    return "1min" if seconds <= 180 else "5min"


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
    # tokens: char (one per character) or bpe (byte-level BPE of vocab_size tokens, default 512)
    tokenizer: str | None = None
    vocab_size: int | None = None
    init_from: str | None = None  # start from this model's weights, architecture and tokenizer (engine/lineage.py)
    # optimisation
    batch_size: int | None = None
    grad_accum: int = 1
    max_steps: int | None = None  # stop after this many steps ...
    time_budget: float | None = None  # ... or after this many seconds; the LR schedule fits whichever is set
    lr: float | None = None
    min_lr_ratio: float | None = None  # the schedule's floor as a fraction of the peak (0.1 by default, 0 in 5min)
    # after warmup: "cosine" from the peak to the floor over the whole run, or "wsd" (warmup, stable,
    # decay): the peak held, then a straight fall to the floor over the run's last `cooldown` fraction
    schedule: str | None = None
    cooldown: float | None = None
    warmup_steps: int | None = None
    optimizer: str | None = None  # muon (hidden matrices; AdamW for the rest) or adamw; None: from the preset
    muon_lr: float | None = None  # Muon's peak learning rate (the schedule scales it with --lr's)
    muon_ns_steps: int | None = None  # Muon's Newton-Schulz iterations a step (torch's 5 by default)
    # Muon's decoupled weight decay (its matrices shrink by lr x this a step); --weight-decay is AdamW's
    muon_weight_decay: float | None = None
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
            raise not_one_of("preset", self.preset, ("auto", *PRESETS))
        out = TrainConfig(**asdict(self))
        if out.preset == "auto":
            out.preset = budget_preset(out.time_budget)  # recorded, so the card says what ran
        defaults = {**asdict(GPTConfig()), "vocab_size": None, "batch_size": 32, "lr": 1e-3, "warmup_steps": 100, "eval_interval": 250,
                    "eval_iters": 20, "optimizer": "muon", "muon_lr": 0.02, "muon_ns_steps": 5, "muon_weight_decay": 0.0, "min_lr_ratio": 0.1,
                    "schedule": "cosine", "cooldown": 0.4}
        for k, v in {**defaults, **PRESETS[out.preset]}.items():
            if hasattr(out, k) and getattr(out, k) is None:
                setattr(out, k, v)
        if out.max_steps is None and out.time_budget is None:
            out.max_steps = 2000
        out.tokenizer, out.vocab_size = tokenizer_choice(out.tokenizer, out.vocab_size)
        out.check()
        return out

    def check(self) -> None:
        def whole(name, lo=1, hi=None):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
                top = f" and at most {hi}" if hi is not None else ""
                raise SettingsError(f"{name.replace('_', '-')} must be a whole number of at least {lo}{top}, got {str(v)[:40]}")

        def real(name, lo, hi, lo_open=False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
                raise SettingsError(f"{name.replace('_', '-')} must be {'above' if lo_open else 'at least'} {lo} and at most {hi}, got {str(v)[:40]}")

        check_name(self.name, new=not self.resume)
        check_tokenizer(self.tokenizer, self.vocab_size)
        for n in ("batch_size", "grad_accum", "eval_interval", "eval_iters", "log_interval"):
            whole(n, 1, 10**9)
        whole("sample_chars", 0, 100_000)
        whole("seed", 0, MAX_SEED)
        whole("warmup_steps", 0, 10**12)
        if self.max_steps is not None:
            whole("max_steps", 1, 10**12)
        if self.time_budget is not None:
            real("time_budget", 0, 1e9, lo_open=True)
        real("lr", 0, 10, lo_open=True)
        real("min_lr_ratio", 0, 1)
        if self.schedule not in SCHEDULES:
            raise not_one_of("schedule", self.schedule, SCHEDULES)
        real("cooldown", 0, 1, lo_open=True)
        if self.optimizer not in OPTIMIZERS:
            raise not_one_of("optimizer", self.optimizer, OPTIMIZERS)
        real("muon_lr", 0, 10, lo_open=True)
        whole("muon_ns_steps", 1, 20)
        real("muon_weight_decay", 0, 10)
        real("weight_decay", 0, 10)
        real("beta1", 0, 1)
        real("beta2", 0, 1)
        real("grad_clip", 0, 1e6)
        if self.memory_budget is not None:
            real("memory_budget", 0, 1e6)
        if self.threads is not None:
            check_threads(self.threads)
        self.model_config(vocab_size=2)  # raises for an impossible shape
        if self.batch_size * self.grad_accum * self.block_size > MAX_TOKENS_PER_STEP:
            raise SettingsError(f"a step of {self.batch_size} x {self.grad_accum} sequences of {self.block_size} tokens is more "
                                f"than the {MAX_TOKENS_PER_STEP:,} tokens tinygpt takes per step; lower --batch-size or --grad-accum")

    def model_config(self, vocab_size: int) -> GPTConfig:
        try:
            return GPTConfig(vocab_size=vocab_size, **{k: getattr(self, k) for k in MODEL_KEYS}).validate()
        except ConfigError as e:
            raise SettingsError(str(e).replace("n_embd", "n-embd").replace("n_head", "n-head").replace("block_size", "block-size")) from None

    def training_dict(self) -> dict:
        skip = set(MODEL_KEYS) | {"corpus", "name", "models_dir", "resume", "command", "device", "threads", "init_from"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


def unused_settings(given: TrainConfig) -> dict[str, str]:
    """Settings given (not None before `resolved`) that the run would ignore, each with why: --cooldown
    under the cosine schedule, Muon's under --optimizer adamw. Left unsaid, a run or a grid that varies
    one of them trains the same model while the learner reads a difference into it."""
    cfg = given.resolved()
    out = {}
    if given.cooldown is not None and cfg.schedule != "wsd":
        out["cooldown"] = f"is for the wsd schedule; {cfg.schedule} falls over the whole run"
    if cfg.optimizer == "adamw":
        for k in ("muon_lr", "muon_weight_decay", "muon_ns_steps"):
            if getattr(given, k) is not None:
                out[k] = "is for the muon optimizer; adamw trains every weight with lr and weight_decay"
    return out


def as_typed(message: str) -> str:
    """A message of TrainConfig's with its settings named as an experiment's --vary, --set and file name them
    (n_embd), not as `tinygpt train`'s options (n-embd); an option (--batch-size) stays as it is."""
    dashed = {f.name.replace("_", "-"): f.name for f in fields(TrainConfig)}
    return re.sub(r"(?<![\w-])[a-z0-9]+(?:-[a-z0-9]+)+(?![\w-])", lambda m: dashed.get(m[0], m[0]), message)


def resumed_commands(before, now: str) -> str:
    """A run's commands for its card, one a line: the one that started it (run alone, it trains afresh), then
    the resumes (one repeated, as a job resubmitted, once; the last 8 kept)."""
    lines = [ln for ln in (before if isinstance(before, str) else "").splitlines() if ln.strip()]
    if now and (not lines or lines[-1] != now):
        lines.append(now)
    return "\n".join(lines[:1] + lines[1:][-8:])


# what a resumed run takes from the command line when given (the rest comes from the checkpoint)
REPORTING_KEYS = ("eval_interval", "eval_iters", "log_interval", "sample_chars", "dtype", "checkpoint_activations", "memory_budget")


def resume_config(given: TrainConfig, saved: dict, model: GPTConfig, saved_corpus: str, commands: str = "") -> TrainConfig:
    """The settings of a resumed run: the checkpoint's, with the length and reporting given now. The
    length is one setting: given steps or minutes, a limit left out is no limit (`--resume --max-steps 600`
    after `--minutes 1` must not stop at the old minute); given neither, the saved limits stand. Its command:
    the saved ``commands`` (the one that started the run, then each resume), then this one."""
    known = {f.name for f in fields(TrainConfig)}
    merged = {k: v for k, v in saved.items() if k in known}
    merged.update({k: getattr(model, k) for k in MODEL_KEYS})
    merged.setdefault("optimizer", "adamw")  # runs saved before Muon was offered used AdamW
    merged.setdefault("tokenizer", "char")  # runs saved before BPE was offered
    merged.setdefault("schedule", "cosine")  # ... and before the schedule was a choice
    merged.setdefault("cooldown", 0.4)
    merged.setdefault("muon_weight_decay", 0.0)  # ... and before Muon's matrices could decay
    if given.max_steps is not None or given.time_budget is not None:
        merged["max_steps"], merged["time_budget"] = given.max_steps, given.time_budget
    for k in REPORTING_KEYS:
        v = getattr(given, k)
        if v is not None and v != getattr(TrainConfig(), k):
            merged[k] = v
    merged.update(corpus=given.corpus or saved_corpus, name=given.name, models_dir=given.models_dir, resume=True,
                  device=given.device, threads=given.threads, command=resumed_commands(commands, given.command))
    cfg = TrainConfig(**{**asdict(TrainConfig()), **merged})
    cfg = cfg.resolved() if cfg.max_steps or cfg.time_budget else cfg
    cfg.check()
    return cfg


def resume_changes(folder, given: dict) -> list[str]:
    """The settings in ``given`` (TrainConfig field -> value, as typed) that differ from the run saved in
    ``folder``: a resumed run goes on with its saved ones, so a changed one would be ignored. Settings a
    resume takes (the length, device, precision, evaluations) are the caller's to leave out."""
    from pathlib import Path

    from tinygpt_tui.engine.folder import CONFIG, check_folder

    if not (Path(folder) / CONFIG).is_file():
        return []  # (the run says there is nothing to resume)
    doc = check_folder(Path(folder))[0]
    saved = {"tokenizer": "char", **doc.get("model", {}), **doc.get("training", {})}  # (vocab_size: as asked for)
    return [k for k, v in given.items() if k in saved and v != saved[k]]


class NameTaken(SettingsError):
    """A fresh run named after a model that already exists (the app words its own remedy)."""

    def __init__(self, name: str, models_dir):
        self.name, self.models_dir = name, models_dir
        super().__init__(f"a model named {name!r} already exists in {models_dir}; pick another --name, or --resume it")


class NothingToTrain(SettingsError):
    """A resumed run already at its step limit (it would evaluate again and say "finished", as if it had trained)."""

    def __init__(self, name: str, step: int, limit: int):
        self.name, self.step, self.limit = name, step, limit
        super().__init__(f"{name} is at step {step:,} of {limit:,}: nothing to train; resume with --max-steps above {step:,} to train more")


def check_threads(threads) -> None:
    """--threads, checked and worded alike by every command that takes it (train, experiment, lesson, bench)."""
    from tinygpt_tui.engine.probe import cores as count_cores

    cores = count_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cores:
        raise SettingsError(f"--threads must be from 1 to the {cores} CPU cores this machine has, got {str(threads)[:20]}")


def tokenizer_choice(kind: str | None, vocab_size: int | None) -> tuple[str, int | None]:
    """--tokenizer and --vocab-size (a run's, or `tinygpt corpus prepare`'s) with their defaults (char; a BPE of
    512 tokens), checked."""
    kind = kind or "char"
    vocab_size = 512 if kind == "bpe" and vocab_size is None else vocab_size
    check_tokenizer(kind, vocab_size)
    return kind, vocab_size


def check_tokenizer(kind, vocab_size) -> None:
    if kind not in TOKENIZER_KINDS:
        raise not_one_of("tokenizer", kind, TOKENIZER_KINDS)
    if kind == "char" and vocab_size is not None:
        raise SettingsError("--vocab-size is for --tokenizer bpe (a character vocabulary is the corpus's characters)")
    if kind == "bpe":
        check_bpe_size(vocab_size)


def edge_problem(name: str) -> str | None:
    """Why a name can't begin or end as it does (a folder or file named so breaks later commands), or None."""
    if name.startswith("-"):
        return "can't start with - (a later command would read it as an option)"
    if name != name.strip():
        return "can't start or end with a space"
    return None


def check_name(name, missing: str = "a model needs a name (--name)", what: str = "model name", new: bool = True) -> None:
    """A name to make a folder of (new=False: of one made already, e.g. resumed: one made before the edge rule
    still goes on)."""
    if not isinstance(name, str) or not name.strip():
        raise SettingsError(missing)
    bad = set('/\\\0\x7f') | {chr(i) for i in range(32)} | {chr(i) for i in range(0x80, 0xA0)}
    if name in (".", "..") or any(c in bad for c in name) or len(name) > 100 or name.startswith("."):
        raise SettingsError(f"{what} {name!r} can't be a folder name: use letters, digits, spaces, - or _ (at most 100)")
    if new and (why := edge_problem(name)):
        raise SettingsError(f"{what} {name!r} {why}")
    if any("\ud800" <= c <= "\udfff" for c in name):  # bytes that are not UTF-8 (the shell passed them as-is)
        raise SettingsError(f"{what} {name!r} is not UTF-8 text: its config.json could not hold it")


# ---------------------------------------------------------------- the optimizer and its schedule
def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup over warmup_steps, then from lr to lr*min_lr_ratio over the run's progress (0 to 1):
    along a half cosine, or (wsd) held at lr until the last `cooldown` of the run and then in a straight line."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    floor, p = cfg.lr * cfg.min_lr_ratio, min(max(progress, 0.0), 1.0)
    if cfg.schedule == "wsd":
        return cfg.lr - (cfg.lr - floor) * max(0.0, p - (1 - cfg.cooldown)) / cfg.cooldown
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * p))


def build_optimizer(model, cfg, precision: str = "bf16") -> "Optimizers":
    """The optimizer `tinygpt train` uses for cfg.optimizer, cfg.lr, cfg.muon_lr, weight decay and betas.
    ``precision``: the run's own ("fp32", "bf16", "fp16"); on a CPU Muon's iterations run in it, since an
    fp32 run is one on a CPU whose bf16 is slow (or that was asked for fp32)."""
    import torch

    from tinygpt_tui.engine.muon import BatchedMuon  # torch's Muon, its iterations batched over same-shape matrices

    named = list(model.named_parameters())
    parts = []
    if cfg.optimizer == "muon":
        # Muon orthogonalizes the update of each hidden matrix (2-D weights inside the blocks); embeddings,
        # the output layer, norms and biases stay with AdamW, as its authors prescribe. Its learning
        # rate follows the same schedule, scaled by muon_lr / lr.
        def hidden(n, p):
            return n.startswith("blocks.") and p.dim() == 2

        on_cpu = next(model.parameters()).device.type == "cpu"
        ns_dtype = torch.float32 if on_cpu and precision == "fp32" else torch.bfloat16
        muon = BatchedMuon([p for n, p in named if hidden(n, p)], ns_dtype=ns_dtype, ns_steps=cfg.muon_ns_steps or 5, lr=cfg.muon_lr,
                            weight_decay=cfg.muon_weight_decay or 0.0, momentum=0.95, nesterov=True)
        muon.param_groups[0]["lr_scale"] = cfg.muon_lr / cfg.lr
        parts.append(muon)
        named = [(n, p) for n, p in named if not hidden(n, p)]
    groups = [{"params": [p for _, p in named if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0}]
    kw = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    try:
        parts.append(torch.optim.AdamW(groups, fused=True, **kw))
    except (RuntimeError, TypeError):
        parts.append(torch.optim.AdamW(groups, **kw))
    return Optimizers(parts)


class Optimizers:
    """Muon and AdamW behind one optimizer's interface; state_dict() numbers the parameters across the
    parts as one optimizer over all their groups would, so a checkpoint holds one flat state."""

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

    def to_tensors(self) -> tuple[dict, dict]:
        """The state as flat tensors ("opt.<param>.<name>", for safetensors) and the rest as JSON."""
        sd = self.state_dict()
        tensors, scalars = {}, {}
        for idx, st in sd["state"].items():
            for k, v in st.items():
                if hasattr(v, "detach"):  # a tensor
                    tensors[f"opt.{idx}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars[f"{idx}.{k}"] = v
        return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}

    def load_tensors(self, tensors: dict, meta: dict, device) -> None:
        """Restore what to_tensors saved (the training state has been validated by files.py)."""
        import torch

        live = self.state_dict()["param_groups"]
        params = [p for g in self.param_groups for p in g["params"]]  # numbered as state_dict() numbers them
        try:
            state: dict[int, dict] = {}
            for key, t in tensors.items():
                if key.startswith("opt."):
                    _, idx, name = key.split(".", 2)
                    want = params[int(idx)].shape if int(idx) < len(params) else None  # (a moment has its parameter's shape)
                    if want is None or (name != "step" and t.shape != want):
                        raise ValueError(f"{key[:60]} has shape {list(t.shape)}, its parameter {list(want or [])}")
                    state.setdefault(int(idx), {})[name] = t if name == "step" else t.to(device)
            for key, v in meta.get("scalars", {}).items():
                idx, name = key.split(".", 1)
                state.setdefault(int(idx), {})[name] = torch.tensor(v) if name == "step" else v
            groups = meta.get("param_groups") or live
            if len(groups) != len(live):
                raise ValueError("its parameter groups are not this model's")
            self.load_state_dict({"state": state, "param_groups": [{**g, "params": gl["params"]} for g, gl in zip(groups, live)]})
        except (ValueError, KeyError, RuntimeError, TypeError, IndexError, AttributeError) as e:
            raise CheckpointError(f"cannot restore the optimizer from the training state: {str(e)[:160]}") from None
