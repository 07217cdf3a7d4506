"""The model folder: the one interface between training, generation and the app.

models/<name>/  config.json (architecture, training settings, corpus, figures; renamed last),
model.safetensors (fp32 weights; never pickle), vocab.json (characters) or tokenizer.json (BPE), metrics.jsonl (one event a line,
appended while training), README.md (the card), train_state.safetensors (what --resume needs:
its own copy of the weights, the optimizer moments, and the step, so a kill between two renames
never leaves it inconsistent). Every file is written to a temporary name, fsynced and renamed.
Listing and validating a folder needs no torch; loading the weights imports it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from tinygpt_tui.config import GPTConfig
from tinygpt_tui.engine.device import check_fits, device_kind, pick_device
from tinygpt_tui.engine.files import (FORMAT, WEIGHTS, MiB, check_vocab_size, check_weights, fsync_dir, number, open_regular,
                                      read_json, read_safetensors_header, read_text, stage, unlink_quietly, validate_config_doc,
                                      validate_train_state)
from tinygpt_tui.errors import CheckpointError, TinyGPTError
from tinygpt_tui.tokenizer import BpeTokenizer, CharTokenizer, Tokenizer, tokenizer_from_json

CONFIG, VOCAB, CARD, LOCK, METRICS = "config.json", "vocab.json", "README.md", ".lock", "metrics.jsonl"
TOKENIZER_FILES = (CharTokenizer.FILE, BpeTokenizer.FILE)  # a folder holds one of them
STATE_TENSORS = "train_state.safetensors"
CONFIG_LIMIT, VOCAB_LIMIT = 4 * MiB, 32 * MiB  # a config is kilobytes; two million escaped characters fit
CPU = SimpleNamespace(type="cpu")  # where a model is loaded first (no torch needed to say so)
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl")
ENV_MODELS_DIR = "TINYGPT_MODELS_DIR"


def __getattr__(name: str):
    """The folder's log reader and card, imported when first asked for: listing the models needs neither."""
    if name in ("read_metrics", "render_card"):
        from tinygpt_tui.engine import card, metrics

        return getattr(metrics if name == "read_metrics" else card, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- locations
def default_models_dir() -> Path:
    """$TINYGPT_MODELS_DIR, else ./models, else the models/ shipped beside the package."""
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        return Path(env).expanduser()
    here = Path.cwd() / "models"
    if here.is_dir():
        return here
    shipped = Path(__file__).resolve().parents[2] / "models"
    return shipped if shipped.is_dir() else here


SYNC_LISTING = 32  # model folders the app reads before its first frame; a bigger models folder is read after it


def folder_signature(models_dir, limit: int | None = None) -> tuple | None:
    """A cheap fingerprint of the models folder (names, files' times and sizes); None past `limit` folders."""
    sig = []
    try:
        with os.scandir(models_dir) as it:
            entries = sorted((e for e in it if e.is_dir() and not e.name.startswith(".")), key=lambda e: e.name)
    except OSError:
        return ()
    if limit is not None and len(entries) > limit:
        return None
    for e in entries:
        stamp = []
        for f in ("config.json", "model.safetensors", *TOKENIZER_FILES):
            try:
                st = os.stat(os.path.join(e.path, f))
                stamp.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append(None)
        sig.append((e.name, tuple(stamp)))
    return tuple(sig)


def resolve_model(name_or_path, models_dir=None) -> Path:
    """A path to a folder, or a model name under the models directory, or a path that starts at home: "~" is the
    model of that name where there is one (a shell expands the ~ it is given: one that got here was quoted)."""
    s = str(name_or_path)
    if not s:  # (a Path of '' is '.': "config.json is missing: config.json" of the current folder)
        raise CheckpointError("the model's name is empty: give a model's name (tinygpt models lists them) or its folder")
    d = Path(models_dir) if models_dir else default_models_dir()
    for p in (Path(s), d / s, Path(s).expanduser()):
        if p.is_dir():
            return p
    import difflib

    known = [i.name for i in list_models(d)] if d.is_dir() else []
    near = difflib.get_close_matches(s, known, n=1, cutoff=0.75)  # a typo: the one meant, before a list of every run
    hint = f"; did you mean {near[0]!r}?" if near else f"; models in {d}: {', '.join(known)}" if known else f"; no models in {d}"
    raise CheckpointError(f"model not found: {s}{hint}")


# ---------------------------------------------------------------- reading without torch
TRAINING, NO_CHECKPOINT = "training…", "no checkpoint yet"
RUN_FILES = (LOCK, METRICS)  # what a run writes before its first checkpoint (and .*.tmp while saving)


@dataclass
class ModelInfo:
    name: str
    path: Path
    ok: bool  # the folder holds a checkpoint that loads
    error: str = ""  # why not, or the status below when that is the reason
    status: str = "ready"  # "ready", TRAINING (a live run holds the lock), NO_CHECKPOINT (a dead run's files only), "broken"
    params: int = 0
    block_size: int = 0
    vocab_size: int = 0
    tokenizer: str = ""  # "char", "bpe 512"
    corpus: str = ""
    val_loss: float | None = None
    step: int = 0
    size_bytes: int = 0
    doc: dict = field(default_factory=dict, repr=False)


def read_vocab(folder: Path) -> Tokenizer:
    """The folder's tokenizer: vocab.json (characters) or tokenizer.json (BPE), never both."""
    folder = Path(folder)
    present = [n for n in TOKENIZER_FILES if os.path.lexists(folder / n)]
    if len(present) > 1:
        raise CheckpointError(f"{folder.name} holds both {' and '.join(present)}; a model has one tokenizer: remove the stray one")
    name = present[0] if present else VOCAB  # (missing: read_text says so)
    tokenizer = tokenizer_from_json(name, read_text(folder / name, name, VOCAB_LIMIT))
    check_vocab_size(tokenizer.vocab_size, name)
    return tokenizer


def check_folder(folder: Path) -> tuple[dict, GPTConfig]:
    """Validate a model folder without loading the weights; return its config."""
    folder = Path(folder)
    try:
        if not folder.is_dir():  # (a model picked in the app, then moved or deleted: say it is gone)
            raise CheckpointError(f"not a model folder: {folder}" if folder.exists() else f"no model folder at {folder}: moved or deleted?")
        pickles = [] if (folder / WEIGHTS).exists() else [p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
    except OSError as e:  # (a folder without read or search permission)
        raise CheckpointError(f"cannot read the model folder {folder}: {e.strerror or e}") from None
    if pickles:
        raise CheckpointError(
            f"{pickles[0]} is a pickle checkpoint, which can run code when loaded; "
            "tinygpt loads only safetensors (see `tinygpt convert`)"
        )
    doc = read_json(folder / CONFIG, CONFIG, CONFIG_LIMIT)
    cfg = validate_config_doc(doc)
    vocab = read_vocab(folder)
    if vocab.vocab_size != cfg.vocab_size:
        raise CheckpointError(f"{vocab.FILE} has {vocab.vocab_size} {vocab.unit}s, config.json says vocab_size {cfg.vocab_size}")
    check_weights(folder, cfg)
    check_fits(cfg, 1, CPU, 0, training=False)  # a real weights file can still be larger than the machine
    return doc, cfg


def read_info(folder, name: str | None = None) -> ModelInfo:
    """What the sidebar and `tinygpt models` show; a broken folder comes back with ok=False and why."""
    folder = Path(folder)
    info = ModelInfo(name=name or folder.name, path=folder, ok=False, status="broken")
    try:
        info.size_bytes = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        training = is_training(folder)
        if training and not (folder / CONFIG).exists():
            info.status = info.error = TRAINING
            return info
        if is_dead_run(folder):
            info.status = info.error = NO_CHECKPOINT
            return info
        doc, cfg = check_folder(folder)
    except TinyGPTError as e:
        info.error = str(e)
        return info
    except OSError as e:
        info.error = f"cannot read folder: {e.strerror or e}"
        return info
    info.status = TRAINING if training else "ready"
    figures = doc.get("figures") if isinstance(doc.get("figures"), dict) else {}
    corpus = doc.get("corpus") if isinstance(doc.get("corpus"), dict) else {}
    info.ok, info.doc = True, doc
    info.params, info.block_size, info.vocab_size = cfg.param_count(), cfg.block_size, cfg.vocab_size
    info.tokenizer = "char" if (folder / VOCAB).exists() else f"bpe {cfg.vocab_size}"  # (check_folder read the one there)
    info.corpus = str(corpus.get("name", ""))[:200]
    info.val_loss = next((v for v in (figures.get("val_loss"), figures.get("best_val_loss")) if number(v)), None)
    info.step = figures.get("step") if number(figures.get("step"), whole=True) else 0
    return info


def model_folders(models_dir=None) -> list[Path]:
    """The model folders under the models directory, by name (none if it is missing or unreadable)."""
    d = Path(models_dir) if models_dir else default_models_dir()
    try:
        return sorted((p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name.lower())
    except OSError:  # missing, not a folder, or unreadable
        return []


def model_entries(models_dir=None) -> list[tuple[str, Path]]:
    """(name, folder) of each model: the models directory's folders, an experiment's folder replaced by its
    members ("exp/member", a name resolve_model takes), since an experiment is no model of its own."""
    from tinygpt_tui.engine.runs import run_folders  # (runs reads folders through this module)

    return run_folders(models_dir)


def list_models(models_dir=None) -> list[ModelInfo]:
    return [read_info(p, name) for name, p in model_entries(models_dir)]


# ---------------------------------------------------------------- loading and saving (torch)
@dataclass
class Loaded:
    model: object  # GPT, or a fast.decode.JitModel from load_for_sampling
    tokenizer: Tokenizer
    doc: dict
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def load_model(folder, device="cpu") -> Loaded:
    """Load a model folder safely: JSON validated, shapes checked, weights from safetensors only."""
    folder = Path(folder)
    doc, cfg = check_folder(folder)  # before importing torch: a broken folder is refused at once
    return _load_torch(folder, doc, cfg, device)


def _load_torch(folder: Path, doc: dict, cfg: GPTConfig, device) -> Loaded:
    state = read_tensors(folder / WEIGHTS)
    return Loaded(build_model(cfg, state).to(device), read_vocab(folder), doc, folder)


def read_tensors(path: Path, framework: str = "pt") -> dict:
    """Every tensor of a safetensors file, on the CPU, as torch tensors ("pt") or numpy arrays ("numpy")."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework=framework, device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise CheckpointError(f"cannot read {path.name}: {str(e).splitlines()[0][:120]}") from None


def build_model(cfg: GPTConfig, state: dict, what: str = WEIGHTS):
    """A GPT in eval mode holding ``state`` in fp32 (a folder's, a converted or an imported model's):
    every tensor floating point, finite, and in its place (a tied head once)."""
    from tinygpt_tui.model import GPT

    check_finite(state, what)
    # built on the CPU, not the meta device: its initialisers import torch._dynamo (2 s at start-up)
    model = GPT(cfg)
    missing, unexpected = model.load_state_dict({k: v.float().contiguous() for k, v in state.items()}, strict=False)
    missing = [k for k in missing if not (cfg.tie_weights and k == "head.weight")]
    if missing or unexpected:
        raise CheckpointError(f"{what} does not match the config ({(missing or unexpected)[0]})")
    return model.eval()


def check_finite(state: dict, what: str) -> dict:
    """Every tensor floating point and finite, checked as the model will hold it (fp32)."""
    import torch

    for k, t in state.items():
        if not t.is_floating_point():
            raise CheckpointError(f"{what}: {k[:80]} is {t.dtype}, not floating point")
        if not torch.isfinite(t.float()).all():
            raise CheckpointError(f"{what}: {k[:80]} holds NaN or infinite values (in float32)")
    return state


def load_for_sampling(folder, device="auto") -> Loaded:
    """A model folder loaded for generation: on a CPU with numba, the compiled step's JitModel read as
    numpy arrays without torch (at batch 1 it beats a GPU's kernel launches); else ``load_model``."""
    from tinygpt_tui.fast import decode

    kind = device_kind(device)  # a typo is refused, and a broken folder, before anything imports torch
    folder = Path(folder)
    doc, cfg = check_folder(folder)
    if kind not in ("auto", "cpu") or not decode.available():
        return _load_torch(folder, doc, cfg, pick_device(device))
    import numpy as np

    tokenizer = read_vocab(folder)
    arrays = read_tensors(folder / WEIGHTS, "numpy")  # (numpy has no bfloat16: such a file is refused in one line)
    with np.errstate(over="ignore"):  # (it holds float32: an F64 value past its range becomes inf, refused below)
        model = decode.JitModel(cfg, arrays)
    for k, a in model.arrays.items():
        if not np.isfinite(a).all():
            raise CheckpointError(f"{WEIGHTS}: {k} holds NaN or infinite values (in float32)")
    return Loaded(model, tokenizer, doc, folder)


def model_weights(model, copy: bool = False) -> dict:
    """The weights as saved: fp32 on the CPU, a tied output head once (copy: never the model's own tensors)."""
    state = {}
    for k, v in model.state_dict().items():
        if model.cfg.tie_weights and k == "head.weight":
            continue  # the same tensor as tok_emb.weight
        v = v.detach().float().cpu()
        state[k] = v.clone() if copy else v.contiguous()
    return state


STATE_MODEL_PREFIX = "model."


def save_model(folder, model, tokenizer: Tokenizer, doc: dict, card: str | None = None, train_state=None,
               weights: dict | None = None) -> None:
    """Write a whole checkpoint, config.json last. train_state: (tensors, meta), saved with the model's own
    weights; weights: what model.safetensors holds when not the model's (a run keeps its best evaluation)."""
    from safetensors.torch import save

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"cannot create model folder {folder}: {e.strerror or e}") from None
    figures = doc.get("figures", {})
    step = int(figures.get("step", 0))
    doc = {"format": FORMAT, **doc}
    own = model_weights(model)
    files = []
    if train_state is not None:
        tensors, meta = train_state
        both = {**{STATE_MODEL_PREFIX + k: v for k, v in own.items()}, **tensors}
        meta_json = json.dumps({"format": FORMAT, "step": step, **meta})
        files.append((STATE_TENSORS, save(both, metadata={"format": FORMAT, "step": str(step), "meta": meta_json})))
    kept = {"format": FORMAT, "step": str(step), "weights_of": str(figures.get("weights_step", step) if weights else step)}
    files += [(WEIGHTS, save(weights or own, metadata=kept)), (tokenizer.FILE, tokenizer.to_json())]
    files.append((CONFIG, json.dumps(doc, indent=2, ensure_ascii=False)))
    if card is not None:
        files.append((CARD, card))
    # every file written and fsynced before the first rename: a full disk fails before anything is replaced
    staged = []
    try:
        for name, data in files:
            staged.append((stage(folder / name, data), folder / name))
        while staged:
            tmp, dst = staged[0]
            os.replace(tmp, dst)
            staged.pop(0)
    except OSError as e:
        raise CheckpointError(f"cannot write {staged[0][1] if staged else folder}: {e.strerror or e}") from None
    finally:
        for tmp, _ in staged:
            unlink_quietly(tmp)
    fsync_dir(folder)


def load_train_state(folder):
    """(tensors, meta) for --resume: the weights ("model.*") and optimizer moments ("opt.*"), or why it can't resume."""
    folder = Path(folder)
    path = folder / STATE_TENSORS
    if not path.exists():
        raise CheckpointError(f"{folder.name} has no training state to resume from (it holds weights only)")
    names, header = read_safetensors_header(path)  # a regular file whose header holds together
    try:
        meta = json.loads(header.get("meta", "null"))
    except (ValueError, RecursionError):
        meta = None
    if not any(k.startswith(STATE_MODEL_PREFIX) for k in names):
        meta = None  # a state from before the weights were saved with it
    meta = validate_train_state(meta, names)  # before any tensor is read
    # copies, not views of the file's mapping: the optimizer keeps them for the whole run, and a mapping would keep
    # the file's disk blocks after the next save renames over it (a resumed run needed room for two states)
    return check_finite({k: v.clone() for k, v in read_tensors(path).items()}, STATE_TENSORS), meta


def state_weights(tensors: dict) -> dict | None:
    """The weights saved inside a training state."""
    w = {k[len(STATE_MODEL_PREFIX):]: v for k, v in tensors.items() if k.startswith(STATE_MODEL_PREFIX)}
    return w or None


def weights_step(folder, of: bool = False) -> int | None:
    """The step the weights file was saved at (of=True: the step its weights are from, when the best is kept)."""
    try:
        meta = read_safetensors_header(Path(folder) / WEIGHTS)[1]
        return int(meta.get("weights_of", meta.get("step", -1)) if of else meta.get("step", -1))
    except (TinyGPTError, OSError, ValueError):
        return None


# ---------------------------------------------------------------- one run per folder
class FolderLock:
    """An exclusive flock on <folder>/.lock for a whole run (the kernel drops it when the process dies)."""

    def __init__(self, folder, quiet: bool = False):
        self.folder = Path(folder)
        if self.folder.is_symlink():
            raise CheckpointError(f"{self.folder} is a symbolic link; tinygpt trains only into a real folder")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointError(f"cannot write to {self.folder}: {e.strerror or e}") from None
        self.fd = open_regular(self.folder / LOCK, f"{self.folder.name}/{LOCK}", write=True)
        for attempt in range(5):  # a lister's probe (is_training) holds it for microseconds
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if attempt < 4:
                    time.sleep(0.01)
        else:
            who = os.pread(self.fd, 40, 0).decode("ascii", "replace").strip()
            self.release()
            raise CheckpointError(
                f"{self.folder.name} is being trained by another process{f' (pid {who})' if who.isdigit() else ''}; "
                "wait for it to finish, or train under another --name"
            ) from None
        if quiet:
            return
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass  # the lock is what matters, the pid is a courtesy
        try:  # a folder it may not write (a .lock of its own in a read-only one) would fail at the first save
            unlink_quietly(stage(self.folder / LOCK, b""))
        except CheckpointError:
            self.release()
            raise
        for p in self.folder.glob(".*.tmp"):  # left by a run killed mid-save; no one else writes here now
            unlink_quietly(p)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file drops the flock
            self.fd = None


def is_training(folder) -> bool:
    """Whether a live process holds the folder's lock (a probe: a shared lock taken and dropped at once)."""
    try:
        fd = open_regular(Path(folder) / LOCK, LOCK)
    except CheckpointError:
        return False  # no lock file (or not a file): no run has it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # drops the probe's lock


def _run_files_only(folder: Path) -> bool:
    names = [p.name for p in folder.iterdir()]
    return all(n in RUN_FILES or (n.startswith(".") and n.endswith(".tmp")) for n in names) and not any(
        (folder / n).is_dir() and not (folder / n).is_symlink() for n in names)


def is_dead_run(folder) -> bool:
    """A run that died before its first checkpoint: nothing but tinygpt's own run files, and no live run."""
    folder = Path(folder)
    return folder.is_dir() and not folder.is_symlink() and _run_files_only(folder) and not is_training(folder)


def nothing_to_resume(folder) -> str | None:
    """Why --resume has nothing to continue in ``folder`` (None: a run is there; its checkpoint is checked as it loads)."""
    folder = Path(folder)
    if not folder.is_dir() or is_dead_run(folder):  # (killed before its first save: its log alone)
        return f"nothing to resume: {folder} " + ("holds no checkpoint (it stopped before its first save); train it again "
                                                  "without --resume" if folder.is_dir() else "does not exist")
    return None


def remove_dead_run(folder) -> None:
    """Delete a folder left by a run that died before its first checkpoint, under its lock (a link is
    removed, never followed); anything else is refused."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise CheckpointError(f"not a model folder: {folder}")
    lock = FolderLock(folder, quiet=True)  # refuses while a run trains there
    try:
        if not _run_files_only(folder):
            raise CheckpointError(f"{folder.name} holds more than a dead run's files; tinygpt deletes only those")
        for p in folder.iterdir():
            os.unlink(p)
        folder.rmdir()
    except OSError as e:
        raise CheckpointError(f"cannot delete {folder}: {e.strerror or e}") from None
    finally:
        lock.release()
