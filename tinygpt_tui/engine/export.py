"""Export a tinygpt model to the formats other tools run: a Hugging Face transformers folder,
and a GGUF file for llama.cpp.

Only combinations that a stock model computes exactly are exported; anything else is refused
with the reason, never approximated:
  learned positions + gelu + layernorm  -> GPT-2 (GPT2LMHeadModel; llama.cpp's gpt2)
  rope + swiglu + rmsnorm               -> Llama (LlamaForCausalLM; llama.cpp's llama)

The mapping, tensor by tensor:
  GPT-2's layers are Conv1D, which hold the transpose of nn.Linear's (out, in) weight, and its
  LayerNorms and projections always have biases: where tinygpt has none they are zeros.
  Llama keeps q, k, v apart (tinygpt's qkv rows are q, k, v in that order) and SwiGLU's two
  halves apart (tinygpt's `up` rows are [gate; value]). Both rotate the halves of a head for
  RoPE. llama.cpp rotates adjacent pairs instead, so for GGUF the rows of q and k are permuted
  the way llama.cpp's own converter does (``permute_rope``).

transformers, tokenizers and gguf are optional (pip install "tinygpt-tui[export]"): they are
imported inside the functions that use them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from tinygpt_tui.config import GPTConfig
from tinygpt_tui.errors import SettingsError

EXTRA = 'pip install "tinygpt-tui[export]"'


def require(*modules: str) -> None:
    """Import the optional packages, or say in one line which extra installs them."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise SettingsError(f"this command needs the {name} package: {EXTRA}") from None


def architecture(cfg: GPTConfig) -> str:
    """'gpt2' or 'llama': the stock architecture that computes this model exactly."""
    combo = (cfg.pos_encoding, cfg.ffn, cfg.norm)
    if combo == ("learned", "gelu", "layernorm"):
        return "gpt2"
    if combo == ("rope", "swiglu", "rmsnorm"):
        return "llama"
    raise SettingsError(f"{'/'.join(combo)} maps onto no stock model; exportable are learned/gelu/layernorm "
                        "(GPT-2) and rope/swiglu/rmsnorm (Llama)")


def bias_or_zeros(state: dict, name: str):
    """A layer's bias, or zeros where tinygpt has none (GPT-2's layers always have one)."""
    import torch

    if name + ".bias" in state:
        return state[name + ".bias"]
    return torch.zeros(state[name + ".weight"].shape[0])


# GPT-2's names for a block's layers, and whether the weight is a Conv1D (stored transposed)
GPT2_LAYERS = (("ln_1", "norm1", False), ("attn.c_attn", "attn.qkv", True), ("attn.c_proj", "attn.proj", True),
               ("ln_2", "norm2", False), ("mlp.c_fc", "ffn.up", True), ("mlp.c_proj", "ffn.down", True))


def gpt2_pairs(cfg: GPTConfig) -> list[tuple[str, str, bool]]:
    """(transformers name, tinygpt layer, transposed) for every GPT-2 layer; weight and bias each."""
    pairs = [("transformer.wte", "tok_emb", False), ("transformer.wpe", "pos_emb", False)]
    for i in range(cfg.n_layer):
        pairs += [(f"transformer.h.{i}.{hf}", f"blocks.{i}.{ours}", conv) for hf, ours, conv in GPT2_LAYERS]
    pairs.append(("transformer.ln_f", "norm", False))
    if not cfg.tie_weights:
        pairs.append(("lm_head", "head", False))
    return pairs


def gpt2_state(model) -> dict:
    state, out = model.state_dict(), {}
    for hf, ours, conv in gpt2_pairs(model.cfg):
        w = state[ours + ".weight"]
        out[hf + ".weight"] = w.t() if conv else w
        if not ours.endswith(("emb", "head")):  # embeddings and the output layer have no bias
            out[hf + ".bias"] = bias_or_zeros(state, ours)
    return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


def llama_state(model) -> dict:
    """Llama's tensors: q, k, v and gate, up split apart (biases too, where there are any)."""
    cfg, state = model.cfg, model.state_dict()
    out = {"model.embed_tokens.weight": state["tok_emb.weight"], "model.norm.weight": state["norm.weight"]}
    if not cfg.tie_weights:
        out["lm_head.weight"] = state["head.weight"]
    for i in range(cfg.n_layer):
        ours, hf = f"blocks.{i}.", f"model.layers.{i}."
        out[hf + "input_layernorm.weight"] = state[ours + "norm1.weight"]
        out[hf + "post_attention_layernorm.weight"] = state[ours + "norm2.weight"]
        for kind in ("weight", "bias") if cfg.bias else ("weight",):
            q, k, v = state[f"{ours}attn.qkv.{kind}"].chunk(3)
            gate, up = state[f"{ours}ffn.up.{kind}"].chunk(2)
            out.update({f"{hf}self_attn.q_proj.{kind}": q, f"{hf}self_attn.k_proj.{kind}": k,
                        f"{hf}self_attn.v_proj.{kind}": v, f"{hf}self_attn.o_proj.{kind}": state[f"{ours}attn.proj.{kind}"],
                        f"{hf}mlp.gate_proj.{kind}": gate, f"{hf}mlp.up_proj.{kind}": up,
                        f"{hf}mlp.down_proj.{kind}": state[f"{ours}ffn.down.{kind}"]})
    return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


