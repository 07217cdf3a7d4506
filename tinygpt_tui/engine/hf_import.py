"""`tinygpt import`: a small GPT-2 from a Hugging Face folder (character-level, or a byte-level BPE as tinygpt's),
read as data: its JSON, its safetensors checked from the header first; a folder asking for code of its own
(auto_map, trust_remote_code) is refused, a pickle (.bin) never opened. GPT-2's layers map to tinygpt's as
engine/export.py writes them (gpt2_layers), the other way round."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

from tinygpt_tui.config import LIMITS, GPTConfig
from tinygpt_tui.engine.export import gpt2_layers
from tinygpt_tui.engine.files import check_tensors, expected_shapes, read_json, read_safetensors_header
from tinygpt_tui.engine.folder import PICKLE_SUFFIXES, build_model, read_tensors
from tinygpt_tui.errors import CheckpointError
from tinygpt_tui.tokenizer import BpeTokenizer, CharTokenizer, Tokenizer


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
            shown = repr(v) if isinstance(v, str) else str(v)  # ("64", a string, is not 64)
            raise CheckpointError(f"config.json: {name} is {shown[:40]}, not a whole number from 1 to {LIMITS[name]:,}")
    inner = doc.get("n_inner")
    if inner is None:
        inner = 4 * sizes["n_embd"]
    elif isinstance(inner, bool) or not isinstance(inner, int) or not 1 <= inner <= 16 * sizes["n_embd"]:
        shown = repr(inner) if isinstance(inner, str) else str(inner)
        raise CheckpointError(f"config.json: n_inner is {shown[:40]}, not a whole number from 1 to 16 x n_embd")
    cfg = GPTConfig(**sizes, mlp_ratio=inner / sizes["n_embd"], tie_weights=doc.get("tie_word_embeddings", True) is not False)
    cfg.validate()
    if cfg.ffn_hidden != inner:
        raise CheckpointError(f"n_inner {inner} is not a width tinygpt builds (a multiple of 8, from 8 to 16 x n_embd)")
    return cfg


def hf_vocab(folder: Path, vocab_size: int) -> Tokenizer:
    """The folder's tokenizer.json as tinygpt's tokenizer: single characters with ids 0 .. V-1 (WordLevel),
    or a byte-level BPE as tinygpt writes one (what `tinygpt export --to hf` of a BPE model copies)."""
    doc = read_json(folder / "tokenizer.json", "tokenizer.json", MAX_JSON)
    model = doc.get("model") if isinstance(doc, dict) else None
    kind = model.get("type") if isinstance(model, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if kind == "BPE":  # checked as a model folder's own tokenizer.json is
        tokenizer = BpeTokenizer.from_json(json.dumps(doc))
        if tokenizer.vocab_size != vocab_size:
            raise CheckpointError(f"tokenizer.json has {tokenizer.vocab_size} tokens; the model's vocab_size is {vocab_size}")
        return tokenizer
    if kind == "WordLevel" and isinstance(vocab, dict) and doc.get("added_tokens"):
        raise CheckpointError("tokenizer.json adds tokens to its characters (added_tokens); tinygpt imports a character-level "
                              "tokenizer with none")
    if kind != "WordLevel" or not isinstance(vocab, dict):
        raise CheckpointError(f"tokenizer.json is a {str(kind)[:20]} tokenizer; tinygpt imports a character-level "
                              "one (WordLevel, one character a token) or a byte-level BPE")
    if not all(isinstance(c, str) and len(c) == 1 for c in vocab):
        raise CheckpointError("tokenizer.json has tokens longer than one character: not a character-level tokenizer")
    if not all(type(i) is int for i in vocab.values()) or sorted(vocab.values()) != list(range(vocab_size)):
        raise CheckpointError(f"tokenizer.json's ids are not 0 to {vocab_size - 1} (the model's vocab_size)")
    return CharTokenizer(sorted(vocab, key=vocab.get))


def read_hf_gpt2(folder) -> tuple[object, Tokenizer, GPTConfig]:
    """(GPT, tokenizer, config) from a Hugging Face GPT-2 folder with safetensors weights."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"not a folder: {folder}")
    weights = folder / "model.safetensors"
    if not os.path.lexists(weights):  # (one that is there but no file, a folder or a device, is refused by its kind below)
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(f"{pickles[0]} is a pickle, which can run code when loaded; tinygpt reads only "
                                  "model.safetensors (save the model with safe_serialization=True)")
        raise CheckpointError(f"no model.safetensors in {folder} (sharded weights are not a small model)")
    cfg = hf_config(folder)
    tokenizer = hf_vocab(folder, cfg.vocab_size)

    # names and shapes from the header, before any tensor is read
    header, _ = read_safetensors_header(weights)
    def full(k):  # GPT2LMHeadModel's names (a bare GPT2Model saves them without "transformer.")
        return k if k.startswith(("transformer.", "lm_head.")) else "transformer." + k
    header = {full(k): v for k, v in header.items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}  # (old mask buffers)
    if cfg.tie_weights:
        header.pop("lm_head.weight", None)  # a tied head saved anyway: the embedding is the one read
    expected = gpt2_shapes(cfg)
    check_tensors(header, expected, "model.safetensors", "config.json")
    if sum(4 * math.prod(s) for s in expected.values()) > MAX_WEIGHTS:
        raise CheckpointError(f"the weights are over {MAX_WEIGHTS // 1024**3} GB in fp32: not a small model")

    hf = {full(k): v.float() for k, v in read_tensors(weights).items()}
    # tinygpt's bias setting is all or nothing: biases all zero are what an export of bias=False wrote
    cfg.bias = any(hf[n].any() for n in expected if n.endswith(".bias"))
    state = {"tok_emb.weight": hf["transformer.wte.weight"], "pos_emb.weight": hf["transformer.wpe.weight"]}
    if not cfg.tie_weights:
        state["head.weight"] = hf["lm_head.weight"]
    for ours, theirs, _, conv in gpt2_layers(cfg):
        state[ours + ".weight"] = hf[theirs + ".weight"].t() if conv else hf[theirs + ".weight"]
        if cfg.bias:
            state[ours + ".bias"] = hf[theirs + ".bias"]
    return build_model(cfg, state, "model.safetensors"), tokenizer, cfg


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
