"""Hostile input: untrusted model folders, bad corpora, impossible settings, prompts from anywhere.

Every bad input must end in exit code 2 and exactly one line "error: ..." on
stderr (never a traceback), and nothing from a folder, a corpus or a prompt may
reach the terminal as an escape sequence or rich markup.

The broad matrix runs the real command line in-process (typer's CliRunner, the
same code path as the installed `tinygpt`, but without paying the torch import
per case); a subset runs as real `tinygpt` processes to check what a shell sees.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_tiny_model
from tinygpt_tui.cli.main import app
from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
ESC_LIKE = ("\x1b", "\x9b", "\x07", "\x08", "\r")  # ESC, C1 CSI, bell, backspace, carriage return


def cli(*args, **kw):
    # wide, so that table cells and notes are not wrapped mid-word (what is checked is content, not layout)
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"}, **kw)


def assert_one_error(r, *needles) -> str:
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == 2, (r.exit_code, r.stdout[-500:], r.stderr[-1000:])
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]


def assert_inert(text: str):
    for c in ESC_LIKE:
        assert c not in text, (c, text[:300])


class Marker:
    """A pickle whose loading would create a file: proof that nothing was unpickled."""

    path = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def evil_pickle(dest: Path, marker: Path) -> Path:
    m = Marker()
    m.path = str(marker)
    Marker.path = str(marker)
    dest.write_bytes(pickle.dumps({"model": m}))
    return dest


@pytest.fixture
def text(small_corpus) -> str:
    return small_corpus.read_text(encoding="utf-8")


@pytest.fixture
def good(tmp_path, text) -> Path:
    folder = tmp_path / "models" / "good"
    make_tiny_model(folder, text, seed=3)
    return folder


def clone(good: Path, name: str) -> Path:
    dst = good.parent / name
    shutil.copytree(good, dst)
    return dst


def edit_json(path: Path, fn):
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc = fn(doc) or doc
    path.write_text(json.dumps(doc), encoding="utf-8")


# =========================================================================== untrusted folders
def test_pickle_only_folder_is_unsupported_and_never_unpickled(tmp_path, good):
    marker = tmp_path / "PWNED"
    for variant in ("only", "with-json"):
        folder = good.parent / f"pickled-{variant}"
        folder.mkdir()
        evil_pickle(folder / "model.pt", marker)
        if variant == "with-json":
            for f in (ckpt.CONFIG, ckpt.VOCAB):
                shutil.copy(good / f, folder / f)
        with pytest.raises(CheckpointError, match="pickle"):
            ckpt.load_model(folder)
        info = ckpt.read_info(folder)
        assert not info.ok and "pickle" in info.error
        assert_one_error(cli("generate", folder, "--prompt", "hi", "-n", "5"), "pickle", "safetensors")
        assert_one_error(cli("eval", folder.name, "--models-dir", folder.parent), "pickle")
    r = cli("models", "--models-dir", good.parent)
    assert r.exit_code == 0 and "pickle" in r.stdout
    # a pickle beside good safetensors is ignored: the model loads from safetensors alone
    evil_pickle(good / "model.pth", marker)
    ckpt.load_model(good)
    assert cli("generate", good, "-n", "5", "--seed", "1").exit_code == 0
    assert not marker.exists(), "a pickle was loaded"


def test_convert_refuses_a_pickle_that_runs_code(tmp_path):
    marker = tmp_path / "PWNED"
    src = evil_pickle(tmp_path / "evil.pt", marker)
    meta = tmp_path / "meta.pkl"
    meta.write_bytes(pickle.dumps({"itos": {0: "a", 1: "b"}}))
    r = cli("convert", src, "--name", "x", "--meta", meta, "--models-dir", tmp_path / "models")
    assert_one_error(r, "weights_only", "Unsupported")  # what was refused, not torch's advice to load it unsafely
    assert "weights_only=False" not in r.stderr and "Re-running" not in r.stderr
    assert not marker.exists()
    assert not (tmp_path / "models" / "x" / ckpt.CONFIG).exists()


def test_absurd_config_fails_fast_without_building_the_model(good, monkeypatch):
    """n_embd 16384 x 256 layers (terabytes) with a tiny weights file: refused by the shape check,
    before any tensor of that size exists."""
    from tinygpt_tui import model as model_mod

    built = []
    real_init = model_mod.GPT.__init__

    def spy(self, cfg, *a, **kw):
        built.append(cfg)
        return real_init(self, cfg, *a, **kw)

    monkeypatch.setattr(model_mod.GPT, "__init__", spy)
    folder = clone(good, "huge")
    edit_json(folder / ckpt.CONFIG, lambda d: d["model"].update(n_embd=16384, n_layer=256, n_head=128))
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="shape|lacks"):
        ckpt.load_model(folder)
    assert time.perf_counter() - t0 < 2 and not built
    info = ckpt.read_info(folder)
    assert not info.ok
    # beyond the hard limits: refused by the schema itself
    edit_json(folder / ckpt.CONFIG, lambda d: d["model"].update(n_embd=10**9))
    with pytest.raises(CheckpointError, match="beyond the limit"):
        ckpt.load_model(folder)
    # a safetensors header that claims a 1 GB tensor in a 16-byte file, and one that claims a 10 GB header
    folder2 = clone(good, "lying-header")
    hdr = json.dumps({"tok_emb.weight": {"dtype": "F32", "shape": [16384, 16384], "data_offsets": [0, 16384 * 16384 * 4]}}).encode()
    (folder2 / ckpt.WEIGHTS).write_bytes(struct.pack("<Q", len(hdr)) + hdr + b"\0" * 16)
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        ckpt.load_model(folder2)
    (folder2 / ckpt.WEIGHTS).write_bytes(struct.pack("<Q", 10**10) + b"{}")
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        ckpt.load_model(folder2)
    assert not built


def _truncate(f):
    p = f / ckpt.WEIGHTS
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _wrong_shape(f):
    edit_json(f / ckpt.CONFIG, lambda d: d["model"].update(n_embd=64))


def _vocab_mismatch(f):
    edit_json(f / ckpt.VOCAB, lambda d: d.update(chars=d["chars"][:-1]))


def _vocab_and_config_agree_weights_dont(f):
    edit_json(f / ckpt.VOCAB, lambda d: d.update(chars=d["chars"] + ["\u4e00"]))
    edit_json(f / ckpt.CONFIG, lambda d: d["model"].update(vocab_size=d["model"]["vocab_size"] + 1))


def _nan_weights(f):
    from safetensors.torch import load_file, save_file

    st = load_file(str(f / ckpt.WEIGHTS))
    st["tok_emb.weight"][0, 0] = float("nan")
    save_file(st, str(f / ckpt.WEIGHTS))


def _int_weights(f):
    from safetensors.torch import load_file, save_file

    st = load_file(str(f / ckpt.WEIGHTS))
    st["tok_emb.weight"] = st["tok_emb.weight"].to(dtype=__import__("torch").int32)
    save_file(st, str(f / ckpt.WEIGHTS))


def _extra_tensor(f):
    from safetensors.torch import load_file, save_file

    st = load_file(str(f / ckpt.WEIGHTS))
    st["evil.weight"] = st["tok_emb.weight"].clone()
    save_file(st, str(f / ckpt.WEIGHTS))


CORRUPTIONS = {
    "missing weights": (lambda f: (f / ckpt.WEIGHTS).unlink(), "missing"),
    "missing config": (lambda f: (f / ckpt.CONFIG).unlink(), "config.json is missing"),
    "missing vocab": (lambda f: (f / ckpt.VOCAB).unlink(), "vocab.json is missing"),
    "truncated safetensors": (_truncate, "safetensors"),
    "garbage safetensors": (lambda f: (f / ckpt.WEIGHTS).write_bytes(os.urandom(300)), "safetensors"),
    "empty safetensors": (lambda f: (f / ckpt.WEIGHTS).write_bytes(b""), "safetensors"),
    "wrong shapes": (_wrong_shape, "shape"),
    "vocab size mismatch": (_vocab_mismatch, "vocab_size"),
    "vocab larger than the weights": (_vocab_and_config_agree_weights_dont, "shape"),
    "NaN weights": (_nan_weights, "NaN"),
    "integer weights": (_int_weights, "floating"),
    "extra tensor": (_extra_tensor, "evil.weight"),
    "invalid JSON config": (lambda f: (f / ckpt.CONFIG).write_text("{\"model\": {", encoding="utf-8"), "not valid JSON"),
    "config not UTF-8": (lambda f: (f / ckpt.CONFIG).write_bytes(b"\xff\xfe{}"), "UTF-8"),
    "config is a list": (lambda f: (f / ckpt.CONFIG).write_text("[1, 2]", encoding="utf-8"), "object"),
    "config without model": (lambda f: edit_json(f / ckpt.CONFIG, lambda d: d.pop("model")), "model"),
    "n_layer a string": (lambda f: edit_json(f / ckpt.CONFIG, lambda d: d["model"].update(n_layer="2")), "whole number"),
    "n_embd a float": (lambda f: edit_json(f / ckpt.CONFIG, lambda d: d["model"].update(n_embd=32.5)), "whole number"),
    "n_head a bool": (lambda f: edit_json(f / ckpt.CONFIG, lambda d: d["model"].update(n_head=True)), "whole number"),
    "negative vocab": (lambda f: edit_json(f / ckpt.CONFIG, lambda d: d["model"].update(vocab_size=-5)), "at least 1"),
    "bias a string": (lambda f: edit_json(f / ckpt.CONFIG, lambda d: d["model"].update(bias="yes")), "true or false"),
    "unknown pos encoding": (lambda f: edit_json(f / ckpt.CONFIG, lambda d: d["model"].update(pos_encoding="evil")), "pos_encoding"),
    "dropout NaN": (lambda f: edit_json(f / ckpt.CONFIG, lambda d: d["model"].update(dropout=float("nan"))), "dropout"),
    "unknown config key": (lambda f: edit_json(f / ckpt.CONFIG, lambda d: d["model"].update(__class__="os.system")), "unknown"),
    "wrong format": (lambda f: edit_json(f / ckpt.CONFIG, lambda d: d.update(format="evil/9")), "format"),
    "vocab not an object": (lambda f: (f / ckpt.VOCAB).write_text("[\"a\"]", encoding="utf-8"), "vocab.json"),
    "vocab multi-char entry": (lambda f: edit_json(f / ckpt.VOCAB, lambda d: d["chars"].__setitem__(0, "ab")), "single character"),
    "vocab repeated entry": (lambda f: edit_json(f / ckpt.VOCAB, lambda d: d["chars"].__setitem__(1, d["chars"][0])), "repeated"),
    "vocab entry a number": (lambda f: edit_json(f / ckpt.VOCAB, lambda d: d["chars"].__setitem__(0, 7)), "single character"),
    # JSON's "\ud800" decodes to a lone surrogate: eval died encoding it (UnicodeEncodeError)
    "vocab lone surrogate": (lambda f: edit_json(f / ckpt.VOCAB, lambda d: d["chars"].__setitem__(0, "\ud800")), "surrogate"),
    "vocab invalid JSON": (lambda f: (f / ckpt.VOCAB).write_text("{", encoding="utf-8"), "JSON"),
    "config is a directory": (lambda f: ((f / ckpt.CONFIG).unlink(), (f / ckpt.CONFIG).mkdir()), "config.json"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_broken_folder_is_refused_with_a_clear_reason(good, case):
    corrupt, needle = CORRUPTIONS[case]
    folder = clone(good, "bad")
    corrupt(folder)
    with pytest.raises(CheckpointError) as e:
        ckpt.load_model(folder)
    msg = str(e.value)
    assert "\n" not in msg and needle.lower() in msg.lower(), msg
    info = ckpt.read_info(folder)  # what the app's sidebar and `tinygpt models` use: no exception
    if case != "NaN weights":  # listing reads headers only; NaN values are found when the weights load
        assert not info.ok and info.error


@pytest.mark.parametrize("case", ["truncated safetensors", "wrong shapes", "vocab size mismatch", "invalid JSON config",
                                  "n_layer a string", "missing weights", "NaN weights", "config is a directory",
                                  "vocab lone surrogate"])
def test_broken_folder_through_the_command_line(good, case):
    corrupt, needle = CORRUPTIONS[case]
    folder = clone(good, "bad")
    corrupt(folder)
    assert_one_error(cli("generate", folder, "--prompt", "x", "-n", "3"), needle)
    assert_one_error(cli("eval", "bad", "--models-dir", folder.parent), needle)
    r = cli("models", "--models-dir", folder.parent)
    assert r.exit_code == 0 and "broken" in r.stdout and "good" in r.stdout


def test_names_and_vocab_are_displayed_inert(tmp_path, text, small_corpus):
    """Folder names, corpus names and vocabulary entries with escape sequences and rich markup
    reach the terminal as visible text, never as control sequences or styles."""
    models = tmp_path / "models"
    evil_name = "[bold red]boom\x1b[2J\x1b]0;title\x07"
    evil_vocab = "\x1b[2J" + "\x9b\x07\x08\r" + "[bold red]" + "abc"
    folder = models / evil_name
    make_tiny_model(folder, evil_vocab * 20, seed=5)
    edit_json(folder / ckpt.CONFIG, lambda d: d["corpus"].update(name="[link=file:///etc]x[/link]\x1b[31mred", path=str(small_corpus)))
    r = cli("models", "--models-dir", models)
    assert r.exit_code == 0, r.stderr
    assert_inert(r.stdout + r.stderr)
    assert "[bold red]boom" in r.stdout.replace("\n", "")  # markup shown literally, not applied
    # generate: a random model over this vocabulary emits ESC, CSI, BEL... as visible symbols
    r = cli("generate", folder, "--prompt", "\x1b[2J[bold]hi\x1b]52;c;ZXZpbA==\x07", "-n", "300", "--seed", "3")
    assert r.exit_code == 0, r.stderr
    assert_inert(r.stdout + r.stderr)
    assert "␛" in r.stdout  # ESC made visible
    assert len(r.stdout.rstrip("\n")) >= 300
    # eval: the table title names the folder and the corpus
    evil_corpus = tmp_path / "[bold]\x1b[2Jc.txt"
    evil_corpus.write_text(evil_vocab * 100, encoding="utf-8")
    r = cli("eval", evil_name, "--models-dir", models, "--corpus", evil_corpus, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert_inert(r.stdout + r.stderr)
    assert "[bold red]boom" in r.stdout.replace("\n", "")
    # errors naming the folder are inert too
    r = cli("generate", evil_name + "\x1b[0m", "--models-dir", models)
    assert_inert(assert_one_error(r, "not found"))


# =========================================================================== corpora
def _write(tmp_path, name, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


BAD_CORPORA = {
    "missing": (lambda t: t / "nope.txt", "not found"),
    "empty": (lambda t: _write(t, "empty.txt", b""), "empty"),
    "whitespace only": (lambda t: _write(t, "ws.txt", b" \n\n\t  \r\n"), "holds only whitespace"),
    "binary": (lambda t: _write(t, "img.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20), "binary"),
    "NUL bytes in text": (lambda t: _write(t, "nul.txt", b"hello world\n" * 500 + b"\x00" + b"more text\n" * 10), "NUL"),
    "non-UTF-8": (lambda t: _write(t, "latin1.txt", "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e\n".encode("latin-1") * 500), "UTF-8"),
    "directory": (lambda t: (t / "adir").mkdir() or (t / "adir"), "directory"),
    "too short": (lambda t: _write(t, "short.txt", b"To be, or not to be.\n" * 3), "too short"),
}


@pytest.mark.parametrize("case", list(BAD_CORPORA))
def test_bad_corpus_is_refused(tmp_path, case):
    make, needle = BAD_CORPORA[case]
    path = make(tmp_path)
    r = cli("train", path, "--name", "m", "--models-dir", tmp_path / "models", "--preset", "tiny", "--max-steps", "2")
    assert_one_error(r, needle)
    assert not (tmp_path / "models" / "m" / ckpt.CONFIG).exists()


@pytest.mark.parametrize("case", ["empty", "whitespace only"])
def test_an_empty_or_blank_corpus_is_named_for_what_it_holds_everywhere(tmp_path, case):
    """An experiment reads its corpus on its own path (engine.corpora), a folder of files on another
    (engine.sources): a file of spaces and new lines is said to hold only whitespace on both, not to be empty."""
    make, needle = BAD_CORPORA[case]
    path = make(tmp_path)
    r = cli("experiment", "e", "--corpus", path, "--max-steps", "2", "--vary", "n_layer=1,2", "--plan", "--models-dir", tmp_path / "models")
    line = assert_one_error(r, needle)
    folder = tmp_path / "texts"
    folder.mkdir()
    path.rename(folder / path.name)
    r = cli("train", folder, "--name", "m", "--models-dir", tmp_path / "models", "--preset", "tiny", "--max-steps", "2")
    assert assert_one_error(r, needle).endswith(str(folder / path.name))
    assert ("whitespace" in line) == (case == "whitespace only")
    assert not (tmp_path / "models" / "e").exists() and not (tmp_path / "models" / "m" / ckpt.CONFIG).exists()


def _tiny_train(tmp_path, corpus, name="m", *extra):
    return cli("train", corpus, "--name", name, "--models-dir", tmp_path / "models", "--preset", "tiny", "--n-layer", "1",
               "--n-embd", "32", "--block-size", "16", "--batch-size", "4", "--max-steps", "3", "--eval-iters", "1",
               "--sample-chars", "10", "--threads", "1", "--jsonl", *extra)


def test_mixed_newlines_train(tmp_path, text):
    lines = text[:6000].split("\n")
    mixed = "".join(line + ("\r\n", "\r", "\n")[i % 3] for i, line in enumerate(lines))
    assert "\r\n" in mixed and "\r" in mixed.replace("\r\n", "")
    path = _write(tmp_path, "mixed.txt", "\ufeff".encode() + mixed.encode("utf-8"))
    r = _tiny_train(tmp_path, path)
    assert r.exit_code == 0, r.stderr
    vocab = json.loads((tmp_path / "models" / "m" / ckpt.VOCAB).read_text(encoding="utf-8"))["chars"]
    assert "\r" not in vocab and "\ufeff" not in vocab and "\n" in vocab


def test_single_repeated_character_corpus(tmp_path):
    """One distinct character is nothing to learn: refused before a step, not trained to loss 0."""
    path = _write(tmp_path, "a.txt", b"a" * 5000)
    assert_one_error(_tiny_train(tmp_path, path), "one distinct character")
    assert not (tmp_path / "models" / "m" / ckpt.CONFIG).exists()


@pytest.mark.parametrize("refusal", [["--device", "cuda"], ["--dtype", "fp16", "--device", "cpu"], ["--n-embd", "16384", "--n-layer", "256"]])
def test_a_refused_run_leaves_no_folder_behind(tmp_path, small_corpus, refusal):
    """Refused after taking its folder's lock (device, dtype, memory): the folder it made goes; one it found stays."""
    assert_one_error(_tiny_train(tmp_path, small_corpus, "m", *refusal))
    assert not (tmp_path / "models" / "m").exists() and ckpt.list_models(tmp_path / "models") == []
    (tmp_path / "models" / "mine").mkdir(parents=True, exist_ok=True)
    assert_one_error(_tiny_train(tmp_path, small_corpus, "mine", *refusal))
    assert (tmp_path / "models" / "mine").is_dir()