def hf_model(model):
    """The transformers model that computes what ``model`` does, with its weights."""
    from transformers.utils import logging

    logging.disable_progress_bar()  # the command prints its own lines
    logging.set_verbosity_error()
    cfg = model.cfg
    # no begin/end-of-text tokens: a character model has none, and a default id would stop generate() early
    common = dict(vocab_size=cfg.vocab_size, tie_word_embeddings=cfg.tie_weights, bos_token_id=None,
                  eos_token_id=None, pad_token_id=None)
    if architecture(cfg) == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        # "gelu" is the exact erf GELU of F.gelu (GPT-2's own is the tanh "gelu_new"); an export
        # is for running, so dropout (a training setting) is off
        hf_cfg = GPT2Config(n_embd=cfg.n_embd, n_layer=cfg.n_layer, n_head=cfg.n_head, n_inner=cfg.ffn_hidden,
                            n_positions=cfg.block_size, activation_function="gelu", layer_norm_epsilon=1e-5,
                            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common)
        hf, state = GPT2LMHeadModel(hf_cfg), gpt2_state(model)
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        hf_cfg = LlamaConfig(hidden_size=cfg.n_embd, num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
                             num_key_value_heads=cfg.n_head, head_dim=cfg.n_embd // cfg.n_head,
                             intermediate_size=cfg.ffn_hidden, hidden_act="silu", max_position_embeddings=cfg.block_size,
                             rms_norm_eps=1e-6, rope_theta=float(cfg.rope_base), attention_bias=cfg.bias,
                             mlp_bias=cfg.bias, **common)
        hf, state = LlamaForCausalLM(hf_cfg), llama_state(model)
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (cfg.tie_weights and k == "lm_head.weight")]
    if missing or unexpected:  # a transformers release that names its layers differently
        raise SettingsError(f"this transformers version does not fit the export ({(missing or unexpected)[0]})")
    if cfg.tie_weights:
        hf.tie_weights()
    return hf.eval()


def char_tokenizer(chars: list[str]):
    """A tokenizers.Tokenizer with tinygpt's ids: one token per character, newlines and spaces
    included; characters outside the vocabulary are dropped (as CharTokenizer.encode does)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(chars)}))
    known = "".join(f"\\x{{{ord(c):x}}}" for c in chars)  # every character escaped: no regex syntax can leak in
    tok.normalizer = normalizers.Replace(Regex(f"[^{known}]"), "")
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character alone
    tok.decoder = decoders.Fuse()  # tokens joined back with nothing between them
    return tok


def to_hf(model, tokenizer, out: Path) -> None:
    """Write a transformers folder at ``out`` (which must not exist yet)."""
    hf = hf_model(model)
    hf.save_pretrained(str(out), safe_serialization=True)
    if architecture(model.cfg) == "llama":  # transformers 4.x reads rope_theta here, 5.x reads rope_parameters
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
        config["rope_theta"] = float(model.cfg.rope_base)
        (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    char_tokenizer(tokenizer.chars).save(str(out / "tokenizer.json"))
    settings = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
                "model_max_length": model.cfg.block_size}
    (out / "tokenizer_config.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")


# ---------------------------------------------------------------- GGUF
def byte_symbols() -> dict[int, str]:
    """GPT-2's byte-level alphabet: each of the 256 bytes as a printable character (what the
    'gpt2' tokenizer of llama.cpp reads token text in)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in bs]
    return {**{b: chr(b) for b in bs}, **{b: chr(256 + n) for n, b in enumerate(extra)}}


