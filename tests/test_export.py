"""`tinygpt export` (transformers, GGUF) and `tinygpt import` (a Hugging Face GPT-2 folder).

The figures of issue 20, on small models made here with weights drawn wide (std 0.2, so the
logits spread and greedy text varies): for every exportable combination, transformers' logits
equal tinygpt's on 1,000 positions within 1e-4 (fp32) and greedy generation of 200 characters is
identical; a GGUF file reads back with gguf's reader tensor for tensor; an export imported back
gives the same logits. Needs the export extra (transformers, tokenizers, gguf), which the test
extra installs; only the llama.cpp test skips where llama-cpp-python is not installed (it builds
from source, too long for the machines the suite runs on).
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_tiny_model
from tinygpt_tui.config import sinusoidal_table

GPT2 = dict(pos_encoding="learned", ffn="gelu", norm="layernorm")
NEOX = dict(pos_encoding="rope", ffn="gelu", norm="layernorm")  # the shipped models' shape
LLAMA = dict(pos_encoding="rope", ffn="swiglu", norm="rmsnorm")
COMBOS = {  # every exportable combination, with and without biases, tied and untied output
    "gpt2": dict(GPT2),
    "gpt2-bias-untied": dict(GPT2, bias=True, tie_weights=False),
    # fixed positions (the sinusoidal table) or none: GPT-2's position table holds them, and they were refused
    "gpt2-sinusoidal": dict(GPT2, pos_encoding="sinusoidal", bias=True, tie_weights=False),
    "gpt2-nope": dict(GPT2, pos_encoding="none"),
    "neox": dict(NEOX, rope_base=500.0),
    "neox-bias-untied": dict(NEOX, bias=True, tie_weights=False),
    "llama": dict(LLAMA, rope_base=500.0),
    "llama-bias-untied": dict(LLAMA, bias=True, tie_weights=False),
}
PROMPT, NEW = "ROMEO:\nWhat light ", 200
HF_CLASS = {"gpt2": "GPT2LMHeadModel", "neox": "GPTNeoXForCausalLM", "llama": "LlamaForCausalLM"}


def cli(*args):
    """The export commands through typer's CliRunner, in an app of their own (as main.py registers them)."""
    import typer
    from typer.testing import CliRunner

    from tinygpt_tui.cli.common import Group
    from tinygpt_tui.cli.export import register

    app = typer.Typer(cls=Group, pretty_exceptions_enable=False)
    register(app)
    r = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


def assert_one_line_error(r, *needles):
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def sharp_model(folder: Path, text: str, **kw):
    """make_tiny_model with weights drawn wide, saved again: logits far apart, varied greedy text."""
    from tinygpt_tui.engine import folder as ckpt

    model, tok = make_tiny_model(folder, text, block_size=256, n_layer=2, **kw)
    torch.manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    ckpt.save_model(folder, model, tok, json.loads((folder / "config.json").read_text(encoding="utf-8")))
    return model.eval(), tok


def greedy(model, ids: list[int], n: int) -> list[int]:
    """tinygpt's argmax loop: the prompt, then one token per call through the KV cache, each time
    the likeliest next id (prompt and text stay inside the window: no restart, no sliding)."""
    cache, out = model.new_cache(), []
    x = torch.tensor([ids])
    with torch.no_grad():
        for _ in range(n):
            x = model(x, cache=cache)[0][:, -1].argmax(-1, keepdim=True)
            out.append(x.item())
    return out


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Models this small run faster on one thread (a second costs more in hand-offs than it
    computes, the more so on a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def text(small_corpus) -> str:
    return small_corpus.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def models(tmp_path_factory, text):
    d = tmp_path_factory.mktemp("export-models")
    return d, {name: sharp_model(d / name, text, **kw) for name, kw in COMBOS.items()}


@pytest.mark.parametrize("combo", COMBOS)
def test_transformers_logits_and_greedy_text_equal_tinygpt(models, text, tmp_path, combo):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d, made = models
    model, tok = made[combo]
    r = cli("export", combo, tmp_path / "hf", "--to", "hf", "--models-dir", d)
    assert r.exit_code == 0, r.stderr
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert type(hf).__name__ == HF_CLASS[combo.split("-")[0]]
    assert sorted(p.name for p in (tmp_path / "hf").glob("*.safetensors")) == ["model.safetensors"]

    # 1,000 positions: four windows of 250 characters
    chunks = [text[i * 5000 : i * 5000 + 250] for i in range(4)]
    ids = torch.tensor([hf_tok(c)["input_ids"] for c in chunks])
    assert ids.tolist() == [tok.encode(c).ids for c in chunks]
    with torch.no_grad():
        ours, theirs = model(ids)[0], hf(ids).logits
    assert ours.shape == theirs.shape == (4, 250, tok.vocab_size)
    assert ours.std() > 1.0  # logits spread far apart: the comparison means something
    assert (ours - theirs).abs().max() < 1e-4

    prompt = tok.encode(PROMPT).ids
    want = greedy(model, prompt, NEW)
    out = hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                      max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, pad_token_id=0)
    got = out[0, len(prompt):].tolist()
    assert got == want
    assert hf_tok.decode(got) == tok.decode(want) and len(set(want)) > 2  # (not one character over and over)