# =========================================================================== settings
BAD_TRAIN = {
    "n-embd not divisible by n-head": (["--n-embd", "30", "--n-head", "4"], "divisible"),
    "block-size 0": (["--block-size", "0"], "block"),
    "block-size negative": (["--block-size", "-8"], "block"),
    "negative lr": (["--lr", "-0.001"], "lr"),
    "zero lr": (["--lr", "0"], "lr"),
    "nan lr": (["--lr", "nan"], "lr"),
    "batch 0": (["--batch-size", "0"], "batch"),
    "max-steps 0": (["--max-steps", "0"], "max-steps"),
    "minutes negative": (["--minutes", "-1"], "minutes"),
    "dropout 1.5": (["--dropout", "1.5"], "dropout"),
    "eval-interval 0": (["--eval-interval", "0"], "eval-interval"),
    "unknown preset": (["--preset", "gigantic"], "preset"),
    "unknown pos": (["--pos", "spiral"], "pos"),
    "unknown device": (["--device", "tpu"], "device"),
    "name with slash": (["--name", "../escape"], "name"),
    "name dot-dot": (["--name", ".."], "name"),
    "name empty": (["--name", "  "], "name"),
    "name with ESC": (["--name", "a\x1b[2Jb"], "name"),
    "block-size absurd": (["--block-size", "10000000"], "block"),
    "resume nothing": (["--resume"], "resume"),
    "threads past the cores": (["--threads", "999"], f"{len(os.sched_getaffinity(0))} CPU cores"),
}


