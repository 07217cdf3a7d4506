"""Shared fixtures: small corpora and tiny model folders, built fresh in tmp dirs (no corpus text in git)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"

os.environ.setdefault("TINYGPT_TEST", "1")
# prepared corpora (engine/prepare.py) go to a folder of this session, not ~/.cache
os.environ.setdefault("TINYGPT_PREPARED_DIR", tempfile.mkdtemp(prefix="tinygpt-prepared-"))
os.environ.setdefault("TINYGPT_PROBE", "0")  # no machine probe (engine/probe.py): tests/test_probe.py turns it on
# the decoder compiles in the test's own process (fast/warm.py's CHILD_ENV), not in one that outlives the test and
# the session (a test with a cache folder of its own started one each); test_fastdecode's tests of that process drop it
os.environ.setdefault("TINYGPT_COMPILING", "1")
# one torch thread per test process (before torch is imported, which reads it; the processes tests start inherit it):
# `-n 2` runs two workers on two cores, where torch's default of a thread per core had each worker's OpenMP threads
# spin for a core the other worker held (tests/test_app.py: 131 s of CPU, 104 s with one thread, on a 2-core Zen 3).
# A test of the thread count sets its own (torch.set_num_threads, --threads)
os.environ.setdefault("OMP_NUM_THREADS", "1")


def shakespeare_path() -> Path:
    """Tiny Shakespeare: ../shared/corpora (CI and dev machines) or the copy fetched into corpora/."""
    for p in (SHARED / "tinyshakespeare.txt", ROOT / "corpora" / "tinyshakespeare.txt"):
        if p.is_file():
            return p
    raise FileNotFoundError("Tiny Shakespeare not found in ../shared/corpora or corpora/ (run: tinygpt corpus fetch shakespeare)")


def hongloumeng_path() -> Path:
    for p in (SHARED / "hongloumeng.txt", ROOT / "corpora" / "hongloumeng.txt"):
        if p.is_file():
            return p
    raise FileNotFoundError("Dream of the Red Chamber not found in ../shared/corpora or corpora/")


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """The first 60 kB of Tiny Shakespeare (about 2,000 lines)."""
    p = tmp_path_factory.mktemp("corpus") / "small.txt"
    p.write_bytes(shakespeare_path().read_bytes()[:60_000])
    return p


def make_tiny_model(folder: Path, text: str, seed: int = 0, tokenizer=None, **overrides):
    """A randomly initialised tiny model saved as a real model folder (no training); tokenizer: a
    tokenizer to use instead of the characters of text (a BPE)."""
    import torch

    from tinygpt_tui.engine import folder as ckpt
    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.model import GPT
    from tinygpt_tui.tokenizer import CharTokenizer

    tok = tokenizer or CharTokenizer.from_text(text)
    kw = dict(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=32)
    kw.update(overrides)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**kw))
    doc = {"name": folder.name, "model": model.cfg.to_dict(), "corpus": {"name": "fixture", "sha256": "0" * 64},
           "figures": {"step": 0, "val_loss": 4.0, "params": model.num_params()}}
    ckpt.save_model(folder, model, tok, doc, card=ckpt.render_card(doc))
    return model, tok


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory, small_corpus) -> Path:
    """A models directory with two tiny models and one broken folder."""
    d = tmp_path_factory.mktemp("models")
    text = small_corpus.read_text(encoding="utf-8")
    make_tiny_model(d / "alpha", text, seed=1)
    make_tiny_model(d / "beta", text, seed=2, n_layer=2, pos_encoding="learned")
    broken = d / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    return d


@pytest.fixture(autouse=True)
def _keep_signal_handlers():
    """`tinygpt train` run in-process installs its Ctrl+C handler (and SIGTERM's, SIGHUP's); give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


