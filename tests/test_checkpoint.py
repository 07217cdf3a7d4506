"""The model folder: safe to load from a stranger, always consistent, listed without torch."""

import json
import subprocess
import sys

import pytest
import torch

from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.engine.metrics import append_metrics
from tinygpt_tui.errors import CheckpointError

from tests.conftest import make_tiny_model


@pytest.fixture
def folder(tmp_path, small_corpus):
    f = tmp_path / "m"
    model, tok = make_tiny_model(f, small_corpus.read_text(encoding="utf-8"))
    return f, model, tok


def test_save_and_load_round_trip(folder):
    f, model, tok = folder
    loaded = ckpt.load_model(f)
    assert loaded.tokenizer.chars == tok.chars
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert {p.name for p in f.iterdir()} >= {"config.json", "model.safetensors", "vocab.json", "README.md"}
    assert not list(f.glob("*.tmp")) and not list(f.glob(".*tmp"))


def test_listing_does_not_import_torch(tiny_models_dir):
    code = (
        "import sys; from tinygpt_tui.engine.folder import list_models;"
        f"infos = list_models({str(tiny_models_dir)!r});"
        "print([(i.name, i.ok) for i in infos]); assert 'torch' not in sys.modules;"
        "assert 'numpy' not in sys.modules, 'numpy'"  # the app lists the folder before its first frame
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "('alpha', True)" in out and "('broken', False)" in out


def test_header_reader_agrees_with_safetensors(tmp_path):
    """The folder checks read the safetensors header themselves; the package agrees on what it says."""
    import struct

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(3, 5), "b": torch.ones(7, dtype=torch.bfloat16), "c": torch.zeros(0, 4), "d": torch.arange(6).view(2, 3)},
              str(path), metadata={"step": "12"})
    tensors, meta = ckpt.read_safetensors_header(path)
    with safe_open(str(path), framework="pt") as f:
        want = {k: (str(f.get_slice(k).get_dtype()), tuple(f.get_slice(k).get_shape())) for k in f.keys()}
        assert meta == f.metadata() == {"step": "12"}
    assert tensors == want and tensors["b"] == ("BF16", (7,)) and tensors["d"][0] == "I64"

    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])

    def write(doc, data_len=None):
        h = json.dumps(doc).encode()
        data = raw[8 + n:] if data_len is None else b"\0" * data_len
        path.write_bytes(struct.pack("<Q", len(h)) + h + data)

    def refused(match):
        with pytest.raises(CheckpointError, match=match):
            ckpt.read_safetensors_header(path)

    write({**header, "a": {**header["a"], "data_offsets": [0, 10**12]}})
    refused("offsets outside")
    write({**header, "a": {**header["a"], "shape": [3, 6]}})
    refused("bytes for a F32 tensor")
    write({**header, "a": {**header["a"], "dtype": "F33"}})
    refused("unknown dtype")
    write({**header, "a": {**header["a"], "shape": [3, -5]}})
    refused("bad shape")
    write(header, data_len=len(raw) - 8 - n + 4)
    refused("do not cover")
    b = header["b"]["data_offsets"]
    write({**header, "b": {**header["b"], "data_offsets": [b[0] - 2, b[1] - 2]}})
    refused("overlap or leave gaps")
    write({**header, "__metadata__": {"step": 12}})
    refused("metadata")
    write({**header, "__metadata__": []})
    refused("metadata")
    write({**header, "a": {**header["a"], "dtype": ["F32"]}})  # not a string: refused, not a TypeError
    refused("unknown dtype")
    path.write_bytes(struct.pack("<Q", 40_000) + b"[" * 20_000 + b"]" * 20_000)  # deeper than json can go
    refused("not JSON")
    path.write_bytes(struct.pack("<Q", 5) + b"[1,2]")
    refused("not a JSON object")
    path.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{}")
    refused("not JSON")
    path.write_bytes(b"\x01\x02")
    refused("8-byte")
    path.write_bytes(struct.pack("<Q", 2**63) + b"{}")
    refused("past the end")
    path.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        ckpt.read_safetensors_header(path)


def test_a_missing_or_unreadable_models_folder_lists_nothing(tmp_path):
    (tmp_path / "a-file").write_text("x")
    assert ckpt.list_models(tmp_path / "nowhere") == [] and ckpt.list_models(tmp_path / "a-file") == []


def test_broken_folder_reports_why(tiny_models_dir):
    infos = {i.name: i for i in ckpt.list_models(tiny_models_dir)}
    assert infos["alpha"].ok and infos["alpha"].params > 0
    assert not infos["broken"].ok and "JSON" in infos["broken"].error


