"""The compiled decoder on a CPU (fast/decode.py) against the model's own forward pass.

Tolerances: with fp32 weights the compiled step computes the same sums in another order, so
logits agree with model.py's to 1e-4. With int8 weights (the default on a CPU) the shipped
Shakespeare model's loss on validation text moves by less than 0.01 nats per character and
the most likely next character is the same at least 97% of the time.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinygpt_tui.data import split_text
from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.errors import SettingsError
from tinygpt_tui.fast import decode as jitstep
from tinygpt_tui.model import GPT, GPTConfig
from tinygpt_tui.sampler import Generation, SamplingSettings, decoder

from tests.conftest import ROOT, shakespeare_path

VARIANTS = [
    {"pos_encoding": "learned"},
    {"pos_encoding": "sinusoidal", "norm": "rmsnorm"},
    {"pos_encoding": "rope", "ffn": "swiglu"},
    {"pos_encoding": "alibi", "bias": True},
    {"pos_encoding": "none", "tie_weights": False},
]


def make(m, precision="auto"):
    return jitstep.JitModel.from_torch(m).decoder(precision)


def logits_of(dec, ids):
    return torch.from_numpy(dec.feed(ids).copy())


def model_for(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = {"vocab_size": 29, "block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0}
    m = GPT(GPTConfig(**{**cfg, **kw})).eval()
    for p in m.parameters():  # sharper than the init, so that mistakes show in the logits
        p.data.mul_(3)
    return m


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_fp32_decoder_matches_the_forward_pass_within_the_window(kw):
    m = model_for(**kw)
    ids = torch.randint(0, 29, (1, 16), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = m(ids)[0][0]  # (16, V)
    dec = make(m, "fp32")
    got = [logits_of(dec, ids[0, :5].tolist())] + [logits_of(dec, [int(t)]) for t in ids[0, 5:]]
    assert dec.pos == 16 and len(dec) == 16
    assert torch.allclose(torch.stack(got), ref[4:], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("pos", ["rope", "alibi", "none"])
def test_fp32_decoder_slides_like_the_kv_cache_past_the_window(pos):
    """Three windows long: the oldest key is dropped, as KVCache does (both follow config.Window)."""
    m = model_for(pos_encoding=pos)
    ids = torch.randint(0, 29, (50,), generator=torch.Generator().manual_seed(2)).tolist()
    dec, cache = make(m, "fp32"), m.new_cache()
    with torch.inference_mode():
        ref = [m(torch.tensor([ids[:3]]), cache=cache)[0][0, -1]]
        ref += [m(torch.tensor([[t]]), cache=cache)[0][0, -1] for t in ids[3:]]
    got = [logits_of(dec, ids[:3])] + [logits_of(dec, [t]) for t in ids[3:]]
    assert len(dec) == 16  # the window
    assert torch.allclose(torch.stack(got), torch.stack(ref), atol=1e-4, rtol=1e-4)


def test_absolute_positions_refuse_to_run_past_the_window():
    dec = make(model_for(pos_encoding="learned"), "fp32")
    dec.feed(list(range(16)))
    with pytest.raises(ValueError, match="exceed block_size"):
        dec.feed([1])
    dec.reset()
    assert dec.pos == 0 and dec.feed([1]).shape == (29,)


def test_quantize_rows_round_trips_within_half_a_step():
    w = (torch.randn(40, 64) * torch.logspace(-3, 1, 40)[:, None]).numpy()  # rows of very different sizes
    q, s = jitstep.quantize_rows(w)
    assert q.dtype == np.int8 and np.abs(q).max() <= 127
    err = np.abs(q.astype(np.float32) * s[:, None] - w)
    assert np.all(err <= s[:, None] / 2 + 1e-7)


def test_two_decoders_of_one_model_do_not_mix():
    jm = jitstep.JitModel.from_torch(model_for(pos_encoding="rope"))
    a, b, solo = (jm.decoder("fp32") for _ in range(3))
    a.feed([1, 2, 3])
    b.feed([9, 8])
    for t in (4, 5, 6):
        b.feed([t])
        out_a = a.feed([t]).copy()
    solo.feed([1, 2, 3])
    for t in (4, 5, 6):
        out_solo = solo.feed([t])
    assert np.array_equal(out_a, out_solo)


def test_a_changed_model_decodes_with_its_new_weights():
    """The compiled step takes the weights when a generation starts: after an optimizer step, the new ones."""
    m = model_for(pos_encoding="learned")
    before = logits_of(decoder(m, "fp32"), [1, 2, 3])
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    m.train()
    m(torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 4]]))[1].backward()
    opt.step()
    m.eval()
    with torch.inference_mode():
        ref = m(torch.tensor([[1, 2, 3]]))[0][0, -1]
    after = logits_of(decoder(m, "fp32"), [1, 2, 3])
    assert not torch.allclose(before, after) and torch.allclose(after, ref, atol=1e-4)


def test_precision_and_backend_are_checked():
    with pytest.raises(SettingsError, match="precision"):
        SamplingSettings(precision="int4").validate()
    with pytest.raises(ValueError, match="backend"):
        decoder(model_for(), "fp32", "cuda")
    with pytest.raises(ValueError, match="precision"):
        jitstep.JitModel.from_torch(model_for()).decoder("fp16")


def test_the_compiled_decoder_is_the_default_on_a_cpu_and_checks_token_ids():
    from tinygpt_tui.sampler import CachedModel

    assert jitstep.available()  # a declared dependency
    dec = decoder(model_for(pos_encoding="alibi"))
    assert isinstance(dec, jitstep.JitDecoder) and dec.precision == "int8"
    assert isinstance(decoder(model_for(), "auto", "torch"), CachedModel)
    dec.feed([1, 2])
    with pytest.raises(IndexError, match="vocabulary"):
        dec.feed([29])  # (the compiled loops do not check bounds: the decoder must)
    with pytest.raises(IndexError, match="vocabulary"):
        dec.feed([-1])
    assert dec.pos == 2 and dec.feed([3]).shape == (29,)


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: kw["pos_encoding"])
def test_int8_decoder_is_close_to_fp32(kw):
    m = model_for(**kw)
    ids = torch.randint(0, 29, (16,), generator=torch.Generator().manual_seed(3)).tolist()
    f, q = make(m, "fp32"), make(m, "int8")
    assert q.precision == "int8"
    assert all(q.args[jitstep.ARGS.index(f"{k}_w")].dtype == np.int8 for k in ("qkv", "proj", "up", "down"))
    pf = [logits_of(f, ids[:4])] + [logits_of(f, [t]) for t in ids[4:]]
    pq = [logits_of(q, ids[:4])] + [logits_of(q, [t]) for t in ids[4:]]
    pf, pq = torch.stack(pf).log_softmax(-1), torch.stack(pq).log_softmax(-1)
    # the next-character distributions: KL divergence per character, in nats
    kl = (pf.exp() * (pf - pq)).sum(-1)
    assert kl.max() < 0.02, kl


def teacher_forced(precision: str, ids: list[int], model):
    """Mean next-character loss and the most likely characters over ``ids``, window by window."""
    dec = make(model, precision)
    W = model.cfg.block_size
    nll, choices, n = 0.0, [], 0
    for start in range(0, len(ids) - W, W):
        chunk = ids[start : start + W + 1]
        dec.reset()
        logits = [logits_of(dec, chunk[:1])] + [logits_of(dec, [t]) for t in chunk[1:W]]
        logp = torch.stack(logits).log_softmax(-1)  # (W, V): predictions of chunk[1:]
        nll -= logp.gather(1, torch.tensor(chunk[1:])[:, None]).sum().item()
        choices.append(logp.argmax(-1))
        n += W
    return nll / n, torch.cat(choices)


def test_int8_keeps_the_shipped_models_loss_and_choices():
    loaded = ckpt.load_model(ROOT / "models" / "shakespeare")
    model = loaded.model
    text = split_text(shakespeare_path().read_text(encoding="utf-8"))[1][:1300]  # validation text
    ids = loaded.tokenizer.encode(text).ids
    loss32, top32 = teacher_forced("fp32", ids, model)
    loss8, top8 = teacher_forced("int8", ids, model)
    with torch.inference_mode():  # the fp32 decoder's loss is the model's own
        W = model.cfg.block_size
        ref = sum(F.cross_entropy(model(torch.tensor([ids[s : s + W]]))[0][0], torch.tensor(ids[s + 1 : s + W + 1]), reduction="sum").item()
                  for s in range(0, len(ids) - W, W)) / len(top32)
    assert len(top32) >= 1000 and loss32 < 2.0
    assert abs(loss32 - ref) < 1e-4
    assert abs(loss8 - loss32) < 0.01, (loss8, loss32)
    agree = (top8 == top32).float().mean().item()
    assert agree >= 0.97, agree


def test_generation_uses_the_decoder_and_fp32_text_equals_the_model_path():
    """On a CPU the sampler runs the compiled step; with fp32 weights its text is the model's own
    KV cache's (the same uniform numbers turn into tokens through the same draw)."""
    from tinygpt_tui.tokenizer import CharTokenizer

    tok = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz .\n"))
    for pos in ("learned", "rope"):  # past the window: refills (absolute) and slides (relative)
        m = model_for(pos_encoding=pos)
        s = SamplingSettings(max_new_tokens=60, temperature=1.0, seed=4, precision="fp32", top_k=20, top_p=0.95)
        assert isinstance(decoder(m, "fp32"), jitstep.JitDecoder)
        fast = "".join(Generation(m, tok, "the cat", s))
        slow = "".join(Generation(m, tok, "the cat", s, backend="torch"))
        assert fast == slow and len(fast) == 60