@pytest.mark.parametrize("case", list(BAD_TRAIN))
def test_impossible_training_settings(tmp_path, small_corpus, case):
    extra, needle = BAD_TRAIN[case]
    args = ["train", small_corpus, "--name", "m", "--models-dir", tmp_path / "models", "--preset", "tiny", "--max-steps", "2"]
    r = cli(*args, *extra)
    line = assert_one_error(r, needle)
    assert_inert(line)
    assert not (tmp_path / "escape").exists()


# each said by the option typed (the sampler said "top-k must be ...", and "length must be ..." of --max-new)
BAD_SAMPLING = {
    "temperature below 0": (["--temperature", "-0.5"], "--temperature"),
    "temperature nan": (["--temperature", "nan"], "--temperature"),
    "temperature inf": (["--temperature", "inf"], "--temperature"),
    "top-k 0": (["--top-k", "0"], "--top-k"),
    "top-k negative": (["--top-k", "-3"], "--top-k"),
    "top-p 0": (["--top-p", "0"], "--top-p"),
    "top-p above 1": (["--top-p", "1.5"], "--top-p"),
    "top-p negative": (["--top-p", "-0.1"], "--top-p"),
    "top-p nan": (["--top-p", "nan"], "--top-p"),
    "max-new negative": (["--max-new", "-1"], "--max-new"),
    "num-samples 0": (["--num-samples", "0"], "num-samples"),
    "num-samples a billion": (["--num-samples", "1000000000"], "num-samples"),
    "max-new 10**20": (["--max-new", str(10**20)], "max-new"),
    "split bad": (["--corpus", "x.txt", "--split", "test"], "split"),
    "seed negative": (["--seed", "-1"], "seed"),
}


@pytest.mark.parametrize("case", list(BAD_SAMPLING))
def test_impossible_sampling_settings(good, case):
    extra, needle = BAD_SAMPLING[case]
    assert_one_error(cli("generate", good, "--prompt", "hi", *extra), needle)


def test_eval_bad_inputs(good, tmp_path):
    assert_one_error(cli("eval", good, "--split", "nope"), "split")
    assert_one_error(cli("eval", good, "--corpus", tmp_path / "missing.txt"), "not found")
    assert_one_error(cli("eval", good), "corpus")  # the fixture model records no corpus path
    # a corpus in another alphabet: every character unknown to the model
    alien = _write(tmp_path, "alien.txt", ("\u6ee1\u7eb8\u8352\u5510\u8a00" * 400).encode("utf-8"))
    r = cli("eval", good, "--corpus", alien)
    assert_one_error(r, "characters")


