"""`tinygpt train NEWBOOK --name B --from A`: B starts from A's weights, architecture and tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_tiny_model
from test_cli import assert_one_line_error, run_events, tinygpt, tinygpt_inproc

NEW_BOOK = "第一回 甄士隐梦幻识通灵 贾雨村风尘怀闺秀\n" * 3 + "Ça et là, naïve façade — «quoted» …\n"


@pytest.fixture(scope="module")
def parents(tmp_path_factory, small_corpus) -> Path:
    """A models folder with a character model A and a BPE model P (random weights), and a new book."""
    from tinygpt_tui.tokenizer import BpeTokenizer

    d = tmp_path_factory.mktemp("parents")
    text = small_corpus.read_text(encoding="utf-8")
    make_tiny_model(d / "A", text, seed=5, block_size=16)
    make_tiny_model(d / "P", text, seed=6, block_size=16, tokenizer=BpeTokenizer.train(text, 280))
    (d / "book.txt").write_text(text[:3000] + NEW_BOOK * 40 + text[3000:9000], encoding="utf-8")
    return d


def child_model(models: Path, parent: str, book: Path):
    """B as a --from run builds it before its first step (the engine's own pieces, no training)."""
    import torch

    from test_bpe import scanned
    from tinygpt_tui.engine.lineage import child_config, load_parent_weights, read_parent, run_tokenizer
    from tinygpt_tui.engine.presets import TrainConfig
    from tinygpt_tui.model import GPT

    cfg = TrainConfig(corpus=str(book), name="B", models_dir=str(models), init_from=parent, preset="tiny", max_steps=1)
    a = read_parent(cfg)
    cfg = child_config(cfg, a).resolved()
    tok, lineage = run_tokenizer(cfg, a)
    tok = tok(scanned(book)) if callable(tok) else tok  # (a character vocabulary grows with the scanned book)
    torch.manual_seed(0)
    model = GPT(cfg.model_config(tok.vocab_size))
    load_parent_weights(model, a)
    return a, tok, lineage, model


def test_from_grows_a_character_vocabulary_and_keeps_the_old_rows(parents):
    import torch

    a, tok, lineage, b = child_model(parents, "A", parents / "book.txt")
    old = a.tokenizer.chars
    new = sorted(set(NEW_BOOK) - set(old))
    assert len(new) > 20 and tok.chars == old + new  # A's ids keep their meaning; the new characters after them
    V = len(old)
    emb = b.tok_emb.weight.detach()
    assert emb.shape[0] == V + len(new)
    assert torch.equal(emb[:V], a.state["tok_emb.weight"])  # A's rows, exactly
    fresh = emb[V:]
    assert 0.01 < float(fresh.std()) < 0.04 and not torch.equal(fresh[0], fresh[1])  # drawn as a new model's rows are
    for k, v in a.state.items():
        if k != "tok_emb.weight":
            assert torch.equal(b.state_dict()[k], v), k  # every other tensor is A's
    assert b.cfg.n_layer == a.cfg.n_layer and b.cfg.block_size == 16  # A's architecture, not the preset's
    assert lineage["from"] == "A" and lineage["sha256"] == "0" * 64 and lineage["tokenizer"] == "char"


def test_from_keeps_a_bpe_tokenizer_as_it_is(parents):
    import torch

    a, tok, lineage, b = child_model(parents, "P", parents / "book.txt")
    assert tok is a.tokenizer and b.cfg.vocab_size == 280
    assert torch.equal(b.tok_emb.weight.detach(), a.state["tok_emb.weight"])
    assert lineage["tokenizer"] == "bpe 280"


@pytest.mark.slow
def test_train_from_end_to_end_records_the_lineage(tmp_path, parents):
    import shutil

    for name in ("A", "P"):
        shutil.copytree(parents / name, tmp_path / name)
    book = parents / "book.txt"
    r = tinygpt("train", book, "--name", "B", "--from", "A", "--models-dir", tmp_path, "--preset", "tiny", "--max-steps", "6",
                "--eval-interval", "3", "--eval-iters", "1", "--sample-chars", "20", "--threads", "1", "--jsonl")
    assert r.returncode == 0, r.stderr
    start = run_events(r.stdout)[0]
    assert start["model"]["block_size"] == 16 and start["model"]["vocab_size"] > 60
    assert start["model"]["dropout"] == json.loads((tmp_path / "A" / "config.json").read_text(encoding="utf-8"))["model"]["dropout"]
    doc = json.loads((tmp_path / "B" / "config.json").read_text(encoding="utf-8"))
    assert doc["lineage"] == {"from": "A", "path": str(tmp_path / "A"), "corpus": "fixture", "sha256": "0" * 64, "step": 0,
                              "tokenizer": "char"}
    card = (tmp_path / "B" / "README.md").read_text(encoding="utf-8")
    assert "Continued from **A**" in card and "step 0" in card
    vocab = json.loads((tmp_path / "B" / "vocab.json").read_text(encoding="utf-8"))["chars"]
    a_vocab = json.loads((tmp_path / "A" / "vocab.json").read_text(encoding="utf-8"))["chars"]
    assert vocab[: len(a_vocab)] == a_vocab and "梦" in vocab
    # resumed, B still says where it came from; A is untouched
    r = tinygpt("train", "--name", "B", "--models-dir", tmp_path, "--resume", "--max-steps", "8", "--threads", "1", "--jsonl")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "B" / "config.json").read_text(encoding="utf-8"))["lineage"]["from"] == "A"
    assert (tmp_path / "A" / "vocab.json").read_bytes() == (parents / "A" / "vocab.json").read_bytes()
    # from a BPE model: its tokenizer.json, byte for byte; dropout, which shapes no weight, may change
    r = tinygpt("train", book, "--name", "Q", "--from", "P", "--models-dir", tmp_path, "--preset", "tiny", "--max-steps", "2",
                "--eval-interval", "2", "--eval-iters", "1", "--sample-chars", "0", "--threads", "1", "--jsonl", "--dropout", "0.35")
    assert r.returncode == 0, r.stderr
    assert run_events(r.stdout)[0]["model"]["dropout"] == 0.35
    assert json.loads((tmp_path / "Q" / "config.json").read_text(encoding="utf-8"))["model"]["dropout"] == 0.35
    assert (tmp_path / "Q" / "tokenizer.json").read_bytes() == (tmp_path / "P" / "tokenizer.json").read_bytes()


def test_bad_from_is_one_line(tmp_path, parents, tiny_models_dir):
    book = parents / "book.txt"
    common = ("--models-dir", parents, "--preset", "tiny", "--max-steps", "2")
    assert_one_line_error(tinygpt_inproc("train", book, "--name", "B2", "--from", "nobody", *common), "--from nobody", "not found")
    assert_one_line_error(tinygpt_inproc("train", "--name", "A", "--from", "P", "--resume", *common), "--from", "--resume")
    assert_one_line_error(tinygpt_inproc("train", book, "--name", "B2", "--from", "A", "--n-layer", "3", *common), "architecture", "--n-layer")
    assert_one_line_error(tinygpt_inproc("train", book, "--name", "B2", "--from", "A", "--tokenizer", "bpe", *common), "tokenizer")
    assert_one_line_error(tinygpt_inproc("train", book, "--name", "B2", "--from", "P", "--vocab-size", "300", *common), "tokenizer")
    r = tinygpt_inproc("train", book, "--name", "B2", "--from", str(tiny_models_dir / "broken"), *common)
    assert_one_line_error(r, "--from", "config.json")
    assert not (parents / "B2").exists()