@pytest.mark.parametrize("kw", [dict(NEOX), dict(NEOX, bias=True, tie_weights=False)], ids=["tied", "bias-untied"])
def test_a_bpe_neox_model_gives_transformers_tinygpt_logits(text, tmp_path, kw):
    """The shipped models' shape with subword tokens: the same ids from the copied tokenizer.json,
    the same logits (4 heads, so NeoX's per-head qkv order is not the identity)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tinygpt_tui.tokenizer import BpeTokenizer

    model, tok = sharp_model(tmp_path / "models" / "bee", text, tokenizer=BpeTokenizer.train(text, 300), n_head=4, **kw)
    r = cli("export", "bee", tmp_path / "hf", "--to", "hf", "--models-dir", tmp_path / "models")
    assert r.exit_code == 0 and "GPT-NeoX" in r.stdout, (r.stdout, r.stderr)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = AutoTokenizer.from_pretrained(tmp_path / "hf")(text[:2000])["input_ids"][:256]
    assert ids == tok.encode(text[:2000]).ids[:256] and len(ids) == 256
    with torch.no_grad():
        ours, theirs = model(torch.tensor([ids]))[0], hf(torch.tensor([ids])).logits
    assert ours.std() > 1.0 and (ours - theirs).abs().max() < 1e-4


def test_tokenizer_ids_equal_tinygpt_and_decode_gives_the_text_back(models, tmp_path):
    from transformers import AutoTokenizer

    d, made = models
    _, tok = made["gpt2"]
    assert cli("export", "gpt2", tmp_path / "hf", "--to", "hf", "--models-dir", d).exit_code == 0
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    sample = "  Two  spaces, then\n\nnewlines\tand a tab; 'quotes' and ~ unknown é characters.\n"
    ids = hf_tok(sample)["input_ids"]
    assert ids == tok.encode(sample).ids  # characters outside the vocabulary dropped, as tinygpt does
    assert hf_tok.decode(ids) == tok.decode(ids)
    known = "".join(c for c in sample if c in tok.stoi)
    assert hf_tok.decode(ids) == known and "\n\n" in known and "  " in known


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_a_gpt2_export_keeps_the_models_dropout(text, tmp_path, dropout):
    """GPT-2's config defaults to dropout 0.1 in three places; tinygpt's model has its own (mostly none),
    and a fine-tune of the export in transformers trains with it."""
    from transformers import AutoModelForCausalLM

    model, tok = make_tiny_model(tmp_path / "models" / "m", text, dropout=dropout, **GPT2)
    assert cli("export", "m", tmp_path / "hf", "--to", "hf", "--models-dir", tmp_path / "models").exit_code == 0
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert (hf.config.resid_pdrop, hf.config.embd_pdrop, hf.config.attn_pdrop) == (dropout,) * 3
    ids = torch.tensor([tok.encode(text[: model.cfg.block_size]).ids])
    with torch.no_grad():
        torch.manual_seed(0)
        trained = hf.train()(ids).logits
        assert torch.equal(trained, hf.eval()(ids).logits) == (dropout == 0.0)  # in training mode, as tinygpt's


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_a_neox_export_keeps_the_models_dropout(text, tmp_path, dropout):
    """As GPT-2's: NeoX drops out where tinygpt does (embeddings, attention, each block's outputs), and the
    export said 0.0 whatever the model trained with."""
    from transformers import AutoModelForCausalLM

    model, tok = make_tiny_model(tmp_path / "models" / "m", text, dropout=dropout, **NEOX)
    assert cli("export", "m", tmp_path / "hf", "--to", "hf", "--models-dir", tmp_path / "models").exit_code == 0
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert (hf.config.hidden_dropout, hf.config.attention_dropout) == (dropout,) * 2
    ids = torch.tensor([tok.encode(text[: model.cfg.block_size]).ids])
    with torch.no_grad():
        torch.manual_seed(0)
        trained = hf.train()(ids).logits
        assert torch.equal(trained, hf.eval()(ids).logits) == (dropout == 0.0)  # in training mode, as tinygpt's


def test_refused_exports_are_one_line_and_leave_nothing(tmp_path, text, tiny_models_dir):
    make_tiny_model(tmp_path / "models" / "alibi", text, pos_encoding="alibi")
    make_tiny_model(tmp_path / "models" / "mixed", text, pos_encoding="learned", ffn="swiglu")
    make_tiny_model(tmp_path / "models" / "rms", text, **dict(NEOX, norm="rmsnorm"))  # NeoX but for its norm
    for name, why in (("alibi", "alibi/gelu/layernorm maps onto no stock model"), ("mixed", "learned/swiglu/layernorm"),
                      ("rms", "rope/gelu/rmsnorm maps onto no stock model")):
        for to, out in (("hf", tmp_path / "out"), ("gguf", tmp_path / "out.gguf")):
            assert_one_line_error(cli("export", name, out, "--to", to, "--models-dir", tmp_path / "models"), why)
    assert_one_line_error(cli("export", "broken", tmp_path / "out", "--to", "hf", "--models-dir", tiny_models_dir), "config.json")
    assert_one_line_error(cli("export", "nope", tmp_path / "out", "--to", "hf", "--models-dir", tiny_models_dir), "model not found")
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(cli("export", "alpha", tmp_path / "afile" / "out", "--to", "hf", "--models-dir", tiny_models_dir), "cannot write")
    assert_one_line_error(cli("export", "alpha", tmp_path / "no" / "such" / "out.gguf", "--to", "gguf", "--models-dir", tiny_models_dir))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "models"]


@pytest.mark.parametrize("to", ["hf", "gguf"])
def test_an_empty_output_is_refused_as_empty_not_as_the_current_folder(models, to):
    """`tinygpt export m '' --to gguf` said "CWD already exists; add --force" ('' as a path is '.')."""
    d, _ = models
    for force in ([], ["--force"]):
        assert_one_line_error(cli("export", "gpt2", "", "--to", to, *force, "--models-dir", d), "'out'", "is empty")


def test_an_hf_export_to_a_name_ending_in_gguf_is_written_with_a_note(models, tmp_path):
    """`--to hf` into x.gguf quietly made a folder named x.gguf (as asked: a note, not a refusal)."""
    d, _ = models
    r = cli("export", "gpt2", tmp_path / "x.gguf", "--to", "hf", "--models-dir", d)
    assert r.exit_code == 0 and (tmp_path / "x.gguf" / "config.json").is_file(), r.stderr
    notes = [ln for ln in r.stdout.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and "x.gguf is a folder" in notes[0] and "--to gguf" in notes[0], r.stdout
    r = cli("export", "gpt2", tmp_path / "x", "--to", "hf", "--models-dir", d)
    assert r.exit_code == 0 and "note:" not in r.stdout


def test_existing_output_needs_force_and_a_failed_write_leaves_it_whole(models, tmp_path, monkeypatch):
    from tinygpt_tui.engine import export

    d, _ = models
    out = tmp_path / "hf"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert_one_line_error(cli("export", "gpt2", out, "--to", "hf", "--models-dir", d), "already exists", "--force")
    # --force replaces an earlier export only: never a folder holding anything else, a link, a device
    assert_one_line_error(cli("export", "gpt2", out, "--to", "hf", "--force", "--models-dir", d), "not an earlier export")
    assert (out / "mine.txt").read_text() == "keep"
    (out / "mine.txt").unlink()
    assert cli("export", "gpt2", out, "--to", "hf", "--force", "--models-dir", d).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full_disk(chars):  # the weights are written by now; the tokenizer fails
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "char_tokenizer", full_disk)
    assert_one_line_error(cli("export", "gpt2", out, "--to", "hf", "--force", "--models-dir", d), "No space left")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"] and {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert_one_line_error(cli("export", "gpt2", tmp_path / "new", "--to", "hf", "--models-dir", d), "No space left")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # no half-written folder, no temporary one
    monkeypatch.undo()

    assert cli("export", "gpt2", out, "--to", "hf", "--force", "--models-dir", d).exit_code == 0  # an export replaces an export
    gguf, link = tmp_path / "m.gguf", tmp_path / "link.gguf"
    assert cli("export", "llama", gguf, "--to", "gguf", "--models-dir", d).exit_code == 0
    assert cli("export", "llama", gguf, "--to", "gguf", "--force", "--models-dir", d).exit_code == 0
    link.symlink_to(gguf)
    assert_one_line_error(cli("export", "llama", link, "--to", "gguf", "--force", "--models-dir", d), "not an earlier export")
    assert_one_line_error(cli("export", "llama", tmp_path, "--to", "gguf", "--force", "--models-dir", d), "not an earlier export")
    assert link.is_symlink() and gguf.read_bytes()[:4] == b"GGUF" and (out / "model.safetensors").is_file()
    mask = os.umask(0)
    os.umask(mask)  # every file readable as any new file is, the weights too (safetensors 0.8 made them 0600)
    assert {p.stat().st_mode & 0o777 for p in [*out.iterdir(), gguf]} == {0o666 & ~mask}


def test_an_export_given_as_a_model_says_it_is_a_hugging_face_folder(models, tmp_path):
    """An export written into the models folder (or any HF folder named to generate, eval, export) was
    'broken: config.json has no "model" section', which said nothing of what it is or what reads it."""
    from tinygpt_tui.engine import folder as ckpt
    from tinygpt_tui.errors import CheckpointError

    d, _ = models
    assert cli("export", "gpt2", tmp_path / "hf", "--to", "hf", "--models-dir", d).exit_code == 0
    with pytest.raises(CheckpointError, match=r"no \"model\" section: a Hugging Face folder \(model_type 'gpt2'\); "
                                              r"`tinygpt import` makes a model of a GPT-2 one"):
        ckpt.check_folder(tmp_path / "hf")
    assert_one_line_error(cli("export", tmp_path / "hf", tmp_path / "again", "--to", "hf"), "a Hugging Face folder")


def test_exported_files_follow_the_umask_as_any_new_file(models, tmp_path):
    """The mode given to what an export wrote (safetensors 0.8 writes 0600) is 0666 less the umask, whatever it is."""
    d, _ = models
    old = os.umask(0o027)
    try:
        assert cli("export", "gpt2", tmp_path / "hf", "--to", "hf", "--models-dir", d).exit_code == 0
    finally:
        os.umask(old)
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "hf").iterdir()} == {0o640}


def test_an_export_clears_what_a_killed_export_left_and_nothing_of_a_live_one(models, tmp_path):
    """kill -9 mid-export left its hidden temporary folder (a model's weights) beside the output for good."""
    import subprocess

    d, _ = models
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    killed, live, other = (tmp_path / f".hf.{gone}.x1.tmp", tmp_path / f".hf.{os.getpid()}.x2.tmp", tmp_path / f".hf2.{gone}.x3.tmp")
    dotted = tmp_path / f".hf.99999999.{os.getpid()}.x4.tmp"  # a live export's to "hf.99999999" (no pid 99999999 runs)
    for p in (killed, live, other, dotted):
        p.mkdir()
        (p / "model.safetensors").write_bytes(b"half")
    assert cli("export", "gpt2", tmp_path / "hf", "--to", "hf", "--models-dir", d).exit_code == 0
    assert not killed.exists()  # its process is gone
    assert (live / "model.safetensors").read_bytes() == b"half" and other.exists()  # a live export's; another output's
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["hf", live.name, other.name, dotted.name])