def test_model_argument_is_not_a_folder(tmp_path, good):
    f = _write(tmp_path, "file.txt", b"hello")
    assert_one_error(cli("generate", f), "is a file, not a model folder")  # (it was "model not found" of a file that is there)
    assert_one_error(cli("generate", "does-not-exist", "--models-dir", good.parent), "not found", "good")
    empty = tmp_path / "emptydir"
    empty.mkdir()
    assert_one_error(cli("generate", empty), "config.json")


def test_an_empty_string_for_a_model_corpus_or_file_is_refused_as_empty_not_read_as_the_current_folder(good, tmp_path, monkeypatch):
    """'' (an unset variable: "$MODEL", "$BOOK") is '.' as a Path: `generate ""` said "config.json is missing: config.json",
    `train ""` trained on the current folder's .txt files, `corpus add ""` refused a folder no one named, and
    `train --from ""` trained from scratch without a word. Each is said to be empty, and nothing is written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "book.txt").write_text("the current folder holds a text a run would have trained on\n" * 400, encoding="utf-8")
    models = good.parent
    m = ["--models-dir", models]
    cases = [(["generate", "", *m], "name is empty"), (["eval", "", *m], "name is empty"), (["export", "", "out", "--to", "hf", *m], "name is empty"),
             (["train", "", "--name", "x", "--max-steps", "1", *m], "empty string"), (["eval", "good", "--corpus", "", *m], "empty string"),
             (["generate", "good", "--corpus", "", *m], "empty string"), (["corpus", "prepare", ""], "empty string"),
             (["train", "book.txt", "--name", "x", "--from", "", "--max-steps", "1", *m], "--from is empty"),
             (["corpus", "add", ""], "empty"), (["import", "", "--name", "x", *m], "empty"), (["convert", "", "--name", "x", *m], "empty")]
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(models))
    for args, said in cases:
        assert_one_error(cli(*args), said)
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(models))) == before


def test_an_empty_run_name_or_corpus_option_is_refused_as_empty(good, tmp_path, monkeypatch):
    """`compare ""` read the current folder as a folder of runs (a table of its folders, "broken"); `inspect --heads
    --corpus ""` and `lesson NAME --corpus ""` read "" as not given (the model's own corpus, the lesson's own book), and
    `experiment --corpus ""` said it "needs a corpus". Each is one line saying it is empty, and nothing is written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "book.txt").write_text("a text in the current folder\n" * 400, encoding="utf-8")
    models = good.parent
    m = ["--models-dir", models]
    cases = [(["compare", "", *m], "name is empty"), (["compare", "good", "", *m], "name is empty"),
             (["inspect", "good", "--heads", "--corpus", "", *m], "empty string"),
             (["inspect", "good", "--embeddings", "--corpus", "", *m], "empty string"),
             (["lesson", "positions", "--corpus", "", "--plan", *m], "empty string"),
             (["experiment", "e", "--corpus", "", "--vary", "pos=learned,rope", "--max-steps", "1", "--plan", *m], "empty string")]
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(models))
    for args, said in cases:
        assert_one_error(cli(*args), said)
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(models))) == before


def test_a_file_given_for_a_model_folder_is_said_for_what_it_is(good, tmp_path, monkeypatch):
    """A GGUF file (what `export --to gguf` writes) given to generate, eval, inspect, export, compare or train --from
    was "model not found" of a file that is there, and to import only "not a folder". Each says it is a GGUF file,
    which tinygpt does not read, and what does; a model's own file says to give its folder; a checkpoint names convert."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sh.gguf").write_bytes(b"GGUF" + bytes(60))
    (tmp_path / "ckpt.pt").write_bytes(b"PK\x03\x04" + bytes(60))
    (tmp_path / "book.txt").write_text("a text to train on\n" * 400, encoding="utf-8")
    m = ["--models-dir", good.parent]
    for args in (["generate", "sh.gguf"], ["eval", "sh.gguf"], ["inspect", "sh.gguf", "-p", "a"], ["export", "sh.gguf", "o", "--to", "hf"],
                 ["compare", "good", "sh.gguf"], ["train", "book.txt", "--name", "x", "--from", "sh.gguf", "--max-steps", "1"]):
        assert_one_error(cli(*args, *m), "sh.gguf is a GGUF file", "reads model folders", "llama-completion -m sh.gguf")
    assert_one_error(cli("import", "sh.gguf", "--name", "x", *m), "GGUF file", "Hugging Face GPT-2 folder")
    assert_one_error(cli("generate", good / "config.json", *m), "give the folder itself", str(good))
    assert_one_error(cli("import", good / "model.safetensors", "--name", "x", *m), "give the folder itself")
    for args in (["generate", "ckpt.pt"], ["import", "ckpt.pt", "--name", "x"]):
        assert_one_error(cli(*args, *m), "PyTorch checkpoint", "tinygpt convert ckpt.pt")
    assert_one_error(cli("eval", "book.txt", *m), "is a file, not a model folder", "tinygpt import")
    assert sorted(os.listdir(good.parent)) == ["good"]


# =========================================================================== prompts
def test_empty_huge_unknown_and_control_prompts(good):
    r = cli("generate", good, "--prompt", "", "-n", "30", "--seed", "1")
    assert r.exit_code == 0 and len(r.stdout.rstrip("\n")) >= 30, r.stderr
    t0 = time.perf_counter()
    huge = "To be, or not to be, that is the question. " * 24_000  # about 1 MB
    r = cli("generate", good, "--prompt", huge, "-n", "20", "--seed", "1")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(huge) and len(r.stdout) >= len(huge) + 20
    assert time.perf_counter() - t0 < 20
    r = cli("generate", good, "--prompt", "\u6ee1\u7eb8\u8352\u5510\u8a00\U0001f600", "-n", "25", "--seed", "1")
    assert r.exit_code == 0, r.stderr
    assert "does not know 6 character" in r.stderr and len(r.stdout.strip()) >= 20
    ctrl = "".join(chr(i) for i in range(32)) + "\x7f\x9b\x1b[31m\x1b]0;x\x07\u202e"
    r = cli("generate", good, "--prompt", ctrl, "-n", "10", "--seed", "1")
    assert r.exit_code == 0, r.stderr
    assert_inert(r.stdout + r.stderr)
    # same seed, same text
    a = cli("generate", good, "--prompt", "ROMEO:", "-n", "40", "--seed", "9").stdout
    b = cli("generate", good, "--prompt", "ROMEO:", "-n", "40", "--seed", "9").stdout
    assert a == b and len(a) > 40


@pytest.mark.slow
def test_unicode_and_space_model_name_train_then_generate_in_a_real_process(tmp_path, text):
    """A name with spaces, CJK and an emoji: trained (with the progress bar), then generated from by the
    real `tinygpt` executable as a shell runs it."""
    models = tmp_path / "my models"
    corpus = _write(tmp_path, "c.txt", text[:8000].encode("utf-8"))
    name = "my model \u7ea2\u697c \U0001f642"
    exe = shutil.which("tinygpt") or str(Path(sys.executable).with_name("tinygpt"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    train = cli("train", corpus, "--name", name, "--models-dir", models, "--preset", "tiny", "--n-layer", "1", "--n-embd", "32",
                "--block-size", "16", "--batch-size", "4", "--max-steps", "6", "--eval-interval", "3", "--eval-iters", "1", "--threads", "1")
    assert train.exit_code == 0, train.stderr[-2000:]
    assert "Traceback" not in train.stdout + train.stderr and name in train.stdout
    ckpt.load_model(models / name)
    assert [i.name for i in ckpt.list_models(models)] == [name]
    gen = subprocess.run([exe, "generate", name, "--models-dir", str(models), "--prompt", "ROMEO:", "-n", "30", "--seed", "4"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert gen.returncode == 0 and gen.stdout.startswith("ROMEO:") and len(gen.stdout.strip()) >= 36, gen.stderr
    # what a shell sees for errors: exit 2, one line, no traceback (these fail before torch is imported)
    for args, needle in (
        (["generate", name + " nope", "--models-dir", str(models)], "not found"),
        (["train", str(tmp_path / "missing.txt"), "--name", "x", "--models-dir", str(models)], "not found"),
        (["train", str(models), "--name", "x", "--models-dir", str(models)], "directory"),  # (a folder of books is a corpus: not this one)
        (["generate", name, "--models-dir", str(models), "--top-k", "0"], "--top-k"),
    ):
        p = subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=60)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, p.stderr)
        assert "Traceback" not in p.stderr


# =========================================================================== tinygpt convert
class _RefGPT:
    """nanoGPT's model.py forward pass, written out from its state dict (the reference for the conversion)."""

    def __init__(self, sd, n_head):
        self.sd, self.H = sd, n_head

    def __call__(self, idx):
        import torch
        import torch.nn.functional as F

        sd, H = self.sd, self.H
        g = lambda k: sd.get(k)  # noqa: E731
        B, T = idx.shape
        x = g("transformer.wte.weight")[idx] + g("transformer.wpe.weight")[:T]
        C = x.size(-1)
        i = 0
        while f"transformer.h.{i}.ln_1.weight" in sd:
            p = f"transformer.h.{i}."
            h = F.layer_norm(x, (C,), g(p + "ln_1.weight"), g(p + "ln_1.bias"), 1e-5)
            q, k, v = F.linear(h, g(p + "attn.c_attn.weight"), g(p + "attn.c_attn.bias")).split(C, dim=2)
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
            att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
            att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, C)
            x = x + F.linear(y, g(p + "attn.c_proj.weight"), g(p + "attn.c_proj.bias"))
            h = F.layer_norm(x, (C,), g(p + "ln_2.weight"), g(p + "ln_2.bias"), 1e-5)
            h = F.gelu(F.linear(h, g(p + "mlp.c_fc.weight"), g(p + "mlp.c_fc.bias")))
            x = x + F.linear(h, g(p + "mlp.c_proj.weight"), g(p + "mlp.c_proj.bias"))
            i += 1
        x = F.layer_norm(x, (C,), g("transformer.ln_f.weight"), g("transformer.ln_f.bias"), 1e-5)
        return x @ g("lm_head.weight").T


