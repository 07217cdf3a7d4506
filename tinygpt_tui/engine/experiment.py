"""Experiments: a grid of runs that differ in one or two settings, everything else equal (seed, budget,
data order), trained one after another, each a normal model folder under models/NAME/<member>.

    spec = Spec(name="pos", corpus="shakespeare", minutes=2, vary={"pos_encoding": ["learned", "rope"]})
    plan = make_plan(spec)                      # every member checked before anything runs
    print(estimate(plan).total_s)               # measured step time x budget
    for ev in run(plan, stop_event):            # MemberStarted, MemberEvent (train's events), MemberEnded, Ended
        ...
    rows = results(plan)                        # ranked by validation loss, mean ± std over seeds

models/NAME/experiment.json (written atomically at each change) holds the plan and each member's state,
so a stopped or killed experiment resumes: finished members are kept whole, an interrupted member
resumes from its last checkpoint (or restarts, when it died before its first one). A lock on
models/NAME refuses a second experiment writing the same folder.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.engine.estimate import Estimate, estimate  # noqa: F401 (part of this module's interface)
from tinygpt_tui.engine.files import MiB, atomic_write, read_json
from tinygpt_tui.engine.presets import MODEL_KEYS, TrainConfig, as_typed, check_name, check_threads, unused_settings
from tinygpt_tui.engine.runs import MANIFEST, RunSummary, summarize
from tinygpt_tui.errors import CheckpointError, SettingsError, TinyGPTError
from tinygpt_tui.tokenizer import shell_word

FORMAT = "tinygpt-experiment/1"
TRAIN_KEYS = ("batch_size", "grad_accum", "lr", "min_lr_ratio", "schedule", "cooldown", "warmup_steps", "optimizer", "muon_lr", "muon_ns_steps",
              "muon_weight_decay", "weight_decay", "beta1", "beta2", "grad_clip", "eval_interval", "eval_iters", "log_interval", "sample_chars",
              "preset", "dtype", "tokenizer", "vocab_size")
KEYS = MODEL_KEYS + TRAIN_KEYS  # what a grid can vary (and --set can fix for every member)
ALIASES = {"pos": "pos_encoding", "context": "block_size", "layers": "n_layer", "heads": "n_head", "width": "n_embd"}
KINDS = {**{k: int for k in ("block_size", "n_layer", "n_head", "n_embd", "batch_size", "grad_accum", "warmup_steps",
                              "muon_ns_steps", "eval_interval", "eval_iters", "log_interval", "sample_chars", "vocab_size")},
         **{k: float for k in ("dropout", "mlp_ratio", "lr", "min_lr_ratio", "cooldown", "muon_lr", "muon_weight_decay", "weight_decay", "beta1", "beta2", "grad_clip")},
         **{k: bool for k in ("bias", "tie_weights")}}  # the rest are words
MAX_MEMBERS, MAX_SEEDS = 64, 10
MAX_MINUTES, MAX_STEPS = 1e6, 10**12  # a member's budget at most (TrainConfig's step limit)


# ----------------------------------------------------------------- what to run
@dataclass
class Spec:
    name: str
    corpus: str = ""
    minutes: float | None = None  # each member's budget: minutes ...
    max_steps: int | None = None  # ... or steps (steps give the same numbers on a re-run; minutes depend on the machine)
    settings: dict = field(default_factory=dict)  # every member
    vary: dict = field(default_factory=dict)  # one or two settings, each a list of values: the grid
    members: list = field(default_factory=list)  # or members by name: [{"name": "bigram", "block_size": 1}, ...]
    corpus_chars: int | None = None  # train on the corpus's first N characters only (a copy in models/NAME): overfitting in minutes
    seeds: int = 1  # each member trained with this many seeds (seed, seed + 1, ...): the table gives the spread
    seed: int = 1337
    threads: int | None = None
    title: str = ""
    text: str = ""  # what the experiment teaches (shown beside its results)


@dataclass
class Member:
    name: str  # its folder under models/NAME
    group: str  # the members that differ only in seed share a group
    settings: dict  # what sets it apart
    seed: int
    config: TrainConfig = field(repr=False)


@dataclass
class Plan:
    spec: Spec
    folder: Path  # models/NAME
    corpus: str  # the file the members train on: the corpus, or its first corpus_chars characters in models/NAME
    members: list[Member]
    source: str = ""  # the corpus file given
    unfetched: str = ""  # a plan only (make_plan's dry): the catalog corpus it names, not fetched yet (its estimate needs the text)

    @property
    def tokens_differ(self) -> bool:
        """Whether the members' tokens differ: their losses per token then don't compare, their bits per character do."""
        return len({(m.config.tokenizer or "char", m.config.vocab_size) for m in self.members}) > 1

    def write_corpus(self) -> None:
        """The slice of the corpus the members train on, when the spec asks for one (written once, atomically)."""
        if self.source != self.corpus and not Path(self.corpus).exists():
            from tinygpt_tui.engine.corpora import read_corpus

            atomic_write(Path(self.corpus), read_corpus(self.source).text[: self.spec.corpus_chars])


def key_name(key: str) -> str:
    """A setting's name as TrainConfig spells it (n-layer, pos and context are accepted); unknown: refused, listing the valid."""
    k = ALIASES.get(key.strip(), key.strip().replace("-", "_"))
    if k not in KEYS:
        raise SettingsError(f"unknown setting {key!r}; settings an experiment can vary or set: {', '.join(KEYS)} "
                            f"(also {', '.join(f'{a} for {b}' for a, b in ALIASES.items())})")
    return k