def test_an_output_of_a_long_legal_name_is_written_and_a_killed_export_s_leftover_cleared(models, tmp_path):
    """A 245-byte name (the limit is 255) failed "File name too long": the temporary folder's name beside it,
    .NAME.PID.RANDOM.tmp, held it whole. A 255-byte name of 3-byte characters is cut on a character."""
    import subprocess

    from tinygpt_tui.engine.export import temp_stem

    d, _ = models
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    names = {"gguf": "a" * 240 + ".gguf", "hf": "模" * 85}
    for to, name in names.items():
        killed = tmp_path / f".{temp_stem(name)}.{gone}.x1.tmp"
        killed.mkdir()
        r = cli("export", "gpt2", tmp_path / name, "--to", to, "--models-dir", d)
        assert r.exit_code == 0, r.stderr
        assert not killed.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names.values())
    assert (tmp_path / names["gguf"]).read_bytes()[:4] == b"GGUF" and (tmp_path / names["hf"] / "config.json").is_file()


@pytest.mark.parametrize("to,out", [("hf", "hf"), ("gguf", "m.gguf")])
def test_a_real_full_disk_is_one_line_and_keeps_the_earlier_export(models, tmp_path, to, out):
    """Writes past a file-size limit fail as a full disk would, inside safetensors (its own
    SafetensorError, not an OSError: a traceback) and numpy (an OSError without errno)."""
    import resource
    import signal
    import subprocess

    d, _ = models
    out = tmp_path / out
    assert cli("export", "gpt2", out, "--to", to, "--models-dir", d).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()} if out.is_dir() else out.read_bytes()

    def limit():  # in the child: a write past 20 kB fails with EFBIG instead of killing it with SIGXFSZ
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    r = subprocess.run([sys.executable, "-m", "tinygpt_tui.cli.main", "export", "gpt2", str(out), "--to", to, "--force",
                        "--models-dir", str(d)], capture_output=True, text=True, preexec_fn=limit, timeout=300)
    r.exit_code = r.returncode
    assert_one_line_error(r, f"cannot write {out}")
    assert (({p.name: p.read_bytes() for p in out.iterdir()} if out.is_dir() else out.read_bytes()) == before
            and [p.name for p in tmp_path.iterdir()] == [out.name])  # the earlier export whole, no temporary left