def test_the_tables_are_the_models():
    """The compiled step's position tables and norms are model.py's (both from config.py)."""
    for kw in ({"pos_encoding": "sinusoidal", "norm": "rmsnorm"}, {"pos_encoding": "rope"}, {"pos_encoding": "alibi"}):
        m = model_for(**kw)
        args = dict(zip(jitstep.ARGS, jitstep.JitModel.from_torch(m).args("fp32")))
        if kw["pos_encoding"] == "sinusoidal":
            assert np.array_equal(args["pos_table"], m.pos_table.numpy())
            assert args["eps"] == m.norm.eps
        if kw["pos_encoding"] == "alibi":
            assert np.array_equal(args["slopes"], m.alibi.numpy())
        if kw["pos_encoding"] == "rope":
            cos, _ = m.rope_angles(5, 1, "cpu")
            assert np.allclose(np.cos(5 * args["inv_freq"]), cos.numpy()[0], atol=1e-7)
            assert args["eps"] == torch.nn.LayerNorm(4).eps
    ref = [[np.sin(p / 10000 ** (c / 30)) if c % 2 == 0 else np.cos(p / 10000 ** ((c - 1) / 30)) for c in range(30)] for p in range(37)]
    assert np.allclose(model_for(pos_encoding="sinusoidal", n_embd=30).pos_table.numpy()[:16], ref[:16], atol=1e-6)


