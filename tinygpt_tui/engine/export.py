"""Export a tinygpt model to Hugging Face transformers (a folder) and to GGUF (llama.cpp); engine/hf_import.py
imports a small GPT-2 (character-level, or a byte-level BPE as tinygpt's) from a Hugging Face folder.

Only what a stock model computes exactly is exported; the rest is refused, never approximated:
  learned positions + gelu + layernorm  -> GPT-2 (GPT2LMHeadModel; llama.cpp's gpt2)
  (sinusoidal or no positions: GPT-2's position table holds the fixed one, or zeros)
  rope + gelu + layernorm               -> GPT-NeoX (GPTNeoXForCausalLM; llama.cpp's gptneox)
  rope + swiglu + rmsnorm               -> Llama (LlamaForCausalLM; llama.cpp's llama)
GPT-2's Conv1D layers hold the transpose of nn.Linear's weight, and all its layers have biases
(zeros where tinygpt has none). GPT-NeoX has every bias too; it runs its blocks one after the
other (use_parallel_residual=False), rotates all of a head's dims (rotary_pct=1.0) by its halves,
as tinygpt does, and reads its query_key_value rows per head, [q_h; k_h; v_h], where tinygpt's
are [q; k; v] (llama.cpp's gptneox reads them as tinygpt's: its converter undoes NeoX's order).
Llama keeps q, k, v apart (tinygpt's qkv rows, in that order) and gate, up apart (tinygpt's `up`
rows are [gate; value]); both rotate a head's halves for RoPE, llama.cpp adjacent pairs, so for
GGUF q and k are permuted as llama.cpp's converter does. transformers computes tinygpt's LayerNorm
eps (1e-5), RMSNorm eps (1e-6), exact erf GELU and 1/sqrt(head size) attention scale; llama.cpp's
gpt2 and gptneox compute GELU with its tanh form (through an fp16 table), whatever the file says:
the shipped models' logits there are within about 1e-2 of tinygpt's, their greedy text the same.
transformers, tokenizers and gguf are optional ("tinygpt-tui[export]"), imported where used.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from pathlib import Path

from tinygpt_tui.config import GPTConfig
from tinygpt_tui.engine.files import new_file_mode
from tinygpt_tui.errors import SettingsError
from tinygpt_tui.tokenizer import BYTE_SYMBOL

def require(*modules: str) -> None:
    """Import the optional packages, or say in one line which extra installs them."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise SettingsError(f'this command needs the {name} package: pip install "tinygpt-tui[export]"') from None


ARCHITECTURES = {("learned", "gelu", "layernorm"): "gpt2", ("sinusoidal", "gelu", "layernorm"): "gpt2",
                 ("none", "gelu", "layernorm"): "gpt2", ("rope", "gelu", "layernorm"): "gptneox",
                 ("rope", "swiglu", "rmsnorm"): "llama"}
ARCH_NAMES = {"gpt2": "GPT-2", "gptneox": "GPT-NeoX", "llama": "Llama"}  # (as the command's output names them)


def architecture(cfg: GPTConfig) -> str:
    """'gpt2', 'gptneox' or 'llama': the stock architecture that computes this model exactly
    (also llama.cpp's name for it)."""
    combo = (cfg.pos_encoding, cfg.ffn, cfg.norm)
    if combo in ARCHITECTURES:
        return ARCHITECTURES[combo]
    raise SettingsError(f"{'/'.join(combo)} maps onto no stock model; exportable are learned, sinusoidal or no positions with "
                        "gelu/layernorm (GPT-2), rope/gelu/layernorm (GPT-NeoX) and rope/swiglu/rmsnorm (Llama)")