@pytest.mark.parametrize("module,to", [("transformers", "hf"), ("tokenizers", "hf"), ("gguf", "gguf")])
def test_without_the_extra_one_line_names_it(models, tmp_path, monkeypatch, module, to):
    import transformers

    d, _ = models
    # transformers imported whole first: imported while tokenizers is hidden, it remembers the package as missing for
    # the rest of the process, and a later test's AutoTokenizer fails to import ("None | None" in its annotations)
    assert transformers.AutoTokenizer
    monkeypatch.setitem(sys.modules, module, None)  # what an environment without the package imports
    assert_one_line_error(cli("export", "gpt2", tmp_path / "out", "--to", to, "--models-dir", d), 'pip install "tinygpt-tui[export]"')
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- GGUF
def interleave_halves(w: np.ndarray, n_head: int) -> np.ndarray:
    """The documented permutation of q and k rows for llama.cpp: in each head, row i of the first
    half and row i of the second half become rows 2i and 2i + 1 (halves -> adjacent pairs)."""
    D = w.shape[0] // n_head
    order = [h * D + half * D // 2 + i for h in range(n_head) for i in range(D // 2) for half in (0, 1)]
    return w[order]


def expected_gguf(model) -> dict[str, np.ndarray]:
    """llama.cpp's tensors, written out by hand: GPT-2's and GPT-NeoX's are tinygpt's (qkv rows [q; k; v]
    as llama.cpp's converter leaves NeoX's), Llama's q, k, v and gate, up split, q and k interleaved."""
    cfg = model.cfg
    s = {k: v.numpy() for k, v in model.state_dict().items()}
    llama = cfg.ffn == "swiglu"
    out = {"token_embd.weight": s["tok_emb.weight"], "output.weight": s["head.weight"],
           "output_norm.weight": s["norm.weight"]}
    if not llama:
        out["output_norm.bias"] = s["norm.bias"]
    if cfg.pos_encoding == "learned":
        out["position_embd.weight"] = s["pos_emb.weight"]
    elif cfg.pos_encoding == "sinusoidal":  # the fixed table
        out["position_embd.weight"] = np.array(sinusoidal_table(cfg.block_size, cfg.n_embd), dtype=np.float32)
    for i in range(cfg.n_layer):
        b, g = f"blocks.{i}.", f"blk.{i}."
        out.update({g + "attn_norm.weight": s[b + "norm1.weight"], g + "ffn_norm.weight": s[b + "norm2.weight"]})
        for kind in ("weight", "bias"):
            if llama:
                q, k, v = np.split(s[f"{b}attn.qkv.{kind}"], 3)
                gate, up = np.split(s[f"{b}ffn.up.{kind}"], 2)
                out.update({f"{g}attn_q.{kind}": interleave_halves(q, cfg.n_head), f"{g}attn_k.{kind}": interleave_halves(k, cfg.n_head),
                            f"{g}attn_v.{kind}": v, f"{g}ffn_gate.{kind}": gate, f"{g}ffn_up.{kind}": up})
            else:
                out.update({f"{g}attn_qkv.{kind}": s[f"{b}attn.qkv.{kind}"], f"{g}ffn_up.{kind}": s[f"{b}ffn.up.{kind}"],
                            f"{g}attn_norm.bias": s[b + "norm1.bias"], f"{g}ffn_norm.bias": s[b + "norm2.bias"]})
            out.update({f"{g}attn_output.{kind}": s[f"{b}attn.proj.{kind}"], f"{g}ffn_down.{kind}": s[f"{b}ffn.down.{kind}"]})
    return out


@pytest.mark.parametrize("combo", ["gpt2-bias-untied", "gpt2-sinusoidal", "neox-bias-untied", "llama-bias-untied"])
def test_gguf_reads_back_tensor_for_tensor(models, tmp_path, combo):
    import gguf

    d, made = models
    model, tok = made[combo]
    out = tmp_path / "m.gguf"
    r = cli("export", combo, out, "--to", "gguf", "--models-dir", d)
    assert r.exit_code == 0, r.stderr
    reader = gguf.GGUFReader(str(out))
    arch = {"gpt2": "gpt2", "neox": "gptneox", "llama": "llama"}[combo.split("-")[0]]
    assert reader.fields["general.architecture"].contents() == arch
    assert reader.fields[f"{arch}.context_length"].contents() == 256
    assert reader.fields[f"{arch}.block_count"].contents() == 2
    assert reader.fields[f"{arch}.attention.head_count"].contents() == 2
    if arch != "gpt2":
        assert reader.fields[f"{arch}.rope.freq_base"].contents() == 10000.0
        assert reader.fields[f"{arch}.rope.dimension_count"].contents() == 16  # every dim of a head
    if arch == "gptneox":  # one block after the other, as tinygpt's (NeoX's default is parallel)
        assert reader.fields["gptneox.use_parallel_residual"].contents() is False
        assert reader.fields["gptneox.attention.layer_norm_epsilon"].contents() == pytest.approx(1e-5)
    want = expected_gguf(model)
    got = {t.name: np.asarray(t.data) for t in reader.tensors}
    assert sorted(got) == sorted(want)
    for name, w in want.items():
        assert got[name].dtype == np.float32 and np.array_equal(got[name].reshape(w.shape), w), name


def bpe(symbols: list[str], merges: list[str]) -> list[str]:
    """Byte-pair encoding as llama.cpp's "gpt2" vocabulary runs it: repeatedly join the adjacent
    pair of lowest merge rank, until no pair has one."""
    ranks = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
    parts = list(symbols)
    while True:
        found = [(ranks[pair], i) for i, pair in enumerate(zip(parts, parts[1:])) if pair in ranks]
        if not found:
            return parts
        _, i = min(found)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


def test_gguf_vocabulary_reads_back_to_tinygpt_ids(tmp_path):
    """Each token is its character's UTF-8 bytes in the byte-level alphabet (decoded here by the
    tokenizers library), and the merges put every character together, never two: the whole
    text, run through BPE in one piece, gives tinygpt's ids."""
    import gguf
    from tokenizers import decoders, pre_tokenizers

    text = "Dream of the Red Chamber: 红楼梦, naïve café — ok!\n\n  end 🙂 红梦 éé\n"
    model, tok = make_tiny_model(tmp_path / "models" / "wide", text, **LLAMA)
    assert cli("export", "wide", tmp_path / "w.gguf", "--to", "gguf", "--models-dir", tmp_path / "models").exit_code == 0
    reader = gguf.GGUFReader(str(tmp_path / "w.gguf"))
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    assert reader.fields["tokenizer.ggml.model"].contents() == "gpt2" and len(tokens) == tok.vocab_size
    assert [decoders.ByteLevel().decode([t]) for t in tokens] == tok.chars
    [(symbols, _)] = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text)
    ids = {t: i for i, t in enumerate(tokens)}
    assert [ids[p] for p in bpe(list(symbols), reader.fields["tokenizer.ggml.merges"].contents())] == tok.encode(text).ids


