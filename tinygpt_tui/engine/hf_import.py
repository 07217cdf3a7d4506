"""Import a small GPT-2-shaped Hugging Face folder as a tinygpt model (the reverse of export.to_hf).

All of it is read as data: config.json and tokenizer.json as JSON, the weights from safetensors
(names and shapes checked from the header before a tensor is read). A folder asking for code of
its own (auto_map, trust_remote_code) is refused; a pickle (.bin) is never opened.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from tinygpt_tui.config import LIMITS, GPTConfig
from tinygpt_tui.engine.export import gpt2_layers
from tinygpt_tui.engine.folder import PICKLE_SUFFIXES
from tinygpt_tui.engine.files import read_json
from tinygpt_tui.engine.files import FLOAT_DTYPES, expected_shapes, read_safetensors_header
from tinygpt_tui.errors import CheckpointError
from tinygpt_tui.tokenizer import CharTokenizer

MAX_JSON = 64 * 1024 * 1024  # a vocabulary of two million characters fits
MAX_WEIGHTS = 4 * 1024**3  # fp32 bytes: "small" (tinygpt trains models a thousand times smaller)
# GPT-2 settings whose other values tinygpt does not compute (its GELU is the exact one, its LayerNorm eps 1e-5)
REQUIRED = {"activation_function": "gelu", "layer_norm_epsilon": 1e-5, "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False}


def hf_config(folder: Path) -> GPTConfig:
    """tinygpt's config for the folder's config.json (bias decided later, from the weights)."""
    doc = read_json(folder / "config.json", "config.json", MAX_JSON)
    if not isinstance(doc, dict):
        raise CheckpointError("config.json must hold a JSON object")
    if "auto_map" in doc or doc.get("trust_remote_code"):
        raise CheckpointError("config.json asks to run the folder's own code (auto_map / trust_remote_code); tinygpt runs none")
    if doc.get("model_type") != "gpt2":
        raise CheckpointError(f"model_type is {str(doc.get('model_type'))[:40]!r}; tinygpt imports GPT-2-shaped folders only")
    for key, want in REQUIRED.items():
        if doc.get(key, want) != want:
            raise CheckpointError(f"config.json: {key} is {str(doc[key])[:40]!r}; tinygpt computes only {want!r}")
    sizes = {"vocab_size": doc.get("vocab_size"), "block_size": doc.get("n_positions", doc.get("n_ctx")),
             "n_layer": doc.get("n_layer"), "n_head": doc.get("n_head"), "n_embd": doc.get("n_embd")}
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= LIMITS[name]:
            raise CheckpointError(f"config.json: {name} is {str(v)[:40]}, not a whole number from 1 to {LIMITS[name]:,}")
    inner = doc.get("n_inner") or 4 * sizes["n_embd"]
    cfg = GPTConfig(**sizes, mlp_ratio=inner / sizes["n_embd"], tie_weights=doc.get("tie_word_embeddings", True) is not False)
    cfg.validate()
    if cfg.ffn_hidden != inner:
        raise CheckpointError(f"n_inner {inner} is not a width tinygpt builds (a multiple of 8, from 8 to 16 x n_embd)")
    return cfg


def char_vocab(folder: Path, vocab_size: int) -> CharTokenizer:
    """The characters of a tokenizer.json whose tokens are single characters with ids 0 .. V-1."""
    doc = read_json(folder / "tokenizer.json", "tokenizer.json", MAX_JSON)
    model = doc.get("model") if isinstance(doc, dict) else None
    kind = model.get("type") if isinstance(model, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if kind != "WordLevel" or not isinstance(vocab, dict) or doc.get("added_tokens"):
        raise CheckpointError(f"tokenizer.json is a {str(kind)[:20]} tokenizer, not a character-level one "
                              "(tinygpt's models read one character per token)")
    if not all(isinstance(c, str) and len(c) == 1 for c in vocab):
        raise CheckpointError("tokenizer.json has tokens longer than one character: not a character-level tokenizer")
    if sorted(vocab.values()) != list(range(vocab_size)):
        raise CheckpointError(f"tokenizer.json's ids are not 0 to {vocab_size - 1} (the model's vocab_size)")
    return CharTokenizer(sorted(vocab, key=vocab.get))


def read_hf_gpt2(folder) -> tuple[object, CharTokenizer, GPTConfig]:
    """(GPT, CharTokenizer, config) from a Hugging Face GPT-2 folder with safetensors weights."""
    import torch
    from safetensors.torch import load_file

    from tinygpt_tui.model import GPT

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"not a folder: {folder}")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(f"{pickles[0]} is a pickle, which can run code when loaded; tinygpt reads only "
                                  "model.safetensors (save the model with safe_serialization=True)")
        raise CheckpointError(f"no model.safetensors in {folder} (sharded weights are not a small model)")
    cfg = hf_config(folder)
    tokenizer = char_vocab(folder, cfg.vocab_size)

    # names and shapes from the header, before any tensor is read
    header, _ = read_safetensors_header(weights)
    def full(k):  # GPT2LMHeadModel's names (a bare GPT2Model saves them without "transformer.")
        return k if k.startswith(("transformer.", "lm_head.")) else "transformer." + k
    header = {full(k): v for k, v in header.items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}  # (old mask buffers)
    if cfg.tie_weights:
        header.pop("lm_head.weight", None)  # a tied head saved anyway: the embedding is the one read
    expected, shapes = gpt2_shapes(cfg), {k: tuple(shape) for k, (_, shape) in header.items()}
    for name in sorted(set(expected) | set(shapes)):
        if shapes.get(name) != expected.get(name):
            raise CheckpointError(f"model.safetensors: {name} is {shapes.get(name, 'absent')}, config.json makes it {expected.get(name, 'absent')}")
    for name, (dtype, _) in header.items():
        if dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"model.safetensors: {name} is {dtype}, not floating point")
    if sum(4 * math.prod(s) for s in expected.values()) > MAX_WEIGHTS:
        raise CheckpointError(f"the weights are over {MAX_WEIGHTS // 1024**3} GB in fp32: not a small model")

    hf = {full(k): v.float() for k, v in load_file(str(weights)).items()}
    for name in expected:
        if not torch.isfinite(hf[name]).all():
            raise CheckpointError(f"model.safetensors: {name} holds NaN or infinite values")
    # tinygpt's bias setting is all or nothing: biases all zero are what an export of bias=False wrote
    cfg.bias = any(hf[n].any() for n in expected if n.endswith(".bias"))
    state = {"tok_emb.weight": hf["transformer.wte.weight"], "pos_emb.weight": hf["transformer.wpe.weight"]}
    if not cfg.tie_weights:
        state["head.weight"] = hf["lm_head.weight"]
    for ours, theirs, _, conv in gpt2_layers(cfg):
        state[ours + ".weight"] = hf[theirs + ".weight"].t() if conv else hf[theirs + ".weight"]
        if cfg.bias:
            state[ours + ".bias"] = hf[theirs + ".bias"]
    model = GPT(cfg)
    model.load_state_dict({k: v.contiguous() for k, v in state.items()}, strict=not cfg.tie_weights)
    return model.eval(), tokenizer, cfg


def gpt2_shapes(cfg: GPTConfig) -> dict[str, tuple[int, ...]]:
    """GPT-2's tensor names and shapes for this config: tinygpt's (with biases), Conv1D ones transposed."""
    ours = expected_shapes(replace(cfg, bias=True))
    shapes = {"transformer.wte.weight": ours["tok_emb.weight"], "transformer.wpe.weight": ours["pos_emb.weight"]}
    if not cfg.tie_weights:
        shapes["lm_head.weight"] = ours["head.weight"]
    for mine, theirs, _, conv in gpt2_layers(cfg):
        w = ours[mine + ".weight"]
        shapes.update({theirs + ".weight": w[::-1] if conv else w, theirs + ".bias": (w[0],)})
    return shapes