def nanogpt_checkpoint(tmp_path, chars, bias=True, L=2, H=4, C=32, T=24, prefix="_orig_mod.", seed=0, mask_buffer=True):
    import torch

    gen = torch.Generator().manual_seed(seed)
    V = len(chars)
    r = lambda *s: torch.randn(*s, generator=gen) * 0.2  # noqa: E731
    sd = {"transformer.wte.weight": r(V, C), "transformer.wpe.weight": r(T, C)}
    for i in range(L):
        p = f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            sd[p + ln + ".weight"] = 1 + r(C)
            if bias:
                sd[p + ln + ".bias"] = r(C)
        for name, shape in (("attn.c_attn", (3 * C, C)), ("attn.c_proj", (C, C)), ("mlp.c_fc", (4 * C, C)), ("mlp.c_proj", (C, 4 * C))):
            sd[p + name + ".weight"] = r(*shape)
            if bias:
                sd[p + name + ".bias"] = r(shape[0])
        if mask_buffer:
            sd[p + "attn.bias"] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    sd["transformer.ln_f.weight"] = 1 + r(C)
    if bias:
        sd["transformer.ln_f.bias"] = r(C)
    sd["lm_head.weight"] = sd["transformer.wte.weight"]  # tied, as in nanoGPT
    ckpt_obj = {
        "model": {prefix + k: v for k, v in sd.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]},
        "model_args": dict(n_layer=L, n_head=H, n_embd=C, block_size=T, bias=bias, vocab_size=V, dropout=0.2),
        "iter_num": 250, "best_val_loss": torch.tensor(1.4697), "config": {"dataset": "shakespeare_char", "batch_size": 64},
    }
    pt = tmp_path / "ckpt.pt"
    torch.save(ckpt_obj, pt)
    meta = tmp_path / "meta.pkl"
    meta.write_bytes(pickle.dumps({"vocab_size": V, "itos": dict(enumerate(chars)), "stoi": {c: i for i, c in enumerate(chars)}}))
    return pt, meta, _RefGPT({k: v for k, v in sd.items() if not k.endswith(".attn.bias")}, H)  # the mask buffer, not c_attn.bias


@pytest.mark.parametrize("bias", [True, False])
def test_convert_nanogpt_checkpoint_gives_the_same_logits(tmp_path, text, bias):
    import torch

    chars = sorted(set(text))
    pt, meta, ref = nanogpt_checkpoint(tmp_path, chars, bias=bias)
    models = tmp_path / "models"
    r = cli("convert", pt, "--name", "nano", "--meta", meta, "--models-dir", models)
    assert r.exit_code == 0, r.stderr
    assert "weights_only=True" in r.stdout and "plain data" in r.stdout and "wrote" in r.stdout
    loaded = ckpt.load_model(models / "nano")
    cfg = loaded.model.cfg
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.bias) == (2, 4, 32, 24, bias)
    assert (cfg.pos_encoding, cfg.ffn, cfg.norm, cfg.tie_weights) == ("learned", "gelu", "layernorm", True)
    assert loaded.tokenizer.chars == chars and loaded.doc["figures"]["step"] == 250
    idx = torch.randint(0, len(chars), (3, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ref(idx)
        got, _ = loaded.model(idx)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert not list(models.glob("nano/*.pt")) and not list(models.glob("nano/*.pkl"))  # nothing pickled is kept
    assert cli("generate", "nano", "--models-dir", models, "-n", "10", "--seed", "1").exit_code == 0
    # the same vocabulary rebuilt from the training text, as nanoGPT's prepare.py does
    corpus = tmp_path / "input.txt"
    corpus.write_text(text, encoding="utf-8")
    r = cli("convert", pt, "--name", "nano2", "--corpus", corpus, "--models-dir", models)
    assert r.exit_code == 0, r.stderr
    assert ckpt.load_model(models / "nano2").tokenizer.chars == chars
    assert_one_error(cli("convert", pt, "--name", "nano", "--meta", meta, "--models-dir", models), "already exists")


def test_a_converted_model_s_card_says_it_was_trained_elsewhere_and_how_it_was_made(tmp_path, text, monkeypatch):
    """A converted nanoGPT checkpoint's card said "Trained with: tinygpt convert ckpt.pt --name my nano": no --meta (which
    convert needs), the name unquoted, no --models-dir, and it trained nothing. Now it says the model was trained elsewhere
    and gives the command that made the folder, which, pasted in another folder, makes it again."""
    import shlex

    import torch
    from safetensors.torch import load_file

    pt, meta, _ = nanogpt_checkpoint(tmp_path, sorted(set(text)))
    corpus = tmp_path / "input.txt"
    corpus.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    models = Path("my models")  # (relative, as typed)
    for name, vocab in (("my nano", ["--meta", meta.name]), ("nano2", ["--corpus", corpus.name])):
        assert cli("convert", pt.name, "--name", name, *vocab, "--models-dir", models).exit_code == 0
        folder = tmp_path / models / name
        card = (folder / "README.md").read_text(encoding="utf-8")
        assert "trained elsewhere (nanoGPT ckpt.pt `ckpt.pt`), converted by tinygpt" in card, card
        assert "Trained with" not in card and "None" not in card and "unknown" not in card, card
        command = card.split("Made into this folder with:\n\n```\n")[1].split("\n")[0]
        weights = load_file(folder / "model.safetensors")
        shutil.rmtree(folder)
        monkeypatch.chdir(tmp_path.parent)  # (another folder)
        argv = shlex.split(command)
        assert argv[:2] == ["tinygpt", "convert"] and cli(*argv[1:]).exit_code == 0, command
        assert all(torch.equal(v, weights[k]) for k, v in load_file(folder / "model.safetensors").items())
        monkeypatch.chdir(tmp_path)
    assert "trained on **input** (" in card  # (--corpus: the text is known, and its eval line runs)
    eval_line = card.split("Check the validation loss: `")[1].split("`")[0]
    assert cli(*shlex.split(eval_line)[1:]).exit_code == 0, eval_line


def test_convert_s_try_it_line_runs_as_printed_where_it_wrote(tmp_path, text, monkeypatch):
    """`tinygpt convert ... --models-dir D` said `try it: tinygpt generate nano`, which looked in ./models, not D."""
    import shlex

    monkeypatch.chdir(tmp_path)  # (./models is not D)
    monkeypatch.delenv("TINYGPT_MODELS_DIR", raising=False)
    pt, meta, _ = nanogpt_checkpoint(tmp_path, sorted(set(text)))
    for models in (tmp_path / "my models", tmp_path / "models"):  # ./models: the line needs no --models-dir
        r = cli("convert", pt, "--name", "nano", "--meta", meta, "--models-dir", models)
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("try it: ")), None)
        assert r.exit_code == 0 and line is not None, r.output
        argv = shlex.split(line.removeprefix("try it: "))
        assert argv[:2] == ["tinygpt", "generate"], argv
        r = cli(*argv[1:], "-n", "5")
        assert r.exit_code == 0 and r.stdout.strip(), (line, r.output)
        assert ("--models-dir" in argv) == (models.name != "models"), argv