def parse_value(key: str, value):
    """A value from the command line (text) or a TOML file, as the setting's type."""
    kind = KINDS.get(key, str)
    if isinstance(value, str):
        v = value.strip()
        try:
            if kind is bool:
                if v.lower() not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
                    raise ValueError
                return v.lower() in ("true", "yes", "on", "1")
            return int(v) if kind is int else float(v) if kind is float else v
        except ValueError:
            raise SettingsError(f"{key} takes {kind.__name__ if kind is not str else 'a word'}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (kind is str and not isinstance(value, str)) or (kind is not str and type(value) is not kind):
        raise SettingsError(f"{key} takes {kind.__name__ if kind is not str else 'a word'}, got {value!r}")
    return value


def parse_pairs(items: list[str], what: str) -> dict:
    """["key=v1,v2", ...] (--vary: lists of values) or ["key=v", ...] (--set: one value each)."""
    out = {}
    for item in items:
        key, eq, values = item.partition("=")
        if not eq or not values.strip():
            raise SettingsError(f"--{what} takes KEY=VALUE{'S' if what == 'vary' else ''}, e.g. "
                                f"{'pos=learned,rope' if what == 'vary' else 'n_layer=2'}; got {item!r}")
        k = key_name(key)
        if k in out:
            raise SettingsError(f"--{what} names {k} twice")
        vals = [parse_value(k, v) for v in values.split(",")] if what == "vary" else parse_value(k, values)
        out[k] = vals
    return out


def check_budget(minutes, max_steps) -> None:
    """Each member's budget: minutes or steps, one of them, within bounds (an experiment's and a lesson's alike)."""
    if (minutes is None) == (max_steps is None):
        raise SettingsError("give each member a budget: --minutes or --max-steps (one of them)")
    number = isinstance(minutes, (int, float)) and not isinstance(minutes, bool)
    if minutes is not None and (not number or math.isnan(minutes) or not 0 < minutes <= MAX_MINUTES):
        shown = format(minutes, "g") if number else str(minutes)[:40]
        raise SettingsError(f"--minutes must be above 0 and at most {MAX_MINUTES:,.0f}, got {shown}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 1 <= max_steps <= MAX_STEPS):
        raise SettingsError(f"--max-steps must be from 1 to {MAX_STEPS:,}, got {str(max_steps)[:40]}")


def _fmt(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def make_plan(spec: Spec, models_dir=None, dry: bool = False) -> Plan:
    """Every member's settings, checked before anything runs: an impossible member is refused by name. ``dry``: a plan
    to show only, which a catalog corpus not fetched yet does not stop (Plan.unfetched names it; its length goes unchecked)."""
    from tinygpt_tui.data import min_corpus_chars
    from tinygpt_tui.engine.corpora import local_path, read_corpus, resolve_corpus, unfetched

    started = (Path(models_dir or ckpt.default_models_dir()) / str(spec.name) / MANIFEST).is_file()  # (before the edge rule: goes on)
    check_name(spec.name, "an experiment needs a name: tinygpt experiment NAME ...", "experiment name", new=not started)
    if not spec.corpus:
        raise SettingsError("an experiment needs a corpus (--corpus)")
    check_budget(spec.minutes, spec.max_steps)
    if spec.threads is not None:
        check_threads(spec.threads)  # (once, as `tinygpt train` words it; not once per member)
    if not isinstance(spec.seeds, int) or not 1 <= spec.seeds <= MAX_SEEDS:
        raise SettingsError(f"--seeds must be from 1 to {MAX_SEEDS}, got {spec.seeds}")
    if spec.vary and spec.members:
        raise SettingsError("an experiment has either vary (a grid) or members (by name), not both")
    if not spec.vary and not spec.members:
        raise SettingsError("nothing to compare: give --vary KEY=V1,V2 (one or two settings)")
    if len(spec.vary) > 2:
        raise SettingsError(f"an experiment varies one or two settings at once, got {len(spec.vary)}: {', '.join(spec.vary)}")
    for k, vals in spec.vary.items():
        if not vals:  # (`n_layer = []` in a file: a grid of no runs)
            raise SettingsError(f"--vary {k} has no values; give one or more, e.g. {k}=V1,V2")
        if len(vals) != len(set(map(_fmt, vals))):
            raise SettingsError(f"--vary {k} repeats a value")
        if k in spec.settings:
            raise SettingsError(f"{k} is both varied and set for every member")
    if spec.corpus_chars is not None and (not isinstance(spec.corpus_chars, int) or spec.corpus_chars < 1000):
        raise SettingsError(f"corpus_chars must be a whole number of at least 1000, got {spec.corpus_chars!r}")
    missing = unfetched(spec.corpus) if dry else None
    source = corpus = str(local_path(missing) if missing else resolve_corpus(spec.corpus))
    chars = 2**62 if missing else min(len(read_corpus(source).text), spec.corpus_chars or 2**62)
    models_dir = Path(models_dir) if models_dir else ckpt.default_models_dir()
    if spec.corpus_chars:
        corpus = str(models_dir / spec.name / f"{Path(source).stem}-first{spec.corpus_chars}.txt")
    groups = []
    if spec.vary:
        keys = list(spec.vary)
        for combo in itertools.product(*(spec.vary[k] for k in keys)):
            settings = dict(zip(keys, combo))
            groups.append((",".join(f"{k}={_fmt(v)}" for k, v in settings.items()), settings))
    else:
        groups = [(m["name"], {k: v for k, v in m.items() if k != "name"}) for m in spec.members]
    if len(groups) * spec.seeds > MAX_MEMBERS:
        raise SettingsError(f"{len(groups) * spec.seeds} runs is more than the {MAX_MEMBERS} an experiment holds")
    members, seen, dead = [], set(), {}
    for group, settings in groups:
        for i in range(spec.seeds):
            name = group if spec.seeds == 1 else f"{group},seed={spec.seed + i}"
            try:
                check_name(name, new=not started)
                if name in seen or name == MANIFEST:
                    raise SettingsError("the name is taken by another member")
                seen.add(name)
                cfg = TrainConfig(corpus=corpus, name=name, models_dir=str(models_dir / spec.name), seed=spec.seed + i,
                                  max_steps=spec.max_steps, time_budget=spec.minutes * 60 if spec.minutes else None,
                                  threads=spec.threads, command=f"tinygpt experiment {shell_word(spec.name)}", **{**spec.settings, **settings})
                unused = unused_settings(cfg)
                for k, why in unused.items():
                    if k in settings:  # (one --set for every member may be meant for only some of them)
                        raise SettingsError(f"{k} {why}")
                dead = {k: why for k, why in unused.items() if k in spec.settings and (not members or k in dead)}
                if (cfg.dtype or "auto") != "auto":  # a precision this device lacks (fp16 on a CPU): refused here, by name
                    from tinygpt_tui.engine.device import pick_device, pick_dtype

                    pick_dtype(pick_device(cfg.device), cfg.dtype)
                need = min_corpus_chars(cfg.resolved().block_size)
                if chars < need:
                    raise SettingsError(f"context length {cfg.resolved().block_size} needs a corpus of {need:,} characters, "
                                        f"this one has {chars:,}")
            except TinyGPTError as e:
                raise SettingsError(f"member {name}: {as_typed(str(e))}") from None
            members.append(Member(name, group, settings, spec.seed + i, cfg))
    for k, why in dead.items():  # set for every member and used by none
        raise SettingsError(f"{k} {why}")
    return Plan(spec, models_dir / spec.name, corpus, members, source, missing.name if missing else "")


# ----------------------------------------------------------------- the manifest
def write_manifest(plan: Plan, states: dict) -> None:
    doc = {"format": FORMAT, "spec": {**asdict(plan.spec), "corpus": plan.source},
           "members": [{"name": m.name, "group": m.group, "seed": m.seed, "settings": m.settings, **states.get(m.name, {"state": "queued"})}
                       for m in plan.members], "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write(plan.folder / MANIFEST, json.dumps(doc, indent=2, ensure_ascii=False))


def read_manifest(folder) -> dict:
    doc = read_json(Path(folder) / MANIFEST, MANIFEST, 4 * MiB)
    ok = isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("spec"), dict) and isinstance(doc.get("members"), list)
    if not ok or not all(isinstance(m, dict) and isinstance(m.get("name"), str) for m in doc["members"]):  # (one a word: a traceback)
        raise CheckpointError(f"{Path(folder).name}/{MANIFEST} is not an experiment tinygpt wrote")
    return doc


def load_plan(name: str, models_dir=None) -> Plan:
    """The plan of an experiment already started (what --resume alone continues)."""
    check_name(name, what="experiment name", new=False)
    folder = (Path(models_dir) if models_dir else ckpt.default_models_dir()) / name
    if not (folder / MANIFEST).exists():
        raise SettingsError(f"no experiment named {name!r} in {folder.parent}")
    try:
        spec = Spec(**{k: v for k, v in read_manifest(folder)["spec"].items() if k in Spec.__dataclass_fields__})
        if bad := [k for k in ("name", "corpus", "title", "text") if not isinstance(getattr(spec, k), str)]:
            raise TypeError(f"its {bad[0]} is not text")  # (a hand-edited text that was a list: a traceback where it was shown)
        return make_plan(spec, folder.parent)
    except TypeError as e:
        raise CheckpointError(f"{name}/{MANIFEST} is damaged: {e}") from None


def member_states(plan: Plan) -> dict:
    """Each member's state in the manifest (queued when there is none yet)."""
    try:
        doc = read_manifest(plan.folder)
    except TinyGPTError:
        return {}  # none yet
    return {m["name"]: {k: m[k] for k in ("state", "error") if k in m} for m in doc["members"]}  # (each a table with a name)


def settle(plan: Plan, note=None) -> Plan:
    """The plan with what its members leave to the machine chosen as `tinygpt train` chooses it (engine/probe.settle): the threads,
    the precision and the --minutes preset, chosen once for the first member and given to every member that leaves them open, so
    that members differ only in what the experiment varies. Without a probe (a GPU, TINYGPT_PROBE=0), the plan as it was."""
    from tinygpt_tui.engine.probe import settle as settle_config

    if not plan.members:
        return plan
    lead = plan.members[0].config
    chosen = settle_config(lead, note)
    open_ = {k: getattr(chosen, k) for k in ("dtype", "preset") if getattr(lead, k) == "auto"}
    members = []
    for m in plan.members:
        c = m.config
        members.append(replace(m, config=replace(c, threads=c.threads if c.threads is not None else chosen.threads,
                                                 **{k: v for k, v in open_.items() if getattr(c, k) == "auto"})))
    return replace(plan, members=members)


# ----------------------------------------------------------------- running it
@dataclass
class MemberStarted:
    index: int
    total: int
    name: str
    how: str  # "new", "resumed from step N", "restarted (it stopped before its first checkpoint)"


@dataclass
class MemberEvent:
    index: int
    name: str
    event: object  # one of engine/events.py's (Started, Step, Eval, Overfitting, Saved, Stopping, Measuring, Finished), or the corpus's preparation's Progress


@dataclass
class MemberEnded:
    index: int
    name: str
    state: str  # "finished", "kept" (finished before this session), "stopped", "failed"
    error: str = ""
    summary: RunSummary | None = None


@dataclass
class Ended:
    state: str  # "finished", "stopped", "failed" (some members failed; the rest finished)
    elapsed_s: float
    failed: list = field(default_factory=list)


SAME_GRID = ("settings", "vary", "members", "minutes", "max_steps", "seeds", "seed", "corpus_chars")  # what resuming must not change


def check_claim(plan: Plan, resume: bool, dry: bool = False) -> None:
    """Refuse a folder that is not this experiment's to write (run checks it again under its lock; a caller checks
    first, before it prints or estimates anything). ``dry``: for a plan only (--plan), maybe shown while another runs it."""
    f = plan.folder
    if f.is_symlink():
        raise SettingsError(f"{f} is a symbolic link; an experiment writes only into a real folder")
    if not dry and ckpt.is_training(f):
        raise SettingsError(f"experiment {plan.spec.name} is being run by another process; wait for it, or pick another name")
    if (f / ckpt.CONFIG).exists():
        raise SettingsError(f"a model named {plan.spec.name!r} already exists in {f.parent}; pick another experiment name")
    if resume:
        if not (f / MANIFEST).exists():
            raise SettingsError(f"nothing to resume: no experiment named {plan.spec.name!r} in {f.parent}")
        old = read_manifest(f)
        now = json.loads(json.dumps({k: getattr(plan.spec, k) for k in SAME_GRID}))  # (as the manifest holds it)
        changed = [k for k in SAME_GRID if k in old["spec"] and old["spec"][k] != now[k]]
        if [m.get("name") for m in old["members"]] != [m.name for m in plan.members] or changed:
            # (a folder of the same name with other settings: its members would be kept as this grid's)
            raise SettingsError(f"the grid given is not experiment {plan.spec.name}'s{' (' + ', '.join(changed) + ' differ)' if changed else ''}; "
                                "resume it with --resume alone, or pick another name")
        was = old["spec"].get("corpus")
        if isinstance(was, str) and was and Path(was).expanduser().resolve() != Path(plan.source).expanduser().resolve():
            # (its finished members would be kept and ranked beside runs on another text)
            named = Path(was).name != Path(plan.source).name  # (two books of one name: their paths, not "book.txt, not book.txt")
            was, now = (Path(p).name if named else p for p in (was, plan.source))
            raise SettingsError(f"experiment {plan.spec.name} was run on {was}, not {now}; resume it on its own corpus, or pick another name")
    elif (f / MANIFEST).exists():
        raise SettingsError(f"an experiment named {plan.spec.name!r} already exists; --resume continues it, or pick another name")
    elif f.is_dir() and any(p.name != ckpt.LOCK and not p.name.endswith(".txt") for p in f.iterdir()):
        raise SettingsError(f"{f} already holds files; pick another experiment name")


def _how(plan: Plan, m: Member) -> tuple[str, TrainConfig]:
    """How a member starts: new, resumed from its checkpoint, or restarted (a folder with no checkpoint)."""
    folder = plan.folder / m.name
    if not folder.exists():
        return "new", m.config
    if ckpt.is_dead_run(folder):
        ckpt.remove_dead_run(folder)
        return "restarted (it stopped before its first checkpoint)", m.config
    if (folder / ckpt.STATE_TENSORS).exists() and (folder / ckpt.CONFIG).exists():
        return f"resumed from step {ckpt.read_info(folder).step:,}", TrainConfig(**{**asdict(m.config), "resume": True})
    raise CheckpointError(f"{folder} holds no checkpoint to resume; delete it to run member {m.name} again")


def run(plan: Plan, stop_event: threading.Event | None = None, resume: bool = False, note=None):
    """Train the members one after another; yields MemberStarted, MemberEvent, MemberEnded, then Ended. A set stop_event stops
    the member under way (it saves; preparing its corpus, it ends there, nothing saved) and ends the experiment. The members'
    threads, precision and preset, where left open, are the probe's (settle; ``note`` hears what it says)."""
    from tinygpt_tui.engine.train import Finished, train

    stop_event = stop_event or threading.Event()
    check_claim(plan, resume)
    plan = settle(plan, note)
    lock = ckpt.FolderLock(plan.folder)
    t0 = time.perf_counter()
    try:
        states = member_states(plan) if resume else {}
        write_manifest(plan, states)
        plan.write_corpus()
        failed, stopped = [], False
        for i, m in enumerate(plan.members):
            summary = summarize(plan.folder / m.name, m.name)
            if resume and summary.status == "finished":
                states[m.name] = {"state": "finished"}
                yield MemberEnded(i, m.name, "kept", summary=summary)
                continue
            if stop_event.is_set():
                stopped = True
                break
            try:
                how, cfg = _how(plan, m)
                states[m.name] = {"state": "running"}
                write_manifest(plan, states)
                yield MemberStarted(i, len(plan.members), m.name, how)
                reason = None
                for ev in train(cfg, stop_event, preparation=True):
                    if isinstance(ev, Finished):
                        reason = ev.reason
                    yield MemberEvent(i, m.name, ev)
                state = "stopped" if reason in ("stopped", None) else "finished"  # (None: stopped while preparing the corpus)
                states[m.name] = {"state": state}
                write_manifest(plan, states)  # (before it is said: what results() reads then, a member with no folder's state)
                yield MemberEnded(i, m.name, state, summary=summarize(plan.folder / m.name, m.name))
                if state == "stopped":
                    stopped = True
                    break
            except (TinyGPTError, MemoryError, OSError) as e:  # (OSError: what no check foresaw; the members done stay whole)
                error = (str(e) if isinstance(e, TinyGPTError) else "out of memory: try a smaller model or batch" if isinstance(e, MemoryError)
                         else f"{f'{e.filename}: ' if e.filename else ''}{e.strerror or e}")
                states[m.name] = {"state": "failed", "error": error}
                write_manifest(plan, states)
                failed.append(m.name)
                yield MemberEnded(i, m.name, "failed", error=error)
        state = "stopped" if stopped else "failed" if failed else "finished"
        yield Ended(state, time.perf_counter() - t0, failed)
    finally:
        lock.release()


# ----------------------------------------------------------------- after
@dataclass
class Row:
    group: str
    settings: dict
    runs: list  # RunSummary of each seed
    val_loss: float | None  # the mean over the finished seeds (none finished: over the stopped ones, as they were kept)
    spread: float | None  # their standard deviation (two seeds or more)
    bpc: float | None
    params: int
    minutes: float | None
    tokens_per_s: float | None
    status: str  # "finished", or the first unfinished member's status


def _mean(vals):
    return statistics.fmean([v for v in vals if v is not None]) if any(v is not None for v in vals) else None


def results(plan: Plan) -> list[Row]:
    """One row per member (its seeds together), ranked by bits per character (validation loss when a run has none; per token
    it would not compare across tokenizers); unfinished ones last. A member none of whose seeds finished shows the figures its
    stopped runs kept (their last checkpoint's, as `tinygpt runs` shows them), its status saying it stopped, ranked after the finished ones."""
    rows, states = [], member_states(plan)
    for group in dict.fromkeys(m.group for m in plan.members):
        ms = [m for m in plan.members if m.group == group]
        # a member with no folder: queued, or as the queue has it when it stopped or failed before its first step
        runs = [summarize(plan.folder / m.name, m.name) if (plan.folder / m.name).exists() else RunSummary(name=m.name, folder=plan.folder / m.name,
                status=st if (st := states.get(m.name, {}).get("state")) in ("stopped", "failed") else "queued") for m in ms]
        finished = [r for r in runs if r.status == "finished"]
        status = "finished" if len(finished) == len(runs) else next(r.status for r in runs if r.status != "finished")
        done = finished or [r for r in runs if r.ok and r.status != "queued" and r.val_loss is not None]  # (stopped: what it kept)
        losses = [r.val_loss for r in done if r.val_loss is not None]
        rows.append(Row(group, ms[0].settings, runs, _mean(losses), statistics.stdev(losses) if len(losses) > 1 else None,
                        _mean([r.bpc for r in done]), max((r.params for r in runs), default=0), _mean([r.minutes for r in done]),
                        _mean([r.tokens_per_s for r in done]), status))
    by = "bpc" if all(r.bpc is not None for r in rows if r.val_loss is not None) else "val_loss"  # (comparable across tokenizers)
    return sorted(rows, key=lambda r: (getattr(r, by) is None, not any(x.status == "finished" for x in r.runs), getattr(r, by) or 0.0))


def short_names(names: list[str]) -> list[str]:
    """Grid members' names (pos_encoding=rope,n_layer=2) as what tells them apart (rope,n_layer=2) when they all
    name the same settings. A value that names itself (rope) stands alone; a number or a yes/no keeps its
    setting (a bare "2" beside a ranked table read as a rank). Other names as they are."""
    pairs = [[p.partition("=") for p in n.split(",")] for n in names]
    if len({tuple(k for k, _, _ in ps) for ps in pairs}) != 1 or any(not eq for ps in pairs for _, eq, _ in ps):
        return list(names)
    plain = {"true", "false", "yes", "no"}
    return [",".join(v if v.replace("_", "").isalpha() and v.lower() not in plain else f"{k}={v}" for k, _, v in ps) for ps in pairs]


def samples(plan: Plan, prompt: str = "\n", chars: int = 200, seed: int = 0) -> list[tuple[str, str]]:
    """(member, text) for each member of the first seed with a model (finished or stopped, not queued): one prompt, length and sampling seed."""
    from tinygpt_tui.sampler import Generation, SamplingSettings

    out = []
    for m in plan.members:
        if m.seed != plan.spec.seed or not (plan.folder / m.name / ckpt.CONFIG).exists():
            continue
        try:
            loaded = ckpt.load_model(plan.folder / m.name)
            s = SamplingSettings(max_new_tokens=chars, temperature=0.8, seed=seed, precision="fp32")
            out.append((m.group, "".join(Generation(loaded.model, loaded.tokenizer, prompt, s, backend="torch"))))
        except TinyGPTError as e:
            out.append((m.group, f"(no sample: {e})"))
    return out