def gguf_vocab(chars: list[str]) -> tuple[list[str], list[str]]:
    """Tokens and merges of a byte-level BPE vocabulary with one token per character, ids kept.

    A character of several UTF-8 bytes is put together by a chain of merges (its first two
    bytes, then that and the third, ...); every chain starts at a lead byte, so no merge ever
    joins two characters. The first merge joins two 0xF5 bytes, which valid UTF-8 never holds:
    it never applies, and keeps the list from being empty (llama.cpp needs one)."""
    sym = byte_symbols()
    tokens, merges = [], {f"{sym[0xF5]} {sym[0xF5]}": None}
    for c in chars:
        parts = [sym[b] for b in c.encode("utf-8", "surrogatepass")]
        tokens.append("".join(parts))
        for n in range(1, len(parts)):
            merges.setdefault(f"{''.join(parts[:n])} {parts[n]}", None)
    return tokens, list(merges)


def permute_rope(w, n_head: int):
    """Rows of q or k from rotating halves (i, i + D/2) to rotating adjacent pairs (2i, 2i + 1),
    the order llama.cpp's rope reads (its converter's LlamaModel.permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(model) -> dict:
    """llama.cpp's tensor names -> numpy arrays, in nn.Linear's (out, in) layout."""
    import numpy as np

    cfg, arch = model.cfg, architecture(model.cfg)
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    out = {"token_embd.weight": state["tok_emb.weight"], "output.weight": state["head.weight"]}
    names = {"norm1": "attn_norm", "attn.proj": "attn_output", "norm2": "ffn_norm", "ffn.down": "ffn_down"}
    if arch == "gpt2":
        out["position_embd.weight"] = state["pos_emb.weight"]
        names.update({"attn.qkv": "attn_qkv", "ffn.up": "ffn_up"})
    layers = [(f"blocks.{i}.{ours}", f"blk.{i}.{theirs}") for i in range(cfg.n_layer) for ours, theirs in names.items()]
    for ours, theirs in layers + [("norm", "output_norm")]:
        out[theirs + ".weight"] = state[ours + ".weight"]
        if arch == "gpt2":  # llama.cpp's gpt2 needs every bias
            out[theirs + ".bias"] = state.get(ours + ".bias", np.zeros(state[ours + ".weight"].shape[0], np.float32))
        elif ours + ".bias" in state:  # its llama takes them where they are
            out[theirs + ".bias"] = state[ours + ".bias"]
    if arch == "llama":
        for i in range(cfg.n_layer):
            for kind in ("weight", "bias") if cfg.bias else ("weight",):
                q, k, v = np.split(state[f"blocks.{i}.attn.qkv.{kind}"], 3)
                gate, up = np.split(state[f"blocks.{i}.ffn.up.{kind}"], 2)
                out.update({f"blk.{i}.attn_q.{kind}": permute_rope(q, cfg.n_head), f"blk.{i}.attn_k.{kind}": permute_rope(k, cfg.n_head),
                            f"blk.{i}.attn_v.{kind}": v, f"blk.{i}.ffn_gate.{kind}": gate, f"blk.{i}.ffn_up.{kind}": up})
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def to_gguf(model, tokenizer, out: Path) -> None:
    """Write a GGUF file (float32) at ``out``."""
    import gguf

    cfg, arch = model.cfg, architecture(model.cfg)
    w = gguf.GGUFWriter(str(out), arch)
    w.add_name(out.stem)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(cfg.block_size)
    w.add_embedding_length(cfg.n_embd)
    w.add_block_count(cfg.n_layer)
    w.add_feed_forward_length(cfg.ffn_hidden)
    w.add_head_count(cfg.n_head)
    if arch == "gpt2":
        w.add_layer_norm_eps(1e-5)
    else:
        w.add_head_count_kv(cfg.n_head)
        w.add_layer_norm_rms_eps(1e-6)
        w.add_rope_freq_base(float(cfg.rope_base))
        w.add_rope_dimension_count(cfg.n_embd // cfg.n_head)
        w.add_vocab_size(cfg.vocab_size)
    tokens, merges = gguf_vocab(tokenizer.chars)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * len(tokens))
    w.add_token_merges(merges)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    for name, array in gguf_tensors(model).items():
        w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------- writing in one step
def write_whole(out: Path, force: bool, write) -> None:
    """Call ``write(path)`` on a temporary path beside ``out``, then rename it to ``out``: a
    failure leaves nothing half-written, and an existing ``out`` is replaced only with force."""
    out = Path(out).expanduser().absolute()
    if (out.exists() or out.is_symlink()) and not force:
        raise SettingsError(f"{out} already exists; add --force to replace it")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise SettingsError(f"cannot write in {out.parent}: {e.strerror or e}") from None
    try:
        new, old = tmp / out.name, tmp / "replaced"
        write(new)
        if out.exists() or out.is_symlink():
            os.replace(out, old)
        try:
            os.replace(new, out)
        except OSError:
            if old.exists() or old.is_symlink():
                os.replace(old, out)  # put the old one back
            raise
    except OSError as e:
        raise SettingsError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
