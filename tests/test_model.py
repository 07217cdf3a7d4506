"""The model: every option builds, the KV cache matches the full forward pass, attention is returned."""

import itertools

import numpy as np
import pytest
import torch

from tinygpt_tui.config import ConfigError, GPTConfig
from tinygpt_tui.model import GPT

POS = ["learned", "sinusoidal", "rope", "alibi", "none"]


def tiny(**kw):
    base = dict(vocab_size=23, block_size=16, n_layer=2, n_head=4, n_embd=32, bias=True)
    base.update(kw)
    torch.manual_seed(0)
    return GPT(GPTConfig(**base)).eval()


@pytest.mark.parametrize("pos", POS)
def test_kv_cache_matches_full_forward(pos):
    model = tiny(pos_encoding=pos)
    idx = torch.randint(0, 23, (2, 16))
    with torch.no_grad():
        full, _ = model(idx)
        cache = model.new_cache()
        parts = [model(idx[:, :5], cache=cache)[0]]  # prefill, then one token at a time
        for t in range(5, 16):
            parts.append(model(idx[:, t : t + 1], cache=cache)[0])
    assert torch.allclose(full, torch.cat(parts, 1), atol=1e-5, rtol=0)
    assert len(cache) == 16 and cache.pos == 16


@pytest.mark.parametrize("pos,ffn,norm,tie", list(itertools.product(POS, ["gelu", "swiglu"], ["layernorm", "rmsnorm"], [True, False]))[::3])
def test_every_option_trains_one_step(pos, ffn, norm, tie):
    model = tiny(pos_encoding=pos, ffn=ffn, norm=norm, tie_weights=tie).train()
    assert model.num_params() == model.cfg.param_count()
    idx = torch.randint(0, 23, (3, 16))
    _, loss = model(idx, torch.randint(0, 23, (3, 16)))
    loss.backward()
    assert torch.isfinite(loss) and abs(loss.item() - torch.log(torch.tensor(23.0)).item()) < 0.5
    assert all(p.grad is not None for p in model.parameters())
    if tie:
        assert model.head.weight is model.tok_emb.weight


@pytest.mark.parametrize("pos", POS)
def test_attention_weights_are_causal_and_normalised(pos):
    model = tiny(pos_encoding=pos)
    idx = torch.randint(0, 23, (1, 12))
    with torch.no_grad():
        logits, _, attn = model(idx, return_attention=True)
        plain, _ = model(idx)
    assert len(attn) == 2 and attn[0].shape == (1, 4, 12, 12)
    for a in attn:
        assert torch.allclose(a.sum(-1), torch.ones(1, 4, 12), atol=1e-5)
        assert a.triu(1).abs().max() == 0  # nothing on future positions
    assert torch.allclose(logits, plain, atol=1e-5)


def test_relative_encodings_slide_past_the_window():
    model = tiny(pos_encoding="rope")
    idx = torch.randint(0, 23, (1, 40))
    with torch.no_grad():
        cache = model.new_cache()
        model(idx[:, :16], cache=cache)
        for t in range(16, 40):
            logits, _ = model(idx[:, t : t + 1], cache=cache)
            assert len(cache) == 16  # the window never grows past block_size
            assert torch.isfinite(logits).all()


def test_absolute_positions_refuse_to_run_past_the_window():
    model = tiny(pos_encoding="learned")
    with pytest.raises(ValueError):
        model(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(n_embd=30, n_head=4), "divisible"),
        (dict(block_size=0), "block_size"),
        (dict(pos_encoding="fourier"), "pos_encoding"),
        (dict(dropout=1.5), "dropout"),
        (dict(n_layer=10_000), "limit"),
        (dict(n_embd=15, n_head=5, pos_encoding="rope"), "even"),
    ],
)
def test_impossible_configs_are_refused(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        GPTConfig(**{"vocab_size": 10, **kw}).validate()


def test_config_round_trips_and_rejects_unknown_keys():
    cfg = GPTConfig(vocab_size=7, pos_encoding="alibi")
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown"):
        GPTConfig.from_dict({**cfg.to_dict(), "evil": 1})


@pytest.mark.parametrize("name", ["shakespeare", "hongloumeng"])
def test_the_shipped_models_state_dict_keys_are_the_models(name):
    """The model folders in models/ load as they are: same names and shapes, strictly."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    folder = Path(__file__).resolve().parents[1] / "models" / name
    model = GPT(GPTConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8"))["model"]))
    state = load_file(str(folder / "model.safetensors"))
    if model.cfg.tie_weights:
        state["head.weight"] = state["tok_emb.weight"]
    assert model.load_state_dict(state, strict=True)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {k: tuple(v.shape) for k, v in state.items()}


def test_window_rule_keeps_block_size_keys_and_refuses_absolute_positions_past_it():
    model = tiny(pos_encoding="alibi")
    cache = model.new_cache()
    assert cache.sliding and cache.capacity == 32
    with torch.no_grad():
        for t in range(70):  # past the buffer's end twice: its live keys move back to the front
            model(torch.tensor([[t % 23]]), cache=cache)
            assert len(cache) == min(t + 1, 16) and cache.pos == t + 1
    with pytest.raises(ValueError, match="exceed block_size"):
        model(torch.zeros(1, 17, dtype=torch.long), cache=model.new_cache())
    absolute = tiny(pos_encoding="sinusoidal")
    cache = absolute.new_cache()
    with torch.no_grad():
        absolute(torch.zeros(1, 16, dtype=torch.long), cache=cache)
        with pytest.raises(ValueError, match="17 positions exceed block_size"):
            absolute(torch.zeros(1, 1, dtype=torch.long), cache=cache)
        cache.reset()
        assert absolute(torch.zeros(1, 3, dtype=torch.long), cache=cache)[0].shape == (1, 3, 23)


@pytest.mark.parametrize("base, head_size", [(10000.0, 16), (500.0, 32), (10000.0, 64), (500000.0, 128)])
def test_rope_angles_are_hugging_face_llamas(base, head_size):
    """In float32, as transformers' Llama computes them (an exported model's logits are then
    tinygpt's), and the compiled decoder's frequencies are the same numbers."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    from tinygpt_tui.fast.decode import ARGS, JitModel

    cfg = GPTConfig(n_embd=2 * head_size, n_head=2, pos_encoding="rope", rope_base=base, block_size=4096)
    rotary = LlamaRotaryEmbedding(LlamaConfig(hidden_size=cfg.n_embd, num_attention_heads=2, rope_theta=base, max_position_embeddings=4096))
    cos, sin = rotary(torch.zeros(1, 4096, head_size), torch.arange(4096)[None])
    ours = GPT(cfg).rope_angles(0, 4096, "cpu")
    assert torch.equal(ours[0], cos[0, :, : head_size // 2]) and torch.equal(ours[1], sin[0, :, : head_size // 2])
    jm = JitModel.from_torch(GPT(GPTConfig(**{**cfg.to_dict(), "block_size": 8})))
    assert np.array_equal(dict(zip(ARGS, jm.args("fp32")))["inv_freq"], rotary.inv_freq.numpy())