@pytest.mark.parametrize(
    "damage,msg",
    [
        (lambda f: (f / "model.safetensors").unlink(), "missing"),
        (lambda f: (f / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage"), "safetensors"),
        (lambda f: (f / "vocab.json").write_text('{"type": "char", "chars": ["a", "b"]}'), "vocab_size"),
        (lambda f: (f / "config.json").write_text('{"model": {"n_embd": "big"}}'), "config.json"),
        (lambda f: (f / "config.json").write_text("[1, 2"), "JSON"),
        (lambda f: f.rename(f.with_name("moved")), "no model folder at .*: moved or deleted"),  # (picked, then moved away)
    ],
)
def test_damaged_folders_fail_with_one_line(folder, damage, msg):
    f, _, _ = folder
    damage(f)
    with pytest.raises(CheckpointError, match=msg) as e:
        ckpt.load_model(f)
    assert "\n" not in str(e.value)


def test_shape_mismatch_is_caught_before_loading(folder):
    f, _, _ = folder
    doc = json.loads((f / "config.json").read_text())
    doc["model"]["n_embd"] = 64
    (f / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="shape"):
        ckpt.check_folder(f)


def test_absurd_config_is_refused_without_allocating(folder):
    f, _, _ = folder
    doc = json.loads((f / "config.json").read_text())
    doc["model"].update(n_embd=16384, n_layer=256, n_head=16)
    (f / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError):
        ckpt.load_model(f)  # the shapes disagree with the small weights file long before any allocation


def test_pickle_checkpoints_are_never_loaded(tmp_path):
    f = tmp_path / "stranger"
    f.mkdir()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    (f / "ckpt.pt").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="pickle"):
        ckpt.load_model(f)
    assert not marker.exists()


def test_interrupted_save_leaves_previous_checkpoint(folder, monkeypatch):
    f, model, tok = folder
    before = (f / "model.safetensors").read_bytes()
    doc = json.loads((f / "config.json").read_text())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    real_replace = ckpt.os.replace

    def crash(src, dst):
        if str(dst).endswith("model.safetensors"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(CheckpointError, match="No space left"):
        ckpt.save_model(f, model, tok, doc)
    assert (f / "model.safetensors").read_bytes() == before
    assert not [p for p in f.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    ckpt.load_model(f)


def test_metrics_follow_skips_partial_lines(tmp_path):
    append_metrics(tmp_path, [{"event": "step", "step": 1}])
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"event": "step", "st')
    recs, off = ckpt.read_metrics(tmp_path)
    assert [r["step"] for r in recs] == [1]
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('ep": 2}\n')
    recs, off = ckpt.read_metrics(tmp_path, off)
    assert [r["step"] for r in recs] == [2]


def test_loading_and_generating_stay_off_torch_compile_machinery(tmp_path):
    """torch._dynamo takes seconds to import on a small CPU; nothing between `tinygpt generate` starting
    and its first character may pull it in (it once came in through building the model on the meta device)."""
    folder = tmp_path / "m"
    make_tiny_model(folder, "hello world, hello tinygpt\n" * 20)
    code = (
        "import sys\n"
        "from tinygpt_tui.engine import folder as ckpt\n"
        "from tinygpt_tui.sampler import Generation, SamplingSettings\n"
        f"m = ckpt.load_model({str(folder)!r})\n"
        "print(''.join(Generation(m.model, m.tokenizer, 'hello', SamplingSettings(max_new_tokens=5, seed=0))))\n"
        "print(sorted(k for k in sys.modules if k.startswith('torch._dynamo'))[:3])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines()[-1] == "[]", r.stdout


def test_a_run_before_its_first_checkpoint_lists_as_training_then_as_no_checkpoint_yet(tmp_path, small_corpus):
    """Issue 16: not "broken: config.json is missing" while a run trains, nor after it died before saving."""
    from tinygpt_tui.engine.train import TrainConfig, train

    run = train(TrainConfig(corpus=str(small_corpus), name="fresh", models_dir=str(tmp_path), preset="tiny", block_size=32,
                            max_steps=1000, eval_interval=1000, threads=1))
    assert next(run).kind == "start"  # the lock is held, nothing saved yet
    (info,) = ckpt.list_models(tmp_path)
    assert (info.ok, info.status, info.error) == (False, ckpt.TRAINING, ckpt.TRAINING)
    with pytest.raises(CheckpointError, match="being trained"):
        ckpt.remove_dead_run(tmp_path / "fresh")
    run.close()  # the run ends without a checkpoint, as a killed one would (the kernel drops a dead process's lock)
    (info,) = ckpt.list_models(tmp_path)
    assert (info.ok, info.status, info.error) == (False, ckpt.NO_CHECKPOINT, ckpt.NO_CHECKPOINT)
    assert ckpt.is_dead_run(tmp_path / "fresh")
    ckpt.remove_dead_run(tmp_path / "fresh")
    assert ckpt.list_models(tmp_path) == [] and not (tmp_path / "fresh").exists()


def test_only_a_dead_runs_own_files_are_deleted(tmp_path, folder):
    f, _, _ = folder
    lock = ckpt.FolderLock(f)  # a checkpoint being trained further: it loads, and says so
    (info,) = ckpt.list_models(f.parent)
    assert info.ok and info.status == ckpt.TRAINING
    lock.release()
    assert ckpt.list_models(f.parent)[0].status == "ready"
    with pytest.raises(CheckpointError, match="more than a dead run"):
        ckpt.remove_dead_run(f)
    assert ckpt.load_model(f).doc
    # a stranger's file among the run files: broken, kept
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / ckpt.METRICS).write_text("")
    (odd / "notes.txt").write_text("mine")
    assert ckpt.list_models(tmp_path)[1].status == "broken"
    with pytest.raises(CheckpointError):
        ckpt.remove_dead_run(odd)
    assert (odd / "notes.txt").read_text() == "mine"
    # a link among the run files is removed, never followed
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    dead = tmp_path / "dead"
    dead.mkdir()
    (dead / ckpt.METRICS).symlink_to(outside)
    (dead / ".config.json.abc.tmp").write_text("half")
    assert ckpt.is_dead_run(dead)
    ckpt.remove_dead_run(dead)
    assert not dead.exists() and outside.read_text() == "keep me"


def test_a_file_that_cannot_be_opened_is_named_with_its_path(tmp_path):
    """"cannot open metrics.jsonl: Read-only file system" named no folder (a run writing into a read-only mount)."""
    (tmp_path / "run").write_text("a file where the run's folder should be")
    with pytest.raises(CheckpointError, match="cannot open metrics.jsonl: Not a directory") as e:
        append_metrics(tmp_path / "run", [{"event": "step", "step": 1}])
    assert str(tmp_path / "run" / "metrics.jsonl") in str(e.value)