# tinygpt's layers of a GPT-2 block -> (GPT-2's name, llama.cpp's name, a Conv1D in GPT-2)
GPT2_LAYERS = {"norm1": ("ln_1", "attn_norm", False), "attn.qkv": ("attn.c_attn", "attn_qkv", True),
               "attn.proj": ("attn.c_proj", "attn_output", True), "norm2": ("ln_2", "ffn_norm", False),
               "ffn.up": ("mlp.c_fc", "ffn_up", True), "ffn.down": ("mlp.c_proj", "ffn_down", True)}
# and of a Llama block, the projections that q, k, v and gate, up are split into
# and of a GPT-NeoX block, whose layers all have biases, under gpt_neox.layers.{i}.
NEOX_LAYERS = {"norm1": ("input_layernorm", "attn_norm"), "attn.qkv": ("attention.query_key_value", "attn_qkv"),
               "attn.proj": ("attention.dense", "attn_output"), "norm2": ("post_attention_layernorm", "ffn_norm"),
               "ffn.up": ("mlp.dense_h_to_4h", "ffn_up"), "ffn.down": ("mlp.dense_4h_to_h", "ffn_down")}
LLAMA_LAYERS = {"q": ("self_attn.q_proj", "attn_q"), "k": ("self_attn.k_proj", "attn_k"), "v": ("self_attn.v_proj", "attn_v"),
                "attn.proj": ("self_attn.o_proj", "attn_output"), "gate": ("mlp.gate_proj", "ffn_gate"),
                "up": ("mlp.up_proj", "ffn_up"), "ffn.down": ("mlp.down_proj", "ffn_down")}


def gpt2_layers(cfg: GPTConfig) -> list[tuple[str, str, str, bool]]:
    """(tinygpt layer, GPT-2 layer, llama.cpp layer, Conv1D) of every layer with a weight and a bias."""
    blocks = [(f"blocks.{i}.{ours}", f"transformer.h.{i}.{hf}", f"blk.{i}.{gg}", conv)
              for i in range(cfg.n_layer) for ours, (hf, gg, conv) in GPT2_LAYERS.items()]
    return blocks + [("norm", "transformer.ln_f", "output_norm", False)]