def test_gguf_export_names_as_end_of_text_the_character_the_model_writes_least(tmp_path):
    """llama.cpp gives a "gpt2" vocabulary that names no end-of-text token id 11 for one: it stopped a generation at
    that character, and --ignore-eos banned it: ';' for the shipped Shakespeare, 'a' for a book in lower case. The
    file names the character the model writes least, a rare one in its book; a vocabulary of 11 characters or fewer
    has none, and none is named."""
    import collections
    import textwrap

    import gguf
    from tokenizers import decoders

    from conftest import ROOT, shakespeare_path

    r = cli("export", ROOT / "models" / "shakespeare", tmp_path / "s.gguf", "--to", "gguf")
    assert r.exit_code == 0, r.stderr
    fields = gguf.GGUFReader(str(tmp_path / "s.gguf")).fields
    eos = int(fields["tokenizer.ggml.eos_token_id"].contents())
    char = decoders.ByteLevel().decode([fields["tokenizer.ggml.tokens"].contents()[eos]])
    book = collections.Counter(shakespeare_path().read_text(encoding="utf-8"))
    assert book[char] < sum(book.values()) / 2000 and eos != 11, (char, book[char])  # (';' is 1 in 300)
    # why first (a newcomer read "llama.cpp takes '7' (id 11) for its end-of-text token" and wondered what for), in two lines at 80
    note = next(line for line in r.stdout.splitlines() if line.startswith("note: llama.cpp"))
    assert note.startswith("note: llama.cpp stops at an end-of-text token, which a character model lacks")
    assert note.endswith(f"{char!r} (id {eos}): --ignore-eos bans it") and len(textwrap.wrap(note, 79)) == 2, note
    assert "try it: llama-completion -m" in r.stdout and r.stdout.splitlines()[-1].endswith(" --ignore-eos")
    cli("export", ROOT / "models" / "shakespeare", tmp_path / "again.gguf", "--to", "gguf")  # (seeded: the same file)
    assert (tmp_path / "again.gguf").read_bytes()[-4096:] == (tmp_path / "s.gguf").read_bytes()[-4096:]
    assert int(gguf.GGUFReader(str(tmp_path / "again.gguf")).fields["tokenizer.ggml.eos_token_id"].contents()) == eos
    make_tiny_model(tmp_path / "models" / "few", "abc abc\n" * 400, **LLAMA)
    r = cli("export", "few", tmp_path / "f.gguf", "--to", "gguf", "--models-dir", tmp_path / "models")
    assert r.exit_code == 0 and "end-of-text" not in r.stdout and "--ignore-eos" not in r.stdout
    assert "tokenizer.ggml.eos_token_id" not in gguf.GGUFReader(str(tmp_path / "f.gguf")).fields
    r = cli("export", ROOT / "models" / "shakespeare", tmp_path / "hf", "--to", "hf")
    assert r.exit_code == 0 and "end-of-text" not in r.stdout  # transformers has no such default


