"""Streaming sampler: one character at a time, reproducible, stoppable, settings checked."""

import threading

import numpy as np
import pytest
import torch

from tinygpt_tui.errors import SettingsError
from tinygpt_tui.fast import decode
from tinygpt_tui.model import GPT, GPTConfig
from tinygpt_tui.sampler import Generation, SamplingSettings, draw, generate
from tinygpt_tui.tokenizer import CharTokenizer

TEXT = "abcdefghij klmnop\nqrstuvwxyz.,!?"


def model_for(pos="rope", block=16):
    tok = CharTokenizer.from_text(TEXT)
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=block, n_layer=2, n_head=2, n_embd=32, pos_encoding=pos)).eval()
    return m, tok


def test_streams_one_character_at_a_time():
    m, tok = model_for()
    it = generate(m, tok, "abc", SamplingSettings(max_new_tokens=40, seed=1))
    chars = list(it)
    assert len(chars) == 40 and all(len(c) == 1 and c in tok.stoi for c in chars)


def test_same_seed_same_text_and_different_seed_differs():
    m, tok = model_for()
    s = lambda seed: "".join(generate(m, tok, "ab", SamplingSettings(max_new_tokens=60, temperature=1.5, seed=seed)))
    assert s(7) == s(7)
    assert s(7) != s(8)


def recompute_the_window(model, tok, prompt, n):
    """The reference without any cache: the whole window through the model for every character (greedy)."""
    ids = tok.encode(prompt).ids
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids[-model.cfg.block_size :]]))[0][0, -1].argmax()))
    return tok.decode(ids[-n:])


@pytest.mark.parametrize("backend", ["auto", "torch"])  # the compiled step and the model's KVCache
@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "rope", "alibi", "none"])
def test_greedy_cached_matches_recomputing_within_the_window(pos, backend):
    m, tok = model_for(pos)
    for p in m.parameters():  # sharper than the init, so greedy text varies instead of repeating one letter
        p.data.mul_(4)
    settings = SamplingSettings(max_new_tokens=12, temperature=0, precision="fp32")  # prompt 4 + 12 = the window of 16
    cached = "".join(Generation(m, tok, "abcd", settings, backend=backend))
    assert len(set(cached)) >= 3 and cached == recompute_the_window(m, tok, "abcd", 12)


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_generation_runs_far_past_the_window(pos):
    m, tok = model_for(pos, block=8)
    out = "".join(generate(m, tok, "abc", SamplingSettings(max_new_tokens=100, seed=3)))
    assert len(out) == 100


def test_top_k_1_is_greedy_and_top_p_keeps_the_top_token():
    m, tok = model_for()
    greedy = "".join(generate(m, tok, "ab", SamplingSettings(max_new_tokens=30, temperature=0)))
    k1 = "".join(generate(m, tok, "ab", SamplingSettings(max_new_tokens=30, temperature=1.0, top_k=1, seed=5)))
    p0 = "".join(generate(m, tok, "ab", SamplingSettings(max_new_tokens=30, temperature=1.0, top_p=1e-6, seed=5)))
    assert greedy == k1 == p0


def test_top_p_keeps_the_smallest_set_and_top_k_the_k_most_likely():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))
    us = np.linspace(0, 0.999, 200)
    assert {draw(logits, 1.0, 0, 0.7, u) for u in us} == {0, 1}
    assert {draw(logits, 1.0, 3, 1.0, u) for u in us} == {0, 1, 2}
    assert {draw(logits, 1.0, 0, 1.0, u) for u in us} == {0, 1, 2, 3}
    assert draw(logits, 0.0, 0, 1.0, 0.99) == 0  # greedy


def test_stop_between_characters():
    m, tok = model_for()
    stop = threading.Event()
    gen = Generation(m, tok, "a", SamplingSettings(max_new_tokens=1000, seed=0), stop)
    out = []
    for ch in gen:
        out.append(ch)
        if len(out) == 5:
            stop.set()
    assert len(out) == 5


def test_unknown_prompt_characters_are_reported():
    m, tok = model_for()
    gen = Generation(m, tok, "ab€c🙂", SamplingSettings(max_new_tokens=3, seed=0))
    assert gen.dropped == ["€", "🙂"] and len(list(gen)) == 3
    gen = Generation(m, tok, "€€€", SamplingSettings(max_new_tokens=3, seed=0))
    assert len(list(gen)) == 3  # nothing known left: starts from scratch, no crash


@pytest.mark.parametrize(
    "kw",
    [dict(temperature=-0.1), dict(top_k=0), dict(top_p=0.0), dict(top_p=1.5), dict(max_new_tokens=-1), dict(temperature=float("nan"))],
)
def test_bad_settings_are_refused(kw):
    with pytest.raises(SettingsError):
        SamplingSettings(**kw).validate()


def test_draws_follow_the_filtered_probabilities():
    """The inverse-CDF draw from uniform numbers gives each token its probability."""
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))
    uniform, n = np.random.default_rng(3).random, 20000
    counts = np.zeros(4)
    for _ in range(n):
        counts[draw(logits, 1.0, 0, 1.0, uniform())] += 1
    assert np.allclose(counts / n, [0.5, 0.3, 0.15, 0.05], atol=0.012)
    counts[:] = 0
    for _ in range(n):  # top-p 0.7 keeps the first two, renormalised
        counts[draw(logits, 1.0, 0, 0.7, uniform())] += 1
    assert np.allclose(counts / n, [0.625, 0.375, 0.0, 0.0], atol=0.012)


def test_chunks_start_with_the_first_character_alone_and_make_the_same_text():
    """chunks() gives a string per decoder call (the first at once, one character); the same text as iterating."""
    m, tok = model_for("alibi")
    s = SamplingSettings(max_new_tokens=300, seed=4)
    chunks = list(Generation(m, tok, "ab", s).chunks())
    assert len(chunks[0]) == 1 and len(chunks) < 300 and "".join(chunks) == "".join(generate(m, tok, "ab", s))


@pytest.mark.parametrize("top_k, top_p", [(0, 1.0), (3, 1.0), (0, 0.6), (5, 0.9), (1, 1.0)])
def test_the_compiled_draw_picks_what_the_plain_one_picks(top_k, top_p):
    """fast/decode.py compiles sampler.draw as it is: the same token for the same numbers."""
    g = np.random.default_rng(5)
    for _ in range(20):
        logits = (g.standard_normal(40) * 3).astype(np.float32)
        logits[7] = logits[8]  # a tie
        for u in g.random(50):
            assert decode.draw(logits, 0.7, top_k, top_p, u) == draw(logits, 0.7, top_k, top_p, u)


def test_sampling_edge_settings_agree_on_every_path():
    """Found in review: a temperature under 1e-307 overflowed the compiled draw to token 0, a
    top-k past 2**63 crashed it, and a top-p under float32's range dropped every token."""
    m, tok = model_for()
    for kw in (dict(temperature=1e-320), dict(temperature=1e-8), dict(temperature=1.0, top_k=2**64),
               dict(temperature=1.0, top_k=10**30, top_p=1e-300), dict(temperature=1.0, top_p=1e-300)):
        s = SamplingSettings(max_new_tokens=20, seed=2, precision="fp32", **kw)
        a = "".join(Generation(m, tok, "ab", s))
        b = "".join(Generation(m, tok, "ab", s, backend="torch"))
        assert a == b, (kw, a, b)
        if kw.get("top_p") or kw["temperature"] < 1e-3:  # the most likely token every time
            assert a == "".join(Generation(m, tok, "ab", SamplingSettings(max_new_tokens=20, temperature=0)))