def test_convert_refuses_what_it_cannot_map(tmp_path, text):
    import torch

    chars = sorted(set(text))
    models = tmp_path / "models"
    pt, meta, _ = nanogpt_checkpoint(tmp_path, chars)
    marker = tmp_path / "PWNED"
    # a meta.pkl that would run code
    evil_meta = evil_pickle(tmp_path / "evil_meta.pkl", marker)
    assert_one_error(cli("convert", pt, "--name", "a", "--meta", evil_meta, "--models-dir", models), "plain-data")
    # vocabulary of the wrong size
    short = tmp_path / "short_meta.pkl"
    short.write_bytes(pickle.dumps({"itos": dict(enumerate(chars[:-1]))}))
    assert_one_error(cli("convert", pt, "--name", "a", "--meta", short, "--models-dir", models), "rows")
    # no vocabulary given
    assert_one_error(cli("convert", pt, "--name", "a", "--models-dir", models), "vocabulary")
    # a tensor that has no place in a nanoGPT GPT (another architecture): refused, not guessed
    obj = torch.load(pt, weights_only=True)
    obj["model"]["_orig_mod.transformer.h.0.attn.rotary.inv_freq"] = torch.ones(4)
    odd = tmp_path / "odd.pt"
    torch.save(obj, odd)
    assert_one_error(cli("convert", odd, "--name", "a", "--meta", meta, "--models-dir", models), "no place")
    # model_args that contradict the tensors
    obj = torch.load(pt, weights_only=True)
    obj["model_args"]["n_embd"] = 64
    bad = tmp_path / "bad.pt"
    torch.save(obj, bad)
    assert_one_error(cli("convert", bad, "--name", "a", "--meta", meta, "--models-dir", models), "n_embd")
    # a bare state dict needs --n-head
    bare = tmp_path / "bare.pt"
    torch.save(torch.load(pt, weights_only=True)["model"], bare)
    assert_one_error(cli("convert", bare, "--name", "a", "--meta", meta, "--models-dir", models), "--n-head")
    assert cli("convert", bare, "--name", "bare", "--meta", meta, "--n-head", "4", "--models-dir", models).exit_code == 0
    # not a torch file, a truncated one, a missing one
    junk = _write(tmp_path, "junk.pt", b"this is not a checkpoint")
    assert_one_error(cli("convert", junk, "--name", "a", "--meta", meta, "--models-dir", models), "junk.pt is not a PyTorch checkpoint")
    cut = _write(tmp_path, "cut.pt", pt.read_bytes()[:2000])
    assert_one_error(cli("convert", cut, "--name", "a", "--meta", meta, "--models-dir", models), "cut.pt")
    assert_one_error(cli("convert", tmp_path / "nope.pt", "--name", "a", "--meta", meta, "--models-dir", models), "no such")
    assert not marker.exists()
    assert not (models / "a" / ckpt.CONFIG).exists()


# =========================================================================== the kind of file behind a name
def finishes(fn, timeout=20.0):
    """Run fn in a thread and wait (at most timeout) for it to end: a read that blocks is a failure, not a hang."""
    import threading

    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001  (handed to the test)
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{fn} still running after {timeout} s"
    return out