def test_a_gguf_file_named_without_gguf_says_so(tmp_path):
    """`tinygpt export MODEL book-gguf --to gguf` wrote a file named without .gguf without a word (the hf
    export already notes a folder named like a .gguf file); a name ending in .gguf (any case) gets no note."""
    make_tiny_model(tmp_path / "models" / "m", "abc abc\n" * 400, **LLAMA)
    r = cli("export", "m", tmp_path / "book-gguf", "--to", "gguf", "--models-dir", tmp_path / "models")
    assert r.exit_code == 0 and (tmp_path / "book-gguf").read_bytes()[:4] == b"GGUF", r.stderr
    assert "note: book-gguf is a GGUF file, though its name does not end in .gguf" in r.stdout, r.stdout
    r = cli("export", "m", tmp_path / "book.GGUF", "--to", "gguf", "--models-dir", tmp_path / "models")
    assert r.exit_code == 0 and "note" not in r.stdout, r.stdout


DREAM = "林黛玉听了, 宝玉笑道: “好妹妹; 你说什么?” 罢了—罢了、好。\n" * 400


@pytest.mark.slow  # (three models exported and their commands checked: 22 s)
def test_try_it_lines_run_as_printed_with_the_text_inside_the_window(text, tmp_path):
    """The "try it" lines were `AutoModelForCausalLM.from_pretrained(...)` (no tokenizer, no text: no command)
    and `llama-completion ... -n 200` whatever the window: on the shipped models' 128 positions llama.cpp's
    GPT-2 aborts past the last (GGML_ASSERT in get_rows) and its RoPE goes on unlike tinygpt, and a Chinese model
    got no -p, which llama-completion refuses ("input is empty"). Each is now a command, with a prompt in the
    model's characters and prompt plus text inside the window."""
    models = tmp_path / "models"
    made = {"eng": (make_tiny_model(models / "eng", text, block_size=64, **GPT2)[1], "ROMEO:"),
            "dream": (make_tiny_model(models / "dream", DREAM, block_size=64, **NEOX)[1], "\n"),
            "short": (make_tiny_model(models / "short", text, block_size=4, **GPT2)[1], "\n")}  # ROMEO: overflows it
    for name, (tok, prompt) in made.items():
        out = tmp_path / f"{name}.gguf"
        r = cli("export", name, out, "--to", "gguf", "--models-dir", models)
        argv = shlex.split(r.stdout.splitlines()[-1].removeprefix("try it: "))
        assert argv[:3] == ["llama-completion", "-m", str(out)] and argv[3] == "-p" and argv[5] == "-n", argv
        assert argv[4].replace("\\n", "\n") == prompt  # (llama.cpp reads a prompt's escapes)
        used, window = len(tok.encode(prompt).ids), 4 if name == "short" else 64
        assert used + int(argv[6]) == window  # (the last position the text reaches is window - 1)
    for name, (tok, prompt) in made.items():
        out = tmp_path / f"{name} 模型"
        r = cli("export", name, out, "--to", "hf", "--models-dir", models)
        argv = shlex.split(r.stdout.splitlines()[-1].removeprefix("try it: "))
        assert argv[:2] == ["python", "-c"], argv
        # (as printed, in a process of its own: in this one a test may have hidden a package from transformers,
        # which remembers that)
        ran = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=300)
        assert ran.returncode == 0 and ran.stdout.startswith(prompt) and len(ran.stdout) > len(prompt) + 1, (ran.stdout, ran.stderr)


