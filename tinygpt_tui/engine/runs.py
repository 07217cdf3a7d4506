"""Runs side by side: what a model folder's run came to (``summarize``, ``list_runs``), its loss curves
read from metrics.jsonl and followed while it trains (``Curves``), whether it has started to overfit
(``overfitting``), and what a loss means on a shipped book (``milestones``, ``stage``: engine/stages.py, re-exported here).

    runs = list_runs("models")                      # every run, nested experiment members included
    curves = [Curves(r.folder) for r in runs]       # read once; curves[i].update() reads what is new
    xs, ys = curves[0].val("minutes", max_points=400)
    note = overfitting(curves[0])                   # None, or one sentence

No torch and no textual: the command line and the app draw what this returns. A broken folder is a
summary whose status says why, never an exception.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.engine.files import number
from tinygpt_tui.engine.metrics import parse_record, read_lines
from tinygpt_tui.engine.stages import (EARLY_RUNS, SAMPLE_NEAR, SHIPPED, STAGES, Milestone, book_of, milestones,  # noqa: F401
                                       shipped_models, shipped_models_dir, stage)
from tinygpt_tui.errors import CheckpointError

X_AXES = ("steps", "tokens", "minutes")
MAX_POINTS = 400  # a curve's points after thinning (a chart is a few hundred cells wide)
TAIL_BYTES = 64 * 1024  # what a summary reads of metrics.jsonl: its last records, not the whole log
MAX_LOG = 512 * 1024 * 1024  # what a chart reads of a bigger metrics.jsonl: its end (a million steps' log is 200 MB)
MAX_KEPT = 500  # training-loss points a Curves keeps (every 2^k-th step record past this, and the latest)
STEP_LINE = b'{"event": "step", '  # how train.py's step records begin: one not kept is skipped unparsed
MANIFEST = "experiment.json"  # an experiment's folder: its manifest and one model folder per member
LN2 = math.log(2)
NO_CHECKPOINT = "no checkpoint"  # a run's status when it was killed before its first save


def _num(v):
    return v if number(v) else None


# ----------------------------------------------------------------- a run in one line
@dataclass
class RunSummary:
    name: str  # the folder's name under the models directory ("exp/member" for an experiment's member)
    folder: Path
    status: str  # "finished", "training", "stopped", or "broken: why"
    corpus: str = ""
    corpus_sha256: str = ""
    params: int = 0
    context: int = 0  # block_size: tokens the model sees at once
    tokenizer: str = "char"
    val_loss: float | None = None  # of the weights kept (the whole validation split once finished)
    bpc: float | None = None  # bits per character: the record's own, else val_loss / ln 2 for a character model
    minutes: float | None = None  # wall time trained, evaluations included
    tokens_seen: int = 0
    tokens_per_s: float | None = None  # tokens_seen / wall time: what a run got through, evaluations included
    steps: int = 0
    updated: float = 0.0  # unix time of the last write (metrics.jsonl or config.json)
    model: dict = field(default_factory=dict, repr=False)  # the architecture (config.json's "model")
    training: dict = field(default_factory=dict, repr=False)  # the training settings (config.json's "training")
    log_cut: int | None = None  # the last step metrics.jsonl tells of, where it ends before the checkpoint's: cut short

    @property
    def ok(self) -> bool:
        return not self.status.startswith(("broken", NO_CHECKPOINT))


def _tail(folder: Path) -> list[dict]:
    """The latest records a summary needs, in the log's order: the last step, the last evaluation, and the
    last start or finish (read backwards from the end of metrics.jsonl, each line parsed only when needed)."""
    try:
        size = os.lstat(folder / ckpt.METRICS).st_size
    except OSError:
        return []
    lines, _ = read_lines(folder, max(0, size - TAIL_BYTES))  # (a line cut by the tail's start is no record)
    picked, need = [], {"step", "eval", "end"}
    for line in reversed(lines):
        r = parse_record(line)
        key = None if r is None else "end" if r["event"] in ("start", "finish") else r["event"]
        if key in need:
            need.discard(key)
            picked.append(r)
            if not need:
                break
    return picked[::-1]


def updated_at(folder: Path) -> float:
    """When the run last changed: the later modification time of its metrics.jsonl and config.json (0: neither)."""
    times = []
    for f in (ckpt.METRICS, ckpt.CONFIG):
        try:
            times.append(os.lstat(folder / f).st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def summarize(folder, name: str | None = None) -> RunSummary:
    """What a run came to, from config.json and the end of metrics.jsonl; never raises."""
    folder = Path(folder)
    s = RunSummary(name=name or folder.name, folder=folder, status="broken: not a folder")
    try:
        if not folder.is_dir() or folder.is_symlink():  # (a link is not read through: its log and chart could be anyone's)
            return replace(s, status="broken: a symbolic link; runs are read from real folders only") if folder.is_symlink() else s
        s.updated = updated_at(folder)
        info = ckpt.read_info(folder)
        tail = _tail(folder)
    except Exception as e:  # noqa: BLE001 (a stranger's folder: whatever it holds, the table gets a line)
        s.status = f"broken: {str(e).splitlines()[0][:160] if str(e) else type(e).__name__}"
        return s
    _from_records(s, tail)
    if info.status == ckpt.TRAINING:
        s.status = "training"
    elif info.status == ckpt.NO_CHECKPOINT and not any(folder.iterdir()):
        s.status = "broken: an empty folder"
        return s
    elif info.status == ckpt.NO_CHECKPOINT:  # killed before its first save: not broken; run again, it starts over there
        s.status = f"{NO_CHECKPOINT}: stopped before its first save; run it again, or delete the folder"
        return s
    elif not info.ok:
        s.status = f"broken: {info.error or info.status}"
        return s
    doc = info.doc or {}
    corpus = doc.get("corpus") if isinstance(doc.get("corpus"), dict) else {}
    s.corpus = str(corpus.get("name", ""))[:200] or s.corpus  # the checkpoint's word over the log's
    s.corpus_sha256 = str(corpus.get("sha256", ""))[:64]
    s.model = doc.get("model") if isinstance(doc.get("model"), dict) else {}
    s.training = doc.get("training") if isinstance(doc.get("training"), dict) else {}
    s.tokenizer = str(getattr(info, "tokenizer", "") or s.training.get("tokenizer") or "char")[:40]  # "char", "bpe 512"
    s.params, s.context = info.params or s.params, info.block_size or s.context
    figures = doc.get("figures") if isinstance(doc.get("figures"), dict) else {}
    if s.status != "training":
        finish = next((r for r in reversed(tail) if r.get("event") in ("finish", "start")), {})
        if finish.get("event") == "finish":
            s.status = "stopped" if finish.get("reason") == "stopped" else "finished"
        else:  # no log, or a run killed: the checkpoint says whether its figure is the final one
            s.status = "finished" if figures.get("val_loss_is") == "full validation split" or not tail else "stopped"
        s.val_loss = info.val_loss if info.val_loss is not None else s.val_loss
        if tail and finish.get("event") != "finish" and s.steps < info.step:  # a log cut short (copied in part, a disk
            s.log_cut, s.minutes, s.tokens_seen, s.bpc = s.steps, None, 0, None  # filled): never its time over the checkpoint's tokens
        s.steps = max(s.steps, info.step)
        if number(figures.get("tokens_seen"), whole=True) and figures["tokens_seen"] >= s.tokens_seen:
            s.tokens_seen = figures["tokens_seen"]
        if s.minutes is None and number(figures.get("train_time_s")):
            s.minutes = figures["train_time_s"] / 60
    if s.status != "training" and number(figures.get("val_bpc")):
        s.bpc = figures["val_bpc"]  # the run's own: bits per character of the validation text, whatever its tokens
    if s.bpc is None and s.val_loss is not None and s.tokenizer == "char":
        s.bpc = s.val_loss / LN2
    if s.minutes and s.tokens_seen:
        s.tokens_per_s = s.tokens_seen / (s.minutes * 60)
    return s


def _from_records(s: RunSummary, tail: list[dict]) -> None:
    """Fill what the last records tell (a live run's figures are newer than its last checkpoint)."""
    for r in tail:
        kind = r.get("event")
        if kind == "start":
            s.corpus = str(r.get("corpus", s.corpus))[:200]
            s.params = r["params"] if number(r.get("params"), whole=True) else s.params
            model = r.get("model") if isinstance(r.get("model"), dict) else {}
            s.context = model["block_size"] if number(model.get("block_size"), whole=True) else s.context
        if number(r.get("step"), whole=True):
            s.steps = max(s.steps, r["step"]) if kind != "start" else r["step"]
        if number(r.get("elapsed_s")):
            s.minutes = r["elapsed_s"] / 60
        if number(r.get("tokens_seen"), whole=True):
            s.tokens_seen = r["tokens_seen"]
        if kind in ("eval", "finish"):
            v = _num(r.get("val_loss")) if kind == "finish" else _num(r.get("best_val_loss"))
            s.val_loss = v if v is not None else s.val_loss
            bpc, of = _num(r.get("bpc")), _num(r.get("val_loss"))  # (an evaluation's bpc is of its own loss, not the best)
            if bpc is not None and kind == "eval" and v is not None and of:
                bpc *= v / of  # (bits per character are the loss times the split's tokens per character)
            s.bpc = bpc if bpc is not None else s.bpc


def common_corpus(summaries) -> tuple[str, str]:
    """(name, sha256) of the corpus most of these runs trained on (their losses compare); ("", "") if none says.
    Counted by sha256 where a run has one (the same text under two names is one corpus), else by name; a tie goes
    to the corpus of the newest run (what the learner trained last, not the folder listed first)."""
    runs: dict = {}  # sha256 (or the name of a run not saved yet): [how many, newest, (name, sha256)]
    for s in summaries:
        if s.ok and s.corpus:
            group = runs.setdefault(s.corpus_sha256 or f"name:{s.corpus}", [0, s.updated, (s.corpus, s.corpus_sha256)])
            group[0], group[1] = group[0] + 1, max(group[1], s.updated)
    return max(runs.values(), key=lambda v: v[:2])[2] if runs else ("", "")


def other_corpus(s: RunSummary, common: tuple[str, str]) -> bool:
    """Whether a run trained on another text than ``common``: by sha256 where both have one (a book edited keeps
    its name; one text may go by two names), else (a run not saved yet) by name."""
    name, sha = common
    if not (s.ok and s.corpus and name):
        return False
    return s.corpus_sha256 != sha if s.corpus_sha256 and sha else s.corpus != name


def tokenizers(summaries) -> list[str]:
    """These runs' tokenizers: past one, their losses per token don't compare (bits per character do)."""
    return sorted({s.tokenizer for s in summaries if s.ok})


def _is_experiment(p: Path) -> bool:
    """A folder holding an experiment manifest, or no run of its own but model folders inside (an
    unreadable folder is no experiment: it is listed as a run, which says it cannot be read)."""
    try:
        if (p / MANIFEST).exists():
            return True
        if any((p / f).exists() for f in (ckpt.CONFIG, ckpt.METRICS, ckpt.LOCK)):
            return False
        return any(_is_run(m) for m in ckpt.model_folders(p))
    except OSError:
        return False


def _is_run(m: Path) -> bool:
    """An experiment's member: a folder with a config or a log (or one that cannot be read, to say so)."""
    try:
        return (m / ckpt.CONFIG).exists() or (m / ckpt.METRICS).exists()
    except OSError:
        return True


def _members(p: Path) -> list[tuple[str, Path]]:
    return [(f"{p.name}/{m.name}", m) for m in ckpt.model_folders(p) if _is_run(m)]


def run_folders(models_dir=None) -> list[tuple[str, Path]]:
    """(name, folder) of every run: the models directory's folders, and each experiment's members."""
    out = []
    for p in ckpt.model_folders(models_dir):
        out += _members(p) if _is_experiment(p) else [(p.name, p)]
    return out


def stamp(models_dir, runs) -> tuple:
    """What changes when a listing of these runs would, read with stat() calls and folder reads alone (the runs screen
    checks it every few seconds and lists again only when it differs): the models folder, each run's folder and the one
    holding it (a run added, removed, or saved: files renamed into it), each run's metrics.jsonl and config.json
    (appended, rewritten), whether each live run still holds its lock (one killed changes no file), and the folders no
    run listed is in, two levels down: an experiment's, its members' (a member is a run once it has a log or a config,
    which changes its folder alone: the first member of a new experiment was in no folder stamped)."""
    def st(p):
        try:
            s = os.stat(p)
        except OSError:
            return None
        return s.st_ino, s.st_mtime_ns, s.st_size

    runs = list(runs)
    models = Path(models_dir) if models_dir else ckpt.default_models_dir()
    listed = {r.folder for r in runs}
    dirs = {models} | listed | {r.folder.parent for r in runs} | {p for p in _subfolders(models) if p not in listed}
    dirs |= {m for p in dirs - listed - {models} for m in _subfolders(p) if m not in listed}
    return (tuple(st(d) for d in sorted(dirs)), tuple(st(r.folder / f) for r in runs for f in (ckpt.METRICS, ckpt.CONFIG)),
            tuple(ckpt.is_training(r.folder) for r in runs if r.status == "training"))


def _subfolders(p: Path) -> list[Path]:
    try:
        with os.scandir(p) as entries:
            return [p / e.name for e in entries if not e.name.startswith(".") and e.is_dir()]
    except OSError:
        return []


def list_runs(models_dir=None) -> list[RunSummary]:
    """Every run under the models directory, experiments' members included, by name."""
    return [summarize(p, name) for name, p in run_folders(models_dir)]


def expand_run(name_or_path, models_dir=None) -> list[tuple[str, Path]]:
    """(name, folder) of a run named on the command line: a model folder, a name under the models directory
    ("shakespeare", "exp/member"), or an experiment (all its members). A run not found raises CheckpointError."""
    s = str(name_or_path)
    if not s:  # (a Path of '' is '.': `compare ""` read the current folder as a folder of runs)
        raise CheckpointError("a run's name is empty: give a run's name (tinygpt runs lists them) or its folder")
    p = Path(s)  # (not expanded: "~" is a run's name where there is one; resolve_model starts at home after)
    if not p.is_dir():
        d = Path(models_dir) if models_dir else ckpt.default_models_dir()
        parts = s.split("/")
        if len(parts) <= 2 and all(x and not x.startswith(".") for x in parts) and d.joinpath(*parts).is_dir():
            p = d.joinpath(*parts)
        else:
            p = ckpt.resolve_model(s, models_dir)  # its error names the models there
    return _members(p) if _is_experiment(p) else [(s, p)]


# ----------------------------------------------------------------- curves
@dataclass
class EvalPoint:
    step: int
    tokens: int
    minutes: float
    train_loss: float
    val_loss: float
    sample: str = ""
    bpc: float | None = None  # the validation loss in bits per character (comparable across tokenizers)


class Curves:
    """A run's loss curves from its metrics.jsonl. ``update()`` reads only what was appended since the
    last call (a live run is followed cheaply); a resumed run's rewritten stretch replaces the old one.
    Every evaluation is kept; of the step records (the training loss of one batch, thousands of them) at
    most about max_kept (MAX_KEPT), evenly spread, and always the latest: the rest are skipped without being
    parsed, so 20 runs of 5,000 steps open in a fraction of a second (docs/experiments.md). A chart a few
    hundred cells wide needs no more than that; one that draws fewer points passes fewer."""

    def __init__(self, folder=None, max_kept: int = MAX_KEPT):
        self.folder = Path(folder) if folder is not None else None
        self.max_kept = max(2, int(max_kept))
        self._start_over()
        offset = None
        while self.folder is not None and self.offset != offset:  # to its end: a log past metrics.MAX_READ comes in
            offset = self.offset                                   # chunks (`compare` drew a 90 MB log's first 64 MB)
            self.update()

    def _start_over(self) -> None:
        self.offset = 0
        self.file = None  # (device, inode) of the metrics.jsonl read: a resumed run writes a new one, cut back
        self.steps: list[int] = []  # the step records: training loss of one batch, every log_interval steps
        self.tokens: list[int] = []
        self.minutes: list[float] = []
        self.losses: list[float] = []
        self.evals: list[EvalPoint] = []  # the evaluations: train and val loss on the same held batches
        self.final: EvalPoint | None = None  # a finished run's val loss (and bpc) over the whole split, where its weights are from
        self.tokens_per_step = 0
        self.corpus = ""
        self.finished = False
        self.stride, self.seen = 1, 0  # step records: every stride-th is kept; how many were read
        self.skipped = 0  # bytes of a log past MAX_LOG not read: its start

    def update(self) -> bool:
        """Read what was appended since the last call; whether anything was. A log rewritten since (a run
        resumed after a kill drops the records past its checkpoint; a folder trained again) is read afresh."""
        if self.folder is None:
            return False
        try:
            st = os.stat(self.folder / ckpt.METRICS)
            file, size = (st.st_dev, st.st_ino), st.st_size
        except OSError:
            file, size = None, 0
        rewritten = self.offset and (file != self.file or size < self.offset)
        if rewritten:
            self._start_over()
        self.file = file
        if not self.offset and size > MAX_LOG:  # (a sparse file of 100 GB kept `compare` reading zeros for minutes)
            self.offset = self.skipped = size - MAX_LOG  # (the line it cuts is no record)
            start = next((r for r in map(parse_record, read_lines(self.folder, 0, TAIL_BYTES)[0]) if r and r["event"] == "start"), None)
            if start:  # (its corpus and tokens a step, from the log's first record)
                self.apply(start)
        lines, self.offset = read_lines(self.folder, self.offset)
        is_step = [ln.startswith(STEP_LINE) for ln in lines]
        n = sum(is_step)
        while (self.seen + n) / self.stride > self.max_kept:
            self._halve()
        last = len(lines) - 1 - is_step[::-1].index(True) if n else -1
        for i, line in enumerate(lines):
            if is_step[i]:
                self.seen += 1
                if (self.seen - 1) % self.stride and i != last:  # (the first, then every stride-th)
                    continue
            r = parse_record(line)
            if r is not None:
                self.apply(r)
        return bool(lines or rewritten)

    def _halve(self) -> None:
        self.stride *= 2
        for xs in (self.steps, self.tokens, self.minutes, self.losses):
            del xs[1::2]

    def apply(self, r: dict) -> None:
        """Fold one record in (the CLI's progress line feeds its events here)."""
        kind, step = r.get("event"), r.get("step")
        if not number(step, whole=True):
            return
        if kind == "start":
            self.corpus = str(r.get("corpus", self.corpus))[:200]
            self.tokens_per_step = r["tokens_per_step"] if number(r.get("tokens_per_step"), whole=True) else 0
            self.finished, self.final = False, None
            self._cut(step)
        elif kind == "step" and _num(r.get("loss")) is not None:
            if self.steps and step <= self.steps[-1]:
                self._cut(step - 1)
            tokens = r["tokens_seen"] if number(r.get("tokens_seen"), whole=True) else step * self.tokens_per_step
            self.steps.append(step)
            self.tokens.append(tokens)
            self.minutes.append((_num(r.get("elapsed_s")) or 0.0) / 60)
            self.losses.append(r["loss"])
        elif kind == "eval" and _num(r.get("train_loss")) is not None and _num(r.get("val_loss")) is not None:
            if self.evals and step <= self.evals[-1].step:
                self._cut(step - 1, evals_only=True)
            sample = r.get("sample") if isinstance(r.get("sample"), str) else ""
            tokens = step * self.tokens_per_step or (self.tokens[-1] if self.tokens else 0)
            self.evals.append(EvalPoint(step, tokens, (_num(r.get("elapsed_s")) or 0.0) / 60, r["train_loss"], r["val_loss"], sample,
                                        _num(r.get("bpc"))))
        elif kind == "finish":
            self.finished, v, i = True, _num(r.get("val_loss")), kept_at(r, [e.val_loss for e in self.evals])
            at = self.evals[i] if i is not None else EvalPoint(step, step * self.tokens_per_step, (_num(r.get("elapsed_s")) or 0.0) / 60, v, v)
            self.final = None if v is None else replace(at, val_loss=v, bpc=_num(r.get("bpc")), sample="")

    def _cut(self, step: int, evals_only: bool = False) -> None:
        if not evals_only:
            keep = sum(1 for s in self.steps if s <= step)
            del self.steps[keep:], self.tokens[keep:], self.minutes[keep:], self.losses[keep:]
        self.evals = [e for e in self.evals if e.step <= step]

    def train(self, x: str = "steps", max_points: int | None = MAX_POINTS) -> tuple[list, list]:
        """The training loss of each logged step against x."""
        _check_x(x)
        xs = {"steps": self.steps, "tokens": self.tokens, "minutes": self.minutes}[x]
        return thin(list(xs), list(self.losses), max_points)

    def val(self, x: str = "steps", max_points: int | None = MAX_POINTS) -> tuple[list, list]:
        """The validation loss of each evaluation against x."""
        return thin(self._eval_xs(x), [e.val_loss for e in self.evals], max_points)

    def val_bpc(self, x: str = "steps", max_points: int | None = MAX_POINTS) -> tuple[list, list]:
        """The validation loss in bits per character at each evaluation that logged it, against x."""
        xs = self._eval_xs(x)
        kept = [(xv, e.bpc) for xv, e in zip(xs, self.evals) if e.bpc is not None]
        return thin([k[0] for k in kept], [k[1] for k in kept], max_points)

    def final_val(self, x: str = "steps", bits: bool = False) -> tuple[list, list]:
        """A finished run's validation loss over the whole split (bits: per character), the figure its summary and the
        tables give, at the evaluation its kept weights are from: one point, or none (not finished, stopped)."""
        y = None if self.final is None else self.final.bpc if bits else self.final.val_loss
        return (self._eval_xs(x, [self.final]), [y]) if y is not None else ([], [])

    def _eval_xs(self, x: str, evals: list | None = None) -> list:
        _check_x(x)
        return [e.step if x == "steps" else e.tokens if x == "tokens" else e.minutes for e in (self.evals if evals is None else evals)]


def kept_at(finish: dict, vals: list) -> int | None:
    """The evaluation (an index into its val losses) whose weights a finished run kept: its final loss, over the whole
    split, is theirs. The last, unless an earlier one's estimate is the run's best and the last's is not (train.py keeps
    the best evaluation's weights); None if none was logged."""
    best = _num(finish.get("best_val_loss"))
    if not vals or best is None or vals[-1] == best:
        return len(vals) - 1 if vals else None
    return next((i for i in range(len(vals) - 1, -1, -1) if vals[i] == best), len(vals) - 1)


def _check_x(x: str) -> None:
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")


def thin(xs: list, ys: list, max_points: int | None = MAX_POINTS) -> tuple[list, list]:
    """At most max_points of a curve, evenly spread, the first and last always kept (values untouched), in new lists."""
    n = len(xs)
    if not max_points or n <= max_points:
        return list(xs), list(ys)
    keep = [round(i * (n - 1) / (max_points - 1)) for i in range(max_points)]
    return [xs[i] for i in keep], [ys[i] for i in keep]


# ----------------------------------------------------------------- overfitting
OVERFIT_EVALS = 3  # the last evaluations that must all sit above the best ...
OVERFIT_MARGIN = 0.02  # ... by this much (or 1% of it, whichever is more): an estimate's noise is about this


def overfitting(curves, k: int = OVERFIT_EVALS, margin: float = OVERFIT_MARGIN) -> str | None:
    """One sentence when validation loss has risen while training loss kept falling, else None.

    Said when the last k evaluations all lie above the best validation loss by more than the margin
    (one noisy estimate is not enough), the best came before them, and the training loss at the last
    evaluation is below its value at the best (measured on the same held batches each time)."""
    evals = curves.evals if hasattr(curves, "evals") else list(curves)
    if len(evals) < k + 1:
        return None
    best = min(range(len(evals)), key=lambda i: evals[i].val_loss)
    b, last = evals[best], evals[-1]
    gap = max(margin, 0.01 * b.val_loss)
    if best >= len(evals) - k or any(e.val_loss <= b.val_loss + gap for e in evals[-k:]):
        return None
    if last.train_loss >= b.train_loss:
        return None
    return (f"overfitting: validation loss rose from its best {b.val_loss:.3f} (step {b.step:,}) to {last.val_loss:.3f} "
            f"while training loss fell to {last.train_loss:.3f}; the model is memorising its training text")