SPECIAL = {
    "FIFO": lambda p: os.mkfifo(p),
    "char device": lambda p: os.symlink("/dev/zero", p),  # what a tarball can carry: a link to a device
    "random device": lambda p: os.symlink("/dev/urandom", p),
    "folder": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("kind", list(SPECIAL))
@pytest.mark.parametrize("name", [ckpt.CONFIG, ckpt.VOCAB, ckpt.WEIGHTS])
def test_a_file_that_is_not_a_regular_file_is_refused_by_kind(good, kind, name):
    folder = clone(good, "odd")
    (folder / name).unlink()
    SPECIAL[kind](folder / name)
    out = finishes(lambda: ckpt.load_model(folder))
    assert isinstance(out.get("error"), CheckpointError), out
    assert name in str(out["error"]) and "\n" not in str(out["error"])
    infos = finishes(lambda: ckpt.list_models(folder.parent))["value"]  # listing the folder neither hangs nor dies
    assert {i.name: i.ok for i in infos} == {"good": True, "odd": False}
    assert_one_error(finishes(lambda: cli("generate", folder, "--prompt", "x", "-n", "3"))["value"], name)


def test_a_training_state_or_metrics_of_the_wrong_kind_is_refused(tmp_path, small_corpus):
    from tinygpt_tui.engine.train import TrainConfig, train

    models = tmp_path / "models"
    cfg = dict(corpus=str(small_corpus), name="m", models_dir=str(models), preset="tiny", n_layer=1, n_embd=32, block_size=16,
               batch_size=4, max_steps=4, eval_interval=4, eval_iters=1, sample_chars=0, threads=1)
    list(train(TrainConfig(**cfg)))
    state = models / "m" / ckpt.STATE_TENSORS
    state.rename(tmp_path / "state")
    os.mkfifo(state)
    out = finishes(lambda: list(train(TrainConfig(**{**cfg, "max_steps": 8}, resume=True))))
    assert isinstance(out.get("error"), CheckpointError) and "FIFO" in str(out["error"]), out
    state.unlink()
    (tmp_path / "state").rename(state)
    metrics = models / "m" / ckpt.METRICS
    metrics.unlink()
    os.mkfifo(metrics)
    assert finishes(lambda: ckpt.read_metrics(models / "m"))["value"] == ([], 0)  # a follower sees nothing, and waits for nothing


def test_writes_never_follow_a_link_out_of_the_model_folder(tmp_path, small_corpus):
    """A folder (from a tarball, a shared directory) whose files are links to someone else's files."""
    from tinygpt_tui.engine.train import TrainConfig, train

    models = tmp_path / "models"
    cfg = dict(corpus=str(small_corpus), name="m", models_dir=str(models), preset="tiny", n_layer=1, n_embd=32, block_size=16,
               batch_size=4, max_steps=4, eval_interval=2, eval_iters=1, sample_chars=0, threads=1)
    victims = {}

    def victim(name):
        p = tmp_path / f"victim-{name}"
        p.write_text(f"precious {name}\n")
        victims[p] = p.read_bytes()
        return p

    folder = models / "m"
    for link in (ckpt.LOCK, ckpt.METRICS):  # a fresh run into a folder holding a link
        folder.mkdir(parents=True, exist_ok=True)
        (folder / link).symlink_to(victim(link))
        with pytest.raises(CheckpointError, match="symbolic link"):
            list(train(TrainConfig(**cfg)))
        (folder / link).unlink()
    list(train(TrainConfig(**cfg)))
    # a resumed run over a folder whose every file is now a link: each save replaces the link, never writes through it
    for name in (ckpt.CONFIG, ckpt.WEIGHTS, ckpt.VOCAB, ckpt.CARD, ckpt.STATE_TENSORS):
        target = victim(name)
        target.write_bytes((folder / name).read_bytes())
        victims[target] = target.read_bytes()
        (folder / name).unlink()
        (folder / name).symlink_to(target)
    events = list(train(TrainConfig(**{**cfg, "max_steps": 6}, resume=True)))
    assert events[-1].reason == "done" and not any((folder / n).is_symlink() for n in (ckpt.CONFIG, ckpt.WEIGHTS))
    # the model folder itself a link: refused for training
    (models / "elsewhere").symlink_to(folder)
    with pytest.raises(CheckpointError, match="symbolic link"):
        list(train(TrainConfig(**{**cfg, "name": "elsewhere", "max_steps": 8}, resume=True)))
    for p, before in victims.items():
        assert p.read_bytes() == before, p


def test_big_and_sparse_files_are_refused_before_they_are_read(tmp_path, good):
    import tracemalloc

    from tinygpt_tui.engine import files

    folder = clone(good, "sparse")
    for name in (ckpt.CONFIG, ckpt.VOCAB):
        with open(folder / name, "r+b") as f:
            f.truncate(3 * 1024**3)  # 3 GiB of holes
        with pytest.raises(CheckpointError, match="more than"):
            ckpt.load_model(folder)
        shutil.copy(good / name, folder / name)
    # text followed by holes, read with a corpus-sized limit: refused at the first NUL, not after reading it all
    path = tmp_path / "holes.txt"
    path.write_bytes(b"To be, or not to be.\n" * 4000)
    with open(path, "r+b") as f:
        f.truncate(2 * 1024**3)
    tracemalloc.start()
    with pytest.raises(CheckpointError, match="NUL"):
        files.read_text(path, "corpus", 4 * 1024**3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 1024**2, peak
    utf16 = tmp_path / "u16.txt"
    utf16.write_text("hello there\n" * 100, encoding="utf-16")
    with pytest.raises(CheckpointError, match="UTF-16.*iconv -f UTF-16"):
        files.read_text(utf16, "corpus", 1 << 20)
    # a metrics line that grows without ending is skipped once, not read again and again
    (folder / ckpt.METRICS).write_bytes(b'{"event": "step", "step": 1}\n' + b"x" * (3 * 1024**2))
    recs, offset = ckpt.read_metrics(folder)
    recs2, offset2 = ckpt.read_metrics(folder, offset)
    assert [r["step"] for r in recs] == [1] and recs2 == [] and offset2 == (folder / ckpt.METRICS).stat().st_size


WRONG_SECTIONS = {
    "figures a list": lambda d: d.update(figures=[1]),
    "corpus a string": lambda d: d.update(corpus="x"),
    "training a list": lambda d: d.update(training=[]),
    "versions a number": lambda d: d.update(versions=3),
    "name a number": lambda d: d.update(name=5),
    "step 400 digits": lambda d: d["figures"].update(step=10**400),
    "step negative": lambda d: d["figures"].update(step=-1),
    "val_loss a string": lambda d: d["figures"].update(val_loss="low"),
    "val_loss NaN": lambda d: d["figures"].update(val_loss=float("nan")),
    "training value a dict": lambda d: d.update(training={"seed": {"a": 1}}),
    "rope_base NaN": lambda d: d["model"].update(rope_base=float("nan")),
    "rope_base infinite": lambda d: d["model"].update(rope_base=float("inf")),
    "mlp_ratio infinite": lambda d: d["model"].update(mlp_ratio=float("inf")),
    "model a list": lambda d: d.update(model=[1]),
    "n_layer huge": lambda d: d["model"].update(n_layer=2**70),
}


@pytest.mark.parametrize("case", list(WRONG_SECTIONS))
def test_a_section_of_the_wrong_type_or_range_is_refused_with_one_line(good, case):
    folder = clone(good, "bad")
    edit_json(folder / ckpt.CONFIG, WRONG_SECTIONS[case])
    with pytest.raises(CheckpointError) as e:
        ckpt.load_model(folder)
    assert "config.json" in str(e.value) and "\n" not in str(e.value)
    info = ckpt.read_info(folder)
    assert not info.ok and info.error
    assert_one_error(cli("eval", "bad", "--models-dir", folder.parent, "--corpus", "x.txt"), "config.json")


@pytest.mark.parametrize("where", ["config.json extra field", "config.json step", "vocab.json", "config.json nested"])
def test_json_python_cannot_parse_breaks_that_folder_only(good, where):
    """A number past Python's 4,300-digit limit, or nesting past its recursion limit, is invalid JSON for that file."""
    folder, huge = clone(good, "bad"), "9" * 5000
    name = ckpt.VOCAB if where == "vocab.json" else ckpt.CONFIG
    raw = (folder / name).read_text()
    raw = {"config.json extra field": raw.replace("{", '{"x": ' + huge + ",", 1), "config.json step": raw.replace('"step": 0', '"step": ' + huge),
           "vocab.json": raw.replace('"chars": [', '"chars": [' + huge + ","), "config.json nested": "[" * 100_000 + "]" * 100_000}[where]
    (folder / name).write_text(raw)
    with pytest.raises(CheckpointError, match=f"{name} is not valid JSON"):
        ckpt.load_model(folder)
    r = cli("models", "--models-dir", folder.parent)
    assert r.exit_code == 0 and "Traceback" not in r.stdout + r.stderr, r.stderr
    infos = {i.name: i for i in ckpt.list_models(folder.parent)}
    assert infos["good"].ok and not infos["bad"].ok and "not valid JSON" in infos["bad"].error


def test_a_vocabulary_of_one_character_is_refused(tmp_path, good):
    folder = clone(good, "one")
    edit_json(folder / ckpt.VOCAB, lambda d: d.update(chars=["a"]))
    edit_json(folder / ckpt.CONFIG, lambda d: d["model"].update(vocab_size=1))
    with pytest.raises(CheckpointError, match="at least 2"):
        ckpt.load_model(folder)


def test_a_saved_training_state_that_lies_is_refused_with_one_line(tmp_path, small_corpus):
    import torch
    from safetensors.torch import load_file, save_file

    from tinygpt_tui.engine.train import TrainConfig, train
    from tinygpt_tui.errors import TinyGPTError

    models = tmp_path / "models"
    cfg = dict(corpus=str(small_corpus), name="m", models_dir=str(models), preset="tiny", n_layer=1, n_embd=32, block_size=16,
               batch_size=4, max_steps=4, eval_interval=4, eval_iters=1, sample_chars=0, threads=1)
    list(train(TrainConfig(**cfg)))
    folder = models / "m"
    path = folder / ckpt.STATE_TENSORS
    tensors, meta = load_file(str(path)), ckpt.load_train_state(folder)[1]
    good_config = (folder / ckpt.CONFIG).read_text()
    lies = {
        "seed 2**70": ({}, {"seed": 2**70}, None),
        "elapsed not a number": ({}, {"elapsed_s": "an hour"}, None),
        "elapsed infinite": ({}, {"elapsed_s": float("inf")}, None),
        "tensor without its parts": ({"opt.x": tensors["model.tok_emb.weight"].clone()}, {}, None),
        "optimizer entry without its parts": ({}, {"scalars": {"step": 1}}, None),
        "saved seed 2**70": ({}, {}, lambda d: d["training"].update(seed=2**70)),
        "saved batch 10**9": ({}, {}, lambda d: d["training"].update(batch_size=10**9)),
        "a moment of the wrong shape": ({k: torch.zeros(7, 7) for k in tensors if k.startswith("opt.")}, {}, None),
        "a moment of no parameter": ({"opt.999.exp_avg": torch.zeros(3)}, {}, None),
        "NaN weights": ({"model.tok_emb.weight": tensors["model.tok_emb.weight"] * float("nan")}, {}, None),
    }
    for what, (extra, meta_update, doc_edit) in lies.items():
        save_file({**tensors, **extra}, str(path), metadata={"meta": json.dumps({**meta, **meta_update})})
        (folder / ckpt.CONFIG).write_text(good_config)
        if doc_edit:
            edit_json(folder / ckpt.CONFIG, doc_edit)
        with pytest.raises(TinyGPTError) as e:
            list(train(TrainConfig(**{**cfg, "max_steps": 8}, resume=True)))
            pytest.fail(what)
        assert "\n" not in str(e.value), what
    save_file(tensors, str(path), metadata={"meta": json.dumps(meta)})
    (folder / ckpt.CONFIG).write_text(good_config)
    assert list(train(TrainConfig(**{**cfg, "max_steps": 6}, resume=True)))[-1].reason == "done"


@pytest.mark.parametrize("meta, needle", [({"step": 10**30}, "step is '1000"), ({"step": -5}, "step is '-5'"),
                                           ({"step": 3, "seed": 2**70}, "seed is '1180")])
def test_a_value_out_of_range_is_named_with_its_range(good, meta, needle):
    """Not "no step" or "out of place": what the value is, and what it may be."""
    from tinygpt_tui.engine.files import validate_train_state

    with pytest.raises(CheckpointError, match="from 0 to 2\\*\\*62") as e:
        validate_train_state(meta, [])
    assert needle in str(e.value)
    edit_json(good / ckpt.CONFIG, lambda d: d.setdefault("training", {}).update(seed=2**70))
    assert "2**62" in ckpt.read_info(good).error and "training.seed is" in ckpt.read_info(good).error


def test_metrics_records_that_lie_are_left_out(tmp_path):
    lines = [{"event": "step", "step": 1, "loss": 2.0}, {"event": "step", "step": 10**400, "loss": 1.0},
             {"event": "step", "step": 2, "loss": float("nan")}, {"event": 5}, [1, 2], {"step": 3},
             {"event": "step", "step": 4, "loss": 1.5, "eta_s": float("inf")}]
    (tmp_path / ckpt.METRICS).write_text("".join(json.dumps(r) + "\n" for r in lines))
    records, _ = ckpt.read_metrics(tmp_path)
    assert [r["step"] for r in records] == [1, 4]


def test_compare_reads_a_log_longer_than_one_read_to_its_end(good):
    """A long run's metrics.jsonl past 64 MB (metrics.MAX_READ, one read's share): `tinygpt compare` drew its first
    64 MB alone, the chart ending early without its final point, and said nothing."""
    pad = "x" * (512 * 1024)  # (records of half a megabyte: the log passes 64 MB in a few lines)
    records = [{"event": "start", "step": 0, "max_steps": 20, "tokens_per_step": 64},
               {"event": "eval", "step": 10, "train_loss": 3.0, "val_loss": 3.1, "best_val_loss": 3.1},
               *[{"event": "note", "step": 10, "text": pad}] * 140,
               {"event": "eval", "step": 20, "train_loss": 2.0, "val_loss": 2.1, "best_val_loss": 2.1},
               {"event": "finish", "step": 20, "reason": "done", "val_loss": 2.05, "best_val_loss": 2.1}]
    (good / ckpt.METRICS).write_text("".join(json.dumps(r) + "\n" for r in records))
    assert (good / ckpt.METRICS).stat().st_size > 70 * 2**20
    r = cli("compare", good)
    assert r.exit_code == 0, r.output
    assert "final val (whole split)" in r.stdout, r.stdout[-2000:]


def test_a_model_too_big_for_the_machine_is_refused_before_it_is_built(tmp_path, small_corpus, monkeypatch):
    from tinygpt_tui import model as model_mod
    from tinygpt_tui.engine.train import TrainConfig, train
    from tinygpt_tui.errors import SettingsError

    built = []
    monkeypatch.setattr(model_mod.GPT, "__init__", lambda self, *a, **kw: built.append(a))
    base = dict(corpus=str(small_corpus), name="big", models_dir=str(tmp_path), preset="tiny", max_steps=2, threads=1)
    with pytest.raises(SettingsError, match=r"GB.*fit") as e:
        list(train(TrainConfig(**base, n_layer=256, n_embd=16384, n_head=128, block_size=64)))
    assert "\n" not in str(e.value) and not built
    with pytest.raises(SettingsError, match="batch"):
        list(train(TrainConfig(**base, batch_size=10**9)))
    with pytest.raises(SettingsError, match="seed"):
        list(train(TrainConfig(**base, seed=2**70)))
    assert not built and not (tmp_path / "big" / ckpt.CONFIG).exists()


@pytest.mark.parametrize("which", ["ckpt.pt", "meta.pkl"])
@pytest.mark.parametrize("kind", ["fifo", "zero", "folder"])
def test_convert_reads_only_regular_files(tmp_path, which, kind):
    """A ckpt.pt or meta.pkl that is a FIFO, /dev/zero or a folder: one error line at once, not a hang or a flood."""
    pt, meta, _ = nanogpt_checkpoint(tmp_path, list("abcdefgh"))
    bad = pt if which == "ckpt.pt" else meta
    bad.unlink()
    if kind == "fifo":
        os.mkfifo(bad)
    elif kind == "zero":
        bad.symlink_to("/dev/zero")
    else:
        bad.mkdir()
    done = finishes(lambda: cli("convert", pt, "--name", "x", "--meta", meta, "--models-dir", tmp_path / "models"))
    assert "value" in done, done
    assert_one_error(done["value"], which, "not a regular file")
    assert not (tmp_path / "models" / "x" / ckpt.CONFIG).exists()


@pytest.mark.parametrize("kind", list(SPECIAL))
@pytest.mark.parametrize("command", [["eval"], ["generate", "-n", "3", "--prompt", "x"], ["inspect", "--heads"]])
def test_every_command_reads_a_corpus_only_if_it_is_a_regular_file(good, tmp_path, kind, command):
    """--corpus that is a FIFO, a device or a folder: one error line at once (it used to hang or read /dev/zero forever)."""
    corpus = tmp_path / "odd.txt"
    SPECIAL[kind](corpus)
    done = finishes(lambda: cli(command[0], good.name, *command[1:], "--corpus", corpus, "--models-dir", good.parent))
    assert "value" in done, done
    assert_one_error(done["value"], "corpus is a", "not a")


@pytest.mark.parametrize("kind", list(SPECIAL))
@pytest.mark.parametrize("command", [["train"], ["corpus", "prepare"]])
def test_a_corpus_to_train_on_is_refused_by_kind_when_it_is_not_a_file(tmp_path, kind, command):
    """`tinygpt train /dev/zero` said "corpus is empty" (a device has no size) and a FIFO waited for a writer."""
    corpus = tmp_path / "odd.txt"
    SPECIAL[kind](corpus)
    extra = ["--name", "x", "--max-steps", "1", "--models-dir", tmp_path / "models"] if command == ["train"] else []
    done = finishes(lambda: cli(*command, corpus, *extra))
    assert "value" in done, done
    assert_one_error(done["value"], "corpus is a", "not a")
    assert not (tmp_path / "models").exists()