@pytest.mark.parametrize("combo", ["llama", "neox", "gpt2-sinusoidal"])
def test_llama_cpp_greedy_text_equals_tinygpt(models, tmp_path, combo):
    """llama.cpp itself, where llama-cpp-python is installed (it builds from source: not on every
    machine that runs the suite; this is the one test of the file that may skip)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    d, made = models
    model, tok = made[combo]
    assert cli("export", combo, tmp_path / "m.gguf", "--to", "gguf", "--models-dir", d).exit_code == 0
    llm = llama_cpp.Llama(model_path=str(tmp_path / "m.gguf"), n_ctx=256, verbose=False)
    prompt = tok.encode(PROMPT).ids
    assert llm.tokenize(PROMPT.encode("utf-8"), add_bos=False, special=False) == prompt
    from tinygpt_tui.engine.export import gguf_end_of_text

    assert llm.token_eos() == gguf_end_of_text(model, tok)  # what the file names, and the export's note says
    got = []
    for t in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0):
        got.append(t)
        if len(got) == NEW:
            break
    assert got == greedy(model, prompt, NEW)


# ---------------------------------------------------------------- import
@pytest.mark.parametrize("combo", ["gpt2", "gpt2-bias-untied"])
def test_export_then_import_gives_equal_logits(models, text, tmp_path, combo):
    from tinygpt_tui.engine.folder import load_model

    d, made = models
    model, tok = made[combo]
    assert cli("export", combo, tmp_path / "hf", "--to", "hf", "--models-dir", d).exit_code == 0
    r = cli("import", tmp_path / "hf", "--name", "back", "--models-dir", tmp_path / "models")
    assert r.exit_code == 0, r.stderr
    back = load_model(tmp_path / "models" / "back")
    assert back.model.cfg == model.cfg and back.tokenizer.chars == tok.chars
    ids = torch.tensor([tok.encode(text[:256]).ids])
    with torch.no_grad():
        assert torch.equal(back.model(ids)[0], model(ids)[0])


def test_a_bpe_model_exported_imports_back(small_corpus, text, tmp_path):
    """tinygpt's own BPE export is a folder tinygpt imports: the same tokens, the same logits."""
    from tinygpt_tui.engine.folder import load_model
    from tinygpt_tui.tokenizer import BpeTokenizer

    model, tok = make_tiny_model(tmp_path / "models" / "bee", text, tokenizer=BpeTokenizer.train(text, 300), **GPT2)
    assert cli("export", "bee", tmp_path / "hf", "--to", "hf", "--models-dir", tmp_path / "models").exit_code == 0
    r = cli("import", tmp_path / "hf", "--name", "back", "--models-dir", tmp_path / "models")
    assert r.exit_code == 0, r.stderr
    back = load_model(tmp_path / "models" / "back")
    assert back.tokenizer.kind == "bpe" and back.tokenizer.to_json() == tok.to_json()
    ids = torch.tensor([tok.encode(text[:200]).ids[:32]])
    with torch.no_grad():
        assert torch.equal(back.model(ids)[0], model.eval()(ids)[0])
    edit_json(tmp_path / "hf" / "config.json", vocab_size=299)  # a tokenizer that does not fit the weights
    assert_one_line_error(cli("import", tmp_path / "hf", "--name", "x", "--models-dir", tmp_path / "models"), "300 tokens")


def test_import_suggests_a_prompt_only_in_the_models_own_characters(text, tmp_path):
    """Every import said `try it: ... --prompt "ROMEO:"`; a Chinese model then dropped all six characters."""
    for name, book, prompt in (("bard", text, True), ("dream", "林黛玉听了，宝玉笑道：“好妹妹。”\n" * 400, False)):
        make_tiny_model(tmp_path / "models" / name, book, **GPT2)
        assert cli("export", name, tmp_path / name, "--to", "hf", "--models-dir", tmp_path / "models").exit_code == 0
        r = cli("import", tmp_path / name, "--name", f"{name}2", "--models-dir", tmp_path / "models")
        assert r.exit_code == 0, r.stderr
        assert f"try it: tinygpt generate {name}2" in r.stdout and ("ROMEO:" in r.stdout) == prompt, r.stdout


@pytest.fixture()
def hf_folder(models, tmp_path):
    d, _ = models
    assert cli("export", "gpt2", tmp_path / "hf", "--to", "hf", "--models-dir", d).exit_code == 0
    return tmp_path / "hf"


def edit_json(path: Path, **changes):
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc.update(changes)
    path.write_text(json.dumps(doc), encoding="utf-8")


