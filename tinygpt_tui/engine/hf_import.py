"""Import a small GPT-2-shaped Hugging Face folder as a tinygpt model: the reverse of
export.to_hf for GPT-2, so a model round-trips.

Everything is read as data: config.json and tokenizer.json as JSON, the weights from safetensors
(their header first: names and shapes are checked before a tensor is read). A folder that asks
for code of its own (auto_map, trust_remote_code) is refused, and a pickle (.bin) is never
opened. Neither transformers nor tokenizers is needed to import.
"""

from __future__ import annotations

from pathlib import Path

from tinygpt_tui.config import LIMITS, GPTConfig
from tinygpt_tui.engine.export import gpt2_pairs
from tinygpt_tui.engine.folder import PICKLE_SUFFIXES
from tinygpt_tui.engine.safe_io import read_json
from tinygpt_tui.engine.schema import FLOAT_DTYPES, read_safetensors_header
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
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"not a Hugging Face model folder (no config.json): {folder}")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(f"{pickles[0]} is a pickle, which can run code when loaded; tinygpt reads only "
                                  "model.safetensors (save the model with safe_serialization=True)")
        sharded = " (sharded weights are not a small model)" if (folder / "model.safetensors.index.json").exists() else ""
        raise CheckpointError(f"no model.safetensors in {folder}{sharded}")
    cfg = hf_config(folder)
    tokenizer = char_vocab(folder, cfg.vocab_size)

    # names and shapes from the header, before any tensor is read
    header, _ = read_safetensors_header(weights)
    header = {k.removeprefix("transformer.") if not k.startswith("lm_head") else k: v for k, v in header.items()}
    header = {k: v for k, v in header.items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}  # old causal-mask buffers
    expected = expected_shapes(cfg)
    if cfg.tie_weights:
        header.pop("lm_head.weight", None)  # a tied head saved anyway: the embedding is the one read
    for name, (dtype, shape) in header.items():
        if name not in expected:
            raise CheckpointError(f"model.safetensors has {name}, which a GPT-2 of this config does not")
        if tuple(shape) != expected[name]:
            raise CheckpointError(f"model.safetensors: {name} is {tuple(shape)}, config.json makes it {expected[name]}")
        if dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"model.safetensors: {name} is {dtype}, not floating point")
    missing = sorted(set(expected) - set(header))
    if missing:
        raise CheckpointError(f"model.safetensors lacks {missing[0]}")
    if sum(4 * torch.Size(s).numel() for s in expected.values()) > MAX_WEIGHTS:
        raise CheckpointError(f"the weights are over {MAX_WEIGHTS // 1024**3} GB in fp32: not a small model")

    hf = {(k.removeprefix("transformer.") if not k.startswith("lm_head") else k): v.float() for k, v in load_file(str(weights)).items()}
    for name in expected:
        if not torch.isfinite(hf[name]).all():
            raise CheckpointError(f"model.safetensors: {name} holds NaN or infinite values")
    # tinygpt's bias setting is all or nothing: biases that are all zero are what an export of bias=False wrote
    cfg.bias = any(hf[n].any() for n in expected if n.endswith(".bias"))
    state = {}
    for theirs, ours, conv in gpt2_pairs(cfg):
        theirs = theirs.removeprefix("transformer.")
        state[ours + ".weight"] = hf[theirs + ".weight"].t() if conv else hf[theirs + ".weight"]
        if cfg.bias and theirs + ".bias" in hf:
            state[ours + ".bias"] = hf[theirs + ".bias"]
    model = GPT(cfg)
    model.load_state_dict({k: v.contiguous() for k, v in state.items()}, strict=not cfg.tie_weights)
    return model.eval(), tokenizer, cfg


def expected_shapes(cfg: GPTConfig) -> dict[str, tuple[int, ...]]:
    """GPT-2's tensor names (without the "transformer." prefix) and shapes for this config."""
    C, V, hidden = cfg.n_embd, cfg.vocab_size, cfg.ffn_hidden
    shapes = {"wte.weight": (V, C), "wpe.weight": (cfg.block_size, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
    for i in range(cfg.n_layer):
        h = f"h.{i}."
        shapes.update({h + "ln_1.weight": (C,), h + "ln_1.bias": (C,), h + "ln_2.weight": (C,), h + "ln_2.bias": (C,),
                       h + "attn.c_attn.weight": (C, 3 * C), h + "attn.c_attn.bias": (3 * C,),
                       h + "attn.c_proj.weight": (C, C), h + "attn.c_proj.bias": (C,),
                       h + "mlp.c_fc.weight": (C, hidden), h + "mlp.c_fc.bias": (hidden,),
                       h + "mlp.c_proj.weight": (hidden, C), h + "mlp.c_proj.bias": (C,)})
    if not cfg.tie_weights:
        shapes["lm_head.weight"] = (V, C)
    return shapes
