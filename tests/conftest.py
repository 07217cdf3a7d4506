"""Shared fixtures: small corpora and tiny model folders, built fresh in tmp dirs (no corpus text in git)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"

os.environ.setdefault("TINYGPT_TEST", "1")
# no launch screen kept in the user's cache by tests that run `tinygpt` on a terminal (test_app_terminal.py turns it on, with its own folder)
os.environ["TINYGPT_LAUNCH_SCREEN"] = "0"


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


def make_tiny_model(folder: Path, text: str, seed: int = 0, **overrides):
    """A randomly initialised tiny model saved as a real model folder (no training)."""
    import torch

    from tinygpt_tui.engine import folder as ckpt
    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.model import GPT
    from tinygpt_tui.tokenizer import CharTokenizer

    tok = CharTokenizer.from_text(text)
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
    """`tinygpt train` run in-process installs its Ctrl+C handler; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)