def permute_rope(w, n_head: int):
    """Rows of q or k from rotating halves (i, i + D/2) to rotating adjacent pairs (2i, 2i + 1),
    the order llama.cpp's rope reads (its converter's LlamaModel.permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def neox_qkv(w, n_head: int):
    """Rows of tinygpt's qkv, [q; k; v] (each H heads of D), in GPT-NeoX's order: per head [q_h; k_h; v_h]
    (the order llama.cpp's converter turns back into [q; k; v])."""
    return w.reshape(3, n_head, w.shape[0] // 3 // n_head, *w.shape[1:]).swapaxes(0, 1).reshape(w.shape)


def position_table(model):
    """GPT-2's (block_size, n_embd) position table for the model: its learned one, its fixed sinusoidal one
    (added to the token embeddings as a learned one is), or zeros for no positions (within the window, where
    both stop, GPT-2 then computes what tinygpt does)."""
    import torch

    if model.cfg.pos_encoding == "learned":
        return model.pos_emb.weight.detach().float()
    if model.cfg.pos_encoding == "sinusoidal":
        return model.pos_table.detach().float()
    return torch.zeros(model.cfg.block_size, model.cfg.n_embd)


def tensors(model, gguf: bool = False) -> dict:
    """The model's weights under transformers' names (gguf=False) or llama.cpp's (True), fp32."""
    import torch

    cfg, arch = model.cfg, architecture(model.cfg)
    s = {k: v.detach().float() for k, v in model.state_dict().items()}
    out = {}

    def put(hf_name, gguf_name, t):
        out[gguf_name if gguf else hf_name] = t

    if arch == "gpt2":
        put("transformer.wte.weight", "token_embd.weight", s["tok_emb.weight"])
        put("transformer.wpe.weight", "position_embd.weight", position_table(model))
        for ours, hf, gg, conv in gpt2_layers(cfg):
            w = s[ours + ".weight"]
            put(hf + ".weight", gg + ".weight", w.t() if conv and not gguf else w)
            # GPT-2 has every bias (llama.cpp's gpt2 too): zeros where tinygpt has none
            put(hf + ".bias", gg + ".bias", s.get(ours + ".bias", torch.zeros(w.shape[0])))
    elif arch == "gptneox":
        put("gpt_neox.embed_in.weight", "token_embd.weight", s["tok_emb.weight"])
        layers = [(f"blocks.{i}.{ours}", f"gpt_neox.layers.{i}.{hf}", f"blk.{i}.{gg}")
                  for i in range(cfg.n_layer) for ours, (hf, gg) in NEOX_LAYERS.items()]
        for ours, hf, gg in layers + [("norm", "gpt_neox.final_layer_norm", "output_norm")]:
            w = s[ours + ".weight"]
            b = s.get(ours + ".bias", torch.zeros(w.shape[0]))  # zeros where tinygpt has none
            if ours.endswith("attn.qkv") and not gguf:
                w, b = neox_qkv(w, cfg.n_head), neox_qkv(b, cfg.n_head)
            put(hf + ".weight", gg + ".weight", w)
            put(hf + ".bias", gg + ".bias", b)
    else:
        put("model.embed_tokens.weight", "token_embd.weight", s["tok_emb.weight"])
        put("model.norm.weight", "output_norm.weight", s["norm.weight"])
        for i in range(cfg.n_layer):
            ours, hf, gg = f"blocks.{i}.", f"model.layers.{i}.", f"blk.{i}."
            put(hf + "input_layernorm.weight", gg + "attn_norm.weight", s[ours + "norm1.weight"])
            put(hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight", s[ours + "norm2.weight"])
            for kind in ("weight", "bias") if cfg.bias else ("weight",):
                parts = dict(zip("qkv", s[f"{ours}attn.qkv.{kind}"].chunk(3)))
                parts.update(zip(("gate", "up"), s[f"{ours}ffn.up.{kind}"].chunk(2)))
                parts.update({"attn.proj": s[f"{ours}attn.proj.{kind}"], "ffn.down": s[f"{ours}ffn.down.{kind}"]})
                if gguf:  # llama.cpp rotates adjacent pairs
                    parts["q"], parts["k"] = permute_rope(parts["q"], cfg.n_head), permute_rope(parts["k"], cfg.n_head)
                for name, (hf_layer, gg_layer) in LLAMA_LAYERS.items():
                    put(f"{hf}{hf_layer}.{kind}", f"{gg}{gg_layer}.{kind}", parts[name])
    if gguf or not cfg.tie_weights:  # (llama.cpp's gpt2 and gptneox read an output layer even when tied)
        put("lm_head.weight", "output.weight", s["head.weight"])
    return {k: v.contiguous().clone() for k, v in out.items()}


def to_hf(model, tokenizer, out: Path) -> None:
    """Write a transformers folder at ``out`` (which must not exist yet)."""
    from transformers.utils import logging

    logging.disable_progress_bar()  # the command prints its own lines
    logging.set_verbosity_error()
    cfg = model.cfg
    # no begin/end-of-text tokens: a character model has none, and a default id would stop generate() early
    common = dict(vocab_size=cfg.vocab_size, tie_word_embeddings=cfg.tie_weights, bos_token_id=None,
                  eos_token_id=None, pad_token_id=None)
    if architecture(cfg) == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        # "gelu" is the exact erf GELU of F.gelu (GPT-2's own is the tanh "gelu_new")
        hf_cfg = GPT2Config(n_embd=cfg.n_embd, n_layer=cfg.n_layer, n_head=cfg.n_head, n_inner=cfg.ffn_hidden,
                            n_positions=cfg.block_size, activation_function="gelu", layer_norm_epsilon=1e-5,
                            # tinygpt's dropout sits where GPT-2's three do (not GPT-2's default of 0.1: a fine-tune goes on as trained)
                            resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout, **common)
        hf = GPT2LMHeadModel(hf_cfg)
    elif architecture(cfg) == "gptneox":
        from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

        # the blocks one after the other, RoPE on every dim of a head (NeoX's default is a quarter); tinygpt's
        # dropout sits where NeoX's does (the embeddings, the attention, each block's two outputs: hidden_dropout)
        hf_cfg = GPTNeoXConfig(hidden_size=cfg.n_embd, num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
                               intermediate_size=cfg.ffn_hidden, hidden_act="gelu", max_position_embeddings=cfg.block_size,
                               layer_norm_eps=1e-5, use_parallel_residual=False, rotary_pct=1.0,
                               rotary_emb_base=float(cfg.rope_base), attention_bias=True, hidden_dropout=cfg.dropout,
                               attention_dropout=cfg.dropout, **common)
        hf = GPTNeoXForCausalLM(hf_cfg)
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        hf_cfg = LlamaConfig(hidden_size=cfg.n_embd, num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
                             num_key_value_heads=cfg.n_head, head_dim=cfg.n_embd // cfg.n_head,
                             intermediate_size=cfg.ffn_hidden, hidden_act="silu", max_position_embeddings=cfg.block_size,
                             rms_norm_eps=1e-6, rope_theta=float(cfg.rope_base), attention_bias=cfg.bias,
                             mlp_bias=cfg.bias, **common)
        hf = LlamaForCausalLM(hf_cfg)
    state = tensors(model)
    # the output layer's name (GPT-NeoX's is embed_out in transformers 4.x, lm_head in 5.x)
    head = next(name for name, m in hf.named_modules() if m is hf.get_output_embeddings()) + ".weight"
    if "lm_head.weight" in state:
        state[head] = state.pop("lm_head.weight")
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (cfg.tie_weights and k == head)]
    if missing or unexpected:  # a transformers release that names its layers differently
        raise SettingsError(f"this transformers version does not fit the export ({(missing or unexpected)[0]})")
    hf.save_pretrained(str(out), safe_serialization=True)
    # transformers 4.x reads RoPE's settings here, 5.x reads rope_parameters
    legacy = {"llama": {"rope_theta": float(cfg.rope_base)},
              "gptneox": {"rotary_emb_base": float(cfg.rope_base), "rotary_pct": 1.0}}.get(architecture(cfg))
    if legacy:
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
        (out / "config.json").write_text(json.dumps({**config, **legacy}, indent=2), encoding="utf-8")
    if tokenizer.kind == "bpe":  # tinygpt's tokenizer.json is already a Hugging Face one (GPT-2's byte-level BPE)
        (out / "tokenizer.json").write_text(tokenizer.to_json(), encoding="utf-8")
    else:
        # (written by Python, not tokenizers' save: its Rust side takes only UTF-8 paths)
        (out / "tokenizer.json").write_text(char_tokenizer(tokenizer.chars).to_str(pretty=True), encoding="utf-8")
    settings = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
                "model_max_length": cfg.block_size}
    (out / "tokenizer_config.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")


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


# ---------------------------------------------------------------- GGUF
def gguf_vocab(chars: list[str]) -> tuple[list[str], list[str]]:
    """Tokens and merges of a byte-level BPE vocabulary with one token per character, ids kept.

    A character of several UTF-8 bytes is put together by a chain of merges (its first two
    bytes, then that and the third, ...); every chain starts at a lead byte, so no merge ever
    joins two characters. The first merge joins two 0xF5 bytes, which valid UTF-8 never holds:
    it never applies, and keeps the list from being empty (llama.cpp needs one)."""
    sym = BYTE_SYMBOL  # GPT-2's byte-level alphabet, in which llama.cpp's "gpt2" vocabulary writes token text
    tokens, merges = [], {f"{sym[0xF5]} {sym[0xF5]}": None}
    for c in chars:
        parts = [sym[b] for b in c.encode("utf-8", "surrogatepass")]
        tokens.append("".join(parts))
        for n in range(1, len(parts)):
            merges.setdefault(f"{''.join(parts[:n])} {parts[n]}", None)
    return tokens, list(merges)


# llama.cpp's end-of-text id for a "gpt2" vocabulary that names none (its llama-vocab.cpp): an id in the vocabulary
# always wins over "none", so a character model cannot say it has no such token; the file names one instead
LLAMA_CPP_EOS = 11


def gguf_end_of_text(model, tokenizer) -> int | None:
    """The id a character model's GGUF file names as its end-of-text token: llama.cpp stops a generation there and
    --ignore-eos bans it, so it is the character the model itself writes least: the least probable, summed over
    4,096 characters it samples (seeded: the same file each time). Left to llama.cpp's default (id 11) had it
    'a' for a book in lower case, every generation ending at its first 'a'. None where the vocabulary is 11
    characters or fewer: llama.cpp then has no end-of-text token, and none is named."""
    import torch

    if tokenizer.kind != "char" or tokenizer.vocab_size <= LLAMA_CPP_EOS:
        return None
    gen, mass, cache = torch.Generator().manual_seed(0), torch.zeros(tokenizer.vocab_size), model.new_cache()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            idx = torch.randint(tokenizer.vocab_size, (64, 1), generator=gen)  # (B, 1): 64 random starts
            for _ in range(min(model.cfg.block_size, 64)):  # (inside the window: the cache never slides)
                logits, _ = model(idx, cache=cache)  # (B, 1, V): one new character of each
                probs = torch.softmax(logits[:, -1].float(), -1)  # (B, V)
                mass += probs.sum(0)  # (a count of what it samples ties at 0 for a dozen rare characters)
                idx = torch.multinomial(probs, 1, generator=gen)
    finally:
        model.train(was_training)
    return int(mass.argmin())


def to_gguf(model, tokenizer, out: Path, eos: int | None = None) -> None:
    """Write a GGUF file (float32) at ``out``; ``eos``: its end-of-text id (gguf_end_of_text's, found here if None)."""
    import gguf

    if tokenizer.kind != "char":  # (llama.cpp's pre-tokenizer for it is not pinned down here: refused, not guessed)
        raise SettingsError("GGUF export takes character models only; export a BPE model with --to hf")
    cfg, arch = model.cfg, architecture(model.cfg)
    w = gguf.GGUFWriter(str(out), arch)
    w.add_name(os.fsencode(out.stem).decode("utf-8", "replace"))  # (GGUF strings are UTF-8; a file name may not be)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    shape = [(w.add_context_length, cfg.block_size), (w.add_embedding_length, cfg.n_embd), (w.add_block_count, cfg.n_layer),
             (w.add_feed_forward_length, cfg.ffn_hidden), (w.add_head_count, cfg.n_head)]
    if arch == "gpt2":
        shape.append((w.add_layer_norm_eps, 1e-5))
    elif arch == "gptneox":  # the blocks one after the other, RoPE on every dim of a head
        shape += [(w.add_layer_norm_eps, 1e-5), (w.add_parallel_residual, False), (w.add_vocab_size, cfg.vocab_size),
                  (w.add_rope_freq_base, float(cfg.rope_base)), (w.add_rope_dimension_count, cfg.n_embd // cfg.n_head)]
    else:
        shape += [(w.add_head_count_kv, cfg.n_head), (w.add_layer_norm_rms_eps, 1e-6), (w.add_vocab_size, cfg.vocab_size),
                  (w.add_rope_freq_base, float(cfg.rope_base)), (w.add_rope_dimension_count, cfg.n_embd // cfg.n_head)]
    tokens, merges = gguf_vocab(tokenizer.chars)
    vocab = [(w.add_tokenizer_model, "gpt2"), (w.add_tokenizer_pre, "default"), (w.add_token_list, tokens),
             (w.add_token_types, [gguf.TokenType.NORMAL] * len(tokens)), (w.add_token_merges, merges),
             (w.add_add_bos_token, False), (w.add_add_eos_token, False)]
    eos = gguf_end_of_text(model, tokenizer) if eos is None else eos
    if eos is not None:
        vocab.append((w.add_eos_token_id, eos))
    for add, value in shape + vocab:
        add(value)
    for name, t in tensors(model, gguf=True).items():
        w.add_tensor(name, t.numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------- writing in one step
def earlier_export(path: Path) -> bool:
    """Whether ``path`` is what an export writes, so that --force may replace it: a GGUF file,
    or a folder of nothing but an HF export's files (never a link, a device, or a folder of yours)."""
    if path.is_symlink():
        return False
    if path.is_file():
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    return path.is_dir() and all(p.is_file() and not p.is_symlink() and p.name in HF_FILES for p in path.iterdir())


HF_FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json"}


def write_whole(out: Path, force: bool, write) -> None:
    """Call ``write(path)`` on a temporary path beside ``out``, then rename it to ``out``: a
    failure leaves nothing half-written, and an existing ``out`` is replaced only with force,
    and only if it is an earlier export."""
    from safetensors import SafetensorError

    out = Path(out).expanduser().absolute()
    if os.path.lexists(out) and not force:
        raise SettingsError(f"{out} already exists; add --force to replace it")
    if os.path.lexists(out) and not earlier_export(out):
        raise SettingsError(f"{out} is not an earlier export, so even --force leaves it alone: pick another name")
    clear_leftovers(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{temp_stem(out.name)}.{os.getpid()}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise SettingsError(f"cannot write in {out.parent}: {e.strerror or e}") from None
    try:
        new, old = tmp / out.name, tmp / "replaced"
        write(new)
        for p in new.iterdir() if new.is_dir() else [new]:  # (safetensors 0.8 writes its file 0600)
            os.chmod(p, new_file_mode())
        if os.path.lexists(out):
            os.replace(out, old)
        try:
            os.replace(new, out)
        except OSError:
            if os.path.lexists(old):
                os.replace(old, out)  # put the old one back
            raise
    except OSError as e:
        raise SettingsError(f"cannot write {out}: {e.strerror or short_write(e)}") from None
    except SafetensorError as e:  # (a full disk while transformers saves the weights: not an OSError)
        raise SettingsError(f"cannot write {out}: {str(e).split('I/O error: ')[-1].splitlines()[0][:160]}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def temp_stem(name: str, limit: int = 64) -> str:
    """OUT's name cut to ``limit`` bytes in its temporary folder's: a legal 255-byte one's was "File name too long"."""
    while len(os.fsencode(name)) > limit:
        name = name[:-1]
    return name


def clear_leftovers(out: Path) -> None:
    """Remove what an export killed mid-write (kill -9, a power cut) left beside ``out``: its temporary
    folder, named for its process, which is gone. A live export's folder is left alone."""
    for p in out.parent.glob(f".{glob.escape(stem := temp_stem(out.name))}.*.tmp"):
        # .NAME.PID.RANDOM.tmp, read from its end: .m.2.PID.RANDOM.tmp is a (live) export's to m.2, not pid 2's to m
        name, pid, _ = (p.name[: -len(".tmp")].rsplit(".", 2) + ["", ""])[:3]
        if name != f".{stem}" or not (pid.isascii() and pid.isdigit()) or p.is_symlink() or not p.is_dir():
            continue
        try:
            os.kill(int(pid), 0)  # (signal 0: only asks whether the process exists)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass  # another user's live process, or no pid at all


def short_write(e: OSError) -> str:
    """numpy's OSError for a write the disk cut short has no errno: "16384 requested and 4528 written"."""
    return f"{e} (a short write: is the disk full?)" if "written" in str(e) else str(e)