def test_the_jit_decoder_checks_its_input():
    dec = jitstep.JitModel.from_torch(model_for(pos_encoding="rope")).decoder()
    with pytest.raises(IndexError, match="vocabulary"):
        dec.feed([3, 29])
    assert dec.pos == 0  # nothing ran
    with pytest.raises(ValueError, match="at least one"):
        dec.feed([])
    with pytest.raises(ValueError, match="exceed block_size"):
        dec.feed(list(range(17)))
    with pytest.raises(ValueError, match="precision"):
        jitstep.JitModel.from_torch(model_for()).args("int4")


# ---------------------------------------------------------------- generation without torch
def test_load_for_sampling_reads_the_file_without_torch_and_writes_the_same_text(tmp_path):
    """`tinygpt generate` on a CPU: numpy arrays from safetensors, the compiled step, the same text."""
    from tinygpt_tui.tokenizer import CharTokenizer

    from tests.conftest import make_tiny_model

    text = "the quick brown fox jumps over the lazy dog.\n" * 3
    model, tok = make_tiny_model(tmp_path / "m", text, seed=3, pos_encoding="learned", bias=True)
    loaded = ckpt.load_for_sampling(tmp_path / "m")
    assert isinstance(loaded.model, jitstep.JitModel) and isinstance(loaded.tokenizer, CharTokenizer)
    s = SamplingSettings(max_new_tokens=80, temperature=1.0, seed=9, precision="fp32")  # past the window of 32
    assert "".join(Generation(loaded.model, loaded.tokenizer, "the ", s)) == "".join(Generation(model.eval(), tok, "the ", s))
    assert isinstance(ckpt.load_for_sampling(tmp_path / "m", "cpu").model, jitstep.JitModel)


