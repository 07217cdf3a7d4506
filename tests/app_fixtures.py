"""Fixture model folders for the app tests (imported by tests/test_app*.py).

Tiny models built directly (no training), so a models folder costs well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAKESPEARE = REPO.parent / "shared" / "corpora" / "tinyshakespeare.txt"

CHARS = sorted(set("\n !',.:;?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))


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
        "corpus": {"name": corpus, "path": "", "sha256": "0" * 64, "chars": 1000},
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


def small_corpus(root: Path, chars: int = 60_000) -> Path:
    """The first 60 kB of Tiny Shakespeare (or generated text when the shared corpus is absent)."""
    p = root / "small.txt"
    if SHAKESPEARE.is_file():
        text = SHAKESPEARE.read_text(encoding="utf-8")[:chars]
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