# ------------------------------------------------------------------ model folders for the app's tests
CHARS = sorted(set("\n !',.:;?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def corpus_sha256(name: str) -> str:
    """The sha256 a made-up model card gives its corpus: one text per name ("fixture" as make_tiny_model's)."""
    return "0" * 64 if name == "fixture" else hashlib.sha256(name.encode()).hexdigest()


def make_model(folder: Path, name: str, *, n_layer=1, n_head=2, n_embd=32, block_size=32, seed=0, val_loss=2.5, corpus="fixture"):
    """A real, loadable GPT folder (random weights, fixed seed) written with core.checkpoint.save_model."""
    import torch

    from tinygpt_tui.engine.folder import save_model
    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.model import GPT
    from tinygpt_tui.tokenizer import CharTokenizer

    tok = CharTokenizer(CHARS)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd).validate()
    torch.manual_seed(seed)
    model = GPT(cfg)
    doc = {
        "name": name,
        "model": cfg.to_dict(),
        "training": {},
        "corpus": {"name": corpus, "path": "", "sha256": corpus_sha256(corpus), "chars": 1000},
        "figures": {"step": 100, "val_loss": val_loss, "params": model.num_params()},
        "device": "CPU",
        "dtype": "fp32",
    }
    save_model(folder / name, model, tok, doc)
    return folder / name


def make_models_dir(root: Path) -> Path:
    """models/: two good models and one broken folder (a config.json without a model section)."""
    d = root / "models"
    d.mkdir(parents=True, exist_ok=True)
    make_model(d, "alpha", seed=1, val_loss=2.345)
    make_model(d, "beta", seed=2, n_layer=2, n_embd=48, val_loss=1.987, corpus="other")
    broken = d / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"format": "tinygpt/1", "name": "broken"}))
    return d


def hold_preparation(corpus: Path) -> tuple[Path, int]:
    """Prepare the corpus for its characters (so that it is scanned), then take its prepared folder's lock as another
    process preparing it would: a run on it learns what it must, then waits there, mid-preparation. Returns the
    prepared folder and the lock's file descriptor (os.close lets the run go on)."""
    import fcntl

    from tinygpt_tui.engine.prepare import prepare, run_to_end
    from tinygpt_tui.tokenizer import CharTokenizer

    folder = run_to_end(prepare(str(corpus), lambda source: CharTokenizer(source.charset))).folder
    lock = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    return folder, lock


def small_corpus_file(root: Path, chars: int = 60_000) -> Path:
    """The first 60 kB of Tiny Shakespeare (or generated text when the shared corpus is absent)."""
    p = root / "small.txt"
    if (SHARED / "tinyshakespeare.txt").is_file():
        text = (SHARED / "tinyshakespeare.txt").read_text(encoding="utf-8")[:chars]
    else:
        import random

        rng = random.Random(0)
        words = ["the", "king", "queen", "my", "lord", "what", "say", "you", "and", "to", "love", "night", "day"]
        lines = []
        while sum(len(line) + 1 for line in lines) < chars:
            lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))).capitalize() + ".")
        text = "\n".join(lines)
    p.write_text(text, encoding="utf-8")
    return p


# ------------------------------------------------------------------ the machine probe (engine/probe.py)
# two small shapes: the probe's work, not its size, is under test (a budget well under a second)
PROBE_SHAPES = {"tiny": dict(n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4, lr=3e-3),
                "1min": dict(n_layer=1, n_head=2, n_embd=48, block_size=16, batch_size=4, lr=3e-3)}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A probe cache folder of the test's own, the probe switched on."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYGPT_PROBE", raising=False)
    return tmp_path / "cache" / "tinygpt" / "probe.json"


@pytest.fixture(scope="session")
def measured():
    """A real probe of this machine, on small shapes."""
    from tinygpt_tui.engine import probe

    return probe.run(budget_s=0.3, presets=PROBE_SHAPES)


@pytest.fixture
def small_probe(monkeypatch):
    """The probe the code under test starts measures for real, on the small shapes and budget of `measured`
    (its default budget is 5 s of measuring, 10 s in all: what the test reads is what is said meanwhile)."""
    from tinygpt_tui.engine import probe

    real = probe.run
    monkeypatch.setattr(probe, "run", lambda budget_s=probe.BUDGET_S, presets=None, bf16=True: real(0.3, presets or PROBE_SHAPES, bf16))


def probe_doc(measured, fp32_ms, bf16_ms, one_thread_ms, two_threads_ms, bf16_rate=3.0):
    doc = json.loads(json.dumps(measured))
    doc["matmul_gflops"] = {"fp32": 50.0, "bf16": 50.0 * bf16_rate}
    doc["step_ms"] = {"1min": {"fp32": fp32_ms, "bf16": bf16_ms}, "5min": {"fp32": 4 * fp32_ms, "bf16": 4 * bf16_ms}}
    doc["threads_ms"] = {"1": one_thread_ms, "2": two_threads_ms}
    doc["threads_free"] = 2  # (timed with both cores free: never timed again)
    doc["bf16_loss_ok"] = True
    return doc