def test_load_for_sampling_refuses_bad_weights_in_one_line(tmp_path):
    from safetensors.numpy import load_file, save_file

    from tinygpt_tui.errors import CheckpointError

    from tests.conftest import make_tiny_model

    make_tiny_model(tmp_path / "m", "abcdef ghij\n", seed=1)
    path = tmp_path / "m" / "model.safetensors"
    arrays = load_file(str(path))
    arrays["norm.weight"][3] = np.nan
    save_file(arrays, str(path))
    with pytest.raises(CheckpointError, match="NaN"):
        ckpt.load_for_sampling(tmp_path / "m")
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(CheckpointError) as e:
        ckpt.load_for_sampling(tmp_path / "m")
    assert "\n" not in str(e.value)


def test_generate_on_a_cpu_never_imports_torch(tmp_path):
    import subprocess
    import sys

    from tests.conftest import make_tiny_model

    make_tiny_model(tmp_path / "m", "abcdef ghij\n", seed=1, pos_encoding="alibi")
    code = ("import sys; from tinygpt_tui.cli.main import run\n"
            f"sys.argv = ['tinygpt', 'generate', {str(tmp_path / 'm')!r}, '--max-new', '20', '--seed', '1', '-p', 'abc']\n"
            "try:\n    run()\nexcept SystemExit:\n    pass\n"
            "print('torch imported:', 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("abc") and len(r.stdout.splitlines()[0]) >= 3
    assert r.stdout.rstrip().endswith("torch imported: False"), r.stdout


def test_the_compiled_erf_is_within_float_rounding_of_math_erf():
    import math

    xs = np.linspace(-9, 9, 4001, dtype=np.float32)
    err = max(abs(jitstep.erf(x) - math.erf(float(x))) for x in xs)
    assert err < 1e-6, err


def test_bf16_weights_are_refused_in_one_line_by_the_compiled_decoder(tmp_path):
    """tinygpt saves fp32; a bfloat16 file made by hand (numpy has none) is one CheckpointError."""
    from safetensors.torch import load_file, save_file

    from tests.conftest import make_tiny_model
    from tinygpt_tui.errors import CheckpointError

    make_tiny_model(tmp_path / "m", "abcdef ghij\n", seed=2, pos_encoding="rope")
    path = tmp_path / "m" / "model.safetensors"
    save_file({k: v.to(torch.bfloat16) for k, v in load_file(str(path)).items()}, str(path))
    with pytest.raises(CheckpointError, match="cannot read model.safetensors"):
        ckpt.load_for_sampling(tmp_path / "m")


@pytest.mark.parametrize("loader", ["load_for_sampling", "load_model"])
def test_f64_weights_beyond_float32_are_refused_in_one_line(tmp_path, loader):
    from safetensors.numpy import load_file, save_file

    from tinygpt_tui.errors import CheckpointError

    from tests.conftest import make_tiny_model

    make_tiny_model(tmp_path / "m", "abcdef ghij\n", seed=1)
    path = tmp_path / "m" / "model.safetensors"
    arrays = {k: v.astype(np.float64) for k, v in load_file(str(path)).items()}
    arrays["tok_emb.weight"][0, 0] = 1e300  # finite in F64, inf in float32
    save_file(arrays, str(path))
    with pytest.raises(CheckpointError, match="infinite"):
        getattr(ckpt, loader)(tmp_path / "m")


def test_load_for_sampling_refuses_a_bad_device_or_folder_before_importing_torch(tmp_path):
    import subprocess
    import sys

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{", encoding="utf-8")
    code = ("import sys\nfrom tinygpt_tui.engine.folder import load_for_sampling\n"
            "from tinygpt_tui.errors import TinyGPTError\n"
            f"for device in ('tpu', 'cuda'):\n"
            f"    try:\n        load_for_sampling({str(tmp_path / 'bad')!r}, device)\n"
            "    except TinyGPTError as e:\n        print(type(e).__name__, str(e).splitlines()[0][:40])\n"
            "print('torch imported:', 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("SettingsError device must be one of") and lines[1].startswith("CheckpointError config.json")
    assert lines[2] == "torch imported: False"


# ---------------------------------------------------------------- runs of tokens, and the first run on a machine
def todays_text(jm, tok, prompt, s):
    """The sampler as it was before runs of tokens: one compiled step and one compiled draw per
    character, a uniform number per draw, the window refilled or slid in Python."""
    dec = jm.decoder(s.precision)
    dec.ready.wait()
    window, uniform = jm.cfg.block_size, np.random.default_rng(s.seed).random
    top_k = s.top_k if s.top_k is not None and s.top_k < jm.cfg.vocab_size else 0
    top_p = 1.0 if s.top_p is None else s.top_p
    history = tok.encode(prompt).ids[-window:]
    logits, out = dec.feed(history), []
    for _ in range(s.max_new_tokens):
        nxt = jitstep.draw(logits, float(s.temperature), top_k, top_p, uniform() if s.temperature else 0.0)
        out.append(nxt)
        history.append(nxt)
        if dec.sliding or dec.pos < window:
            logits = dec.feed([nxt])
        else:
            history = history[-(window - window // 4) :]
            dec.reset()
            logits = dec.feed(history)
    return tok.decode(out)


@pytest.mark.parametrize("pos", ["learned", "rope", "alibi"])  # refilled, and slid past the buffer's end
def test_runs_of_tokens_in_one_call_write_todays_text(pos):
    from tinygpt_tui.tokenizer import CharTokenizer

    tok = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz .\n"))
    jm = jitstep.JitModel.from_torch(model_for(pos_encoding=pos))
    for kw in (dict(temperature=1.0, seed=4), dict(temperature=0.7, seed=5, top_k=9, top_p=0.9), dict(temperature=0)):
        for precision in ("int8", "fp32"):
            s = SamplingSettings(max_new_tokens=300, precision=precision, **kw)
            gen = Generation(jm, tok, "the cat", s)
            chunks = list(gen.chunks())
            assert "".join(chunks) == todays_text(jm, tok, "the cat", s), (kw, precision)
            assert not gen.compiling and len(chunks) < 100  # the compiled decoder, in runs


def test_plain_step_computes_what_the_compiled_step_does(monkeypatch):
    """The numpy step that decodes while numba compiles: the compiled step's logits, within rounding."""
    for kw in VARIANTS:
        jm = jitstep.JitModel.from_torch(model_for(**kw))
        ids = torch.randint(0, 29, (50,), generator=torch.Generator().manual_seed(3)).tolist()
        for precision in ("int8", "fp32"):
            fast = jm.decoder(precision)
            fast.ready.wait()
            with monkeypatch.context() as mp:
                mp.setattr(jitstep, "WAIT_S", 0.0)
                mp.setattr(jitstep, "compiling", lambda types, *_: threading.Event())  # never ready
                plain = jm.decoder(precision)
            assert fast.compiled and not plain.compiled
            for chunk in [ids[:5]] + [[t] for t in ids[5 : None if fast.sliding else 16]]:  # (three windows when sliding)
                assert np.allclose(plain.feed(chunk), fast.feed(chunk), atol=1e-5, rtol=1e-5), kw


def test_the_numpy_step_of_an_fp32_decoder_keeps_its_weights_and_scales_int8_once():
    """While numba compiles, numpy decodes: an fp32 decoder's weights serve it as they are (no second copy of
    the model); an int8 decoder's are scaled into fp32 once, equal to each row times its scale."""
    jm = jitstep.JitModel.from_torch(model_for())
    for precision in ("fp32", "int8"):
        args = dict(zip(jitstep.ARGS, jm.decoder(precision).args))
        plain = dict(zip(jitstep.ARGS, jitstep.plain_args(tuple(args.values()))))
        for key in ("qkv", "proj", "up", "down", "head"):
            w, s = args[f"{key}_w"], args[f"{key}_s"]
            assert plain[f"{key}_s"] is None and np.array_equal(plain[f"{key}_w"], w.astype(np.float32) * s[..., None])
            assert np.shares_memory(plain[f"{key}_w"], w) == (w.dtype == np.float32), (precision, key)


def test_the_text_does_not_depend_on_when_the_compiled_decoder_takes_over(monkeypatch):
    """The first run on a machine decodes with numpy while numba compiles, then switches between
    two runs of tokens: the same draw and the same uniform numbers, so the same text."""
    from tinygpt_tui.tokenizer import CharTokenizer

    tok = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz .\n"))
    for pos in ("learned", "alibi"):
        jm = jitstep.JitModel.from_torch(model_for(pos_encoding=pos))
        s = SamplingSettings(max_new_tokens=200, temperature=1.0, seed=6, top_k=20, precision="fp32")
        want = "".join(Generation(jm, tok, "the cat", s))
        monkeypatch.setattr(jitstep, "WAIT_S", 0.0)
        for switch_at in (1, 37, 199):
            compiled = threading.Event()
            monkeypatch.setattr(jitstep, "compiling", lambda types, *_: compiled)
            gen, got = Generation(jm, tok, "the cat", s), []
            for ch in gen:
                got.append(ch)
                if len(got) == switch_at:
                    assert gen.compiling  # (what a screen shows a note for)
                    compiled.set()
            assert "".join(got) == want and not gen.compiling, (pos, switch_at)
        monkeypatch.undo()


FIRST_COMPILE = r"""
import json, resource, sys, time
from tinygpt_tui.fast import decode
from tinygpt_tui.model import GPT, GPTConfig

def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime

jm = decode.JitModel.from_torch(GPT(GPTConfig(vocab_size=29, block_size=32, n_layer=1, n_head=2, n_embd=32)))
own0, t0 = cpu(resource.RUSAGE_SELF), time.perf_counter()
d = jm.decoder("int8")
d.ready.wait()
print(json.dumps({"own": cpu(resource.RUSAGE_SELF) - own0, "children": cpu(resource.RUSAGE_CHILDREN), "compiled": d.compiled}))
"""


def first_compile(env: dict) -> dict:
    """FIRST_COMPILE in a process of its own, with ``env`` over this one's (the warm child's mark left out)."""
    import json
    import os
    import subprocess
    import sys

    from tinygpt_tui.fast import warm

    base = {k: v for k, v in os.environ.items() if k != warm.CHILD_ENV}
    done = subprocess.run([sys.executable, "-c", FIRST_COMPILE], env={**base, **env}, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def compiled_twice(tmp_path_factory):
    """Two runs on an empty numba cache (a first-ever run, then the next): (their figures, the folder of the caches).
    One compile (20-40 s of CPU) for the two tests below."""
    root = tmp_path_factory.mktemp("compile")
    env = {"NUMBA_CACHE_DIR": str(root / "numba"), "XDG_CACHE_HOME": str(root / "cache")}
    return [first_compile(env) for _ in range(2)], root


@pytest.mark.slow
def test_the_first_compile_runs_in_a_process_of_its_own_and_the_next_run_loads_it(compiled_twice):
    """The first compile (20-40 s) ran in a thread of the process decoding meanwhile: the two shared one GIL, so the
    numpy step ran at a third of its speed (and the app's screen stalled), and `tinygpt generate` waited for it at its
    end. It runs in a child process now (fast/warm.py); the next run finds the step cached and starts none."""
    (first, second), root = compiled_twice
    assert first["compiled"] and second["compiled"]
    assert first["children"] > 2 * first["own"], first  # the compiler's time: the child's, not this process's
    assert second["children"] == 0, second  # cached: loaded here, no child
    assert (root / "cache" / "tinygpt" / "decoder.json").is_file()


@pytest.mark.slow
def test_where_the_compile_note_cannot_be_written_no_process_is_started_each_run(compiled_twice, tmp_path):
    """With $XDG_CACHE_HOME/tinygpt not writable (here a file), the note of what numba's cache holds was never
    written, so every run started a compiling process (a torch import, seconds of CPU) for a step numba had
    cached, and decoded with numpy meanwhile. It now loads in place, as where numba cannot cache."""
    _, root = compiled_twice  # (numba's cache filled by the first-ever run there)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "tinygpt").write_text("a file where the cache folder should be\n")
    later = first_compile({"NUMBA_CACHE_DIR": str(root / "numba"), "XDG_CACHE_HOME": str(blocked)})
    assert later["compiled"] and later["children"] == 0, later


def test_the_numpy_erf_in_place_is_the_compiled_steps_erf():
    """GELU's erf in plain_step (its steps in place) and in the compiled step: the same polynomial, the same numbers."""
    import math

    x = np.linspace(-6, 6, 2001, dtype=np.float32)
    got = jitstep.erf_array(x.copy())
    assert np.array_equal(got, jitstep.plain_erf(x))
    assert max(abs(math.erf(float(v)) - float(e)) for v, e in zip(x, got)) < 1e-6