class _Opens:
    """Unpickling this creates a file: proof that a pickle was (or was not) loaded."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("breakage,why", [
    (lambda f: edit_json(f / "config.json", auto_map={"AutoModelForCausalLM": "x.Model"}), "own code"),
    (lambda f: edit_json(f / "config.json", trust_remote_code=True), "own code"),
    (lambda f: edit_json(f / "config.json", model_type="llama"), "GPT-2-shaped folders only"),
    (lambda f: edit_json(f / "config.json", n_embd=48), "config.json makes it"),
    (lambda f: edit_json(f / "config.json", n_layer=300), "n_layer is 300"),
    (lambda f: edit_json(f / "config.json", activation_function="gelu_new"), "gelu_new"),
    (lambda f: edit_json(f / "tokenizer.json", model={"type": "BPE", "vocab": {"ab": 0}, "merges": []}), "not byte-level"),
    (lambda f: edit_json(f / "tokenizer.json", model={"type": "Unigram", "vocab": []}), "Unigram tokenizer; tinygpt imports"),
    (lambda f: edit_json(f / "tokenizer.json", model={"type": "WordLevel", "vocab": {"ab": 0, "c": 1}}), "not a character-level"),
    # these were tracebacks: a TypeError or an OverflowError computing the width, or sorting the ids
    (lambda f: edit_json(f / "config.json", n_inner="x"), "n_inner is 'x'"),
    (lambda f: edit_json(f / "config.json", n_inner=[64]), "n_inner is [64],"),
    (lambda f: edit_json(f / "config.json", n_embd="64"), "n_embd is '64', not a whole number"),  # (a string: quoted)
    (lambda f: edit_json(f / "tokenizer.json", added_tokens=[{"id": 0, "content": "<s>"}]), "adds tokens to its characters"),
    (lambda f: edit_json(f / "config.json", n_inner=10**400), "n_inner is"),
    (lambda f: edit_json(f / "tokenizer.json", model={"type": "WordLevel", "vocab": {"a": 0, "b": "1"}}), "ids are not 0 to"),
    (lambda f: edit_json(f / "tokenizer.json", model={"type": "WordLevel", "vocab": {"a": None, "b": 1}}), "ids are not 0 to"),
    # these said "no model.safetensors in FOLDER (sharded weights are not a small model)"
    (lambda f: ((f / "model.safetensors").unlink(), (f / "model.safetensors").mkdir()), "model.safetensors is a folder"),
    (lambda f: ((f / "model.safetensors").unlink(), (f / "model.safetensors").symlink_to("/dev/null")),
     "model.safetensors is a character device, not a regular file"),
])
def test_import_refuses(hf_folder, tmp_path, breakage, why):
    breakage(hf_folder)
    assert_one_line_error(cli("import", hf_folder, "--name", "x", "--models-dir", tmp_path / "models"), why)
    assert not (tmp_path / "models" / "x" / "config.json").exists()


def test_import_never_unpickles_a_bin(hf_folder, tmp_path):
    marker = tmp_path / "unpickled"
    (hf_folder / "model.safetensors").unlink()
    (hf_folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Opens(str(marker))))
    assert_one_line_error(cli("import", hf_folder, "--name", "x", "--models-dir", tmp_path / "models"), "pytorch_model.bin is a pickle")
    assert not marker.exists() and not (tmp_path / "models" / "x" / "config.json").exists()


def test_an_imported_model_s_card_says_it_was_trained_elsewhere_and_how_it_was_made(hf_folder, tmp_path, monkeypatch):
    """`tinygpt import .` from inside the folder: its card said "Trained with: tinygpt import hf --name here", which
    trained nothing and ran nowhere (no ./hf inside hf/, nor the --models-dir it was written to), beside "trained by
    tinygpt on **unknown**" and rows of None. Now the card says it was trained elsewhere, and its command, pasted in
    any folder, makes the same folder again."""
    import shutil

    from safetensors.torch import load_file

    monkeypatch.chdir(hf_folder)
    models = Path("..") / "my models"  # (relative, as typed)
    assert cli("import", ".", "--name", "here", "--models-dir", models).exit_code == 0
    folder = tmp_path / "my models" / "here"
    doc = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert doc["imported_from"]["folder"] == "hf" and "trained elsewhere (Hugging Face GPT-2 `hf`)" in card, card
    assert "Trained with" not in card and "unknown" not in card and "None" not in card, card
    command = card.split("Made into this folder with:\n\n```\n")[1].split("\n")[0]
    assert command == doc["command"], card
    weights = load_file(folder / "model.safetensors")
    shutil.rmtree(folder)
    monkeypatch.chdir(tmp_path.parent)  # (another folder: the command runs as printed)
    argv = shlex.split(command)
    assert argv[0] == "tinygpt" and cli(*argv[1:]).exit_code == 0, command
    assert all(torch.equal(v, weights[k]) for k, v in load_file(folder / "model.safetensors").items())


def test_a_card_of_a_model_made_elsewhere_gives_no_step_count_it_does_not_know():
    """An imported GPT-2 (or a bare nanoGPT state dict) records step 0: its card said "| steps | 0 |", which reads as a
    model never trained; its steps were taken elsewhere and are not recorded. A converted checkpoint's iter_num is."""
    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.engine.card import render_card

    cfg = GPTConfig(vocab_size=96)
    doc = {"name": "imp", "model": cfg.to_dict(), "corpus": {"name": "unknown"},
           "figures": {"step": 0, "val_loss": None, "params": cfg.param_count()},
           "imported_from": {"format": "Hugging Face GPT-2", "folder": "hf", "tokenizer": "char"}, "command": "tinygpt import hf"}
    assert "| steps |" not in render_card(doc)
    doc.pop("imported_from")
    doc["converted_from"], doc["figures"]["step"] = {"format": "nanoGPT ckpt.pt", "file": "ckpt.pt"}, 5000
    assert "| steps | 5,000 |" in render_card(doc)


def test_import_refuses_a_name_taken_and_a_bad_name(hf_folder, tmp_path):
    models = tmp_path / "models"
    assert cli("import", hf_folder, "--name", "taken", "--models-dir", models).exit_code == 0
    before = (models / "taken" / "model.safetensors").read_bytes()
    assert_one_line_error(cli("import", hf_folder, "--name", "taken", "--models-dir", models), "already exists")
    assert (models / "taken" / "model.safetensors").read_bytes() == before
    assert_one_line_error(cli("import", hf_folder, "--name", "../up", "--models-dir", models), "can't be a folder name")
    assert_one_line_error(cli("import", tmp_path / "nowhere", "--name", "x", "--models-dir", models), "not a folder")
