"""Reading a nanoGPT checkpoint (ckpt.pt) and its vocabulary, for `tinygpt convert`.

A .pt file is a pickle, which can run any code when loaded: this is the one place tinygpt reads
one, with ``torch.load(weights_only=True)`` (tensors and plain data, nothing else). The vocabulary
comes from the dataset's meta.pkl, read by an unpickler that allows no class or function at all,
or from the training text as nanoGPT's prepare.py builds it. Only nanoGPT's GPT layout is accepted,
every tensor accounted for; anything else is refused rather than guessed.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import warnings
from pathlib import Path

from tinygpt_tui.engine.files import check_tensors, expected_shapes, open_regular, read_bytes
from tinygpt_tui.errors import CheckpointError

MAX_PT_BYTES = 8 * 1024**3
MAX_META_BYTES = 64 * 1024**2


class _PlainDataUnpickler(pickle.Unpickler):
    """Dicts, lists, tuples, strings and numbers only: any class or function is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent references are not plain data")


def read_meta(path: Path) -> list[str]:
    """The vocabulary from nanoGPT's meta.pkl ({'vocab_size', 'itos', 'stoi'})."""
    raw = read_bytes(path, path.name, MAX_META_BYTES)  # a regular file, bounded (a FIFO or /dev/zero is refused)
    try:
        meta = _PlainDataUnpickler(io.BytesIO(raw)).load()
    except Exception as e:  # UnpicklingError, EOFError, ValueError... from a malformed or hostile file
        raise CheckpointError(f"{path.name} is not a plain-data nanoGPT meta.pkl ({str(e).splitlines()[0][:100] if str(e) else type(e).__name__})") from None
    itos = meta.get("itos") if isinstance(meta, dict) else None
    if isinstance(itos, dict) and itos and all(isinstance(k, int) for k in itos) and sorted(itos) == list(range(len(itos))):
        chars = [itos[i] for i in range(len(itos))]
    else:
        stoi = meta.get("stoi") if isinstance(meta, dict) else None
        if not (isinstance(stoi, dict) and stoi and sorted(stoi.values()) == list(range(len(stoi)))):
            raise CheckpointError(f"{path.name} has no character vocabulary (itos or stoi); is it a character-level dataset's meta.pkl?")
        chars = [c for c, _ in sorted(stoi.items(), key=lambda kv: kv[1])]
    if not all(isinstance(c, str) and len(c) == 1 for c in chars):
        raise CheckpointError(f"{path.name} is not a character vocabulary (entries must be single characters; BPE models can't be converted)")
    return chars


def load_pt(src: Path):
    """A nanoGPT checkpoint: a regular file of at most MAX_PT_BYTES, loaded by torch.load(weights_only=True)."""
    import torch

    fd = open_regular(src, src.name)
    if os.fstat(fd).st_size > MAX_PT_BYTES:
        os.close(fd)
        raise CheckpointError(f"{src.name} is more than the {MAX_PT_BYTES:,} bytes tinygpt reads as a nanoGPT checkpoint")
    head = os.pread(fd, 4, 0)
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):  # torch.save's zip, or an older torch's pickle
        os.close(fd)
        raise CheckpointError(f"{src.name} is not a PyTorch checkpoint: neither the zip archive torch.save writes nor a pickle")
    try:
        with os.fdopen(fd, "rb") as f, warnings.catch_warnings():  # e.g. "pickle protocol 4": noise around the answer
            warnings.simplefilter("ignore")
            return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's own text opens with advice to load it unsafely (weights_only=False): only what it refused is kept
        why = str(e).split("WeightsUnpickler error:", 1)[-1] if "WeightsUnpickler error:" in str(e) else ""
        first = next((ln.strip()[:160] for ln in why.splitlines() if ln.strip()), "refused")
        raise CheckpointError(
            f"{src.name} needs more than tensors and plain data to load, so it was refused unread by "
            f"torch.load(weights_only=True) ({first})"
        ) from None
    except Exception as e:  # a truncated zip, not a torch file at all, ...
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{src.name} is not a readable PyTorch checkpoint ({first})") from None


def state_and_args(obj) -> tuple[dict, dict, dict]:
    import torch

    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        sd, args = obj["model"], obj.get("model_args") if isinstance(obj.get("model_args"), dict) else {}
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd, args = obj, {}
    else:
        raise CheckpointError("this is not a nanoGPT checkpoint: expected a dict with 'model' (a state dict) and 'model_args'")
    out = {}
    for k, v in sd.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CheckpointError("the model state holds something other than named tensors")
        out[k.removeprefix("_orig_mod.").removeprefix("module.")] = v  # torch.compile and DDP wrappers
    extra = {k: obj.get(k) for k in ("iter_num", "best_val_loss")} if isinstance(obj, dict) else {}
    return out, args, extra


def map_nanogpt(sd: dict, args: dict, n_head: int | None):
    """(GPTConfig, tinygpt state dict) from a nanoGPT state dict, or a CheckpointError saying what doesn't fit."""
    from tinygpt_tui.config import ConfigError, GPTConfig

    sd = dict(sd)
    for k in [k for k in sd if re.fullmatch(r"transformer\.h\.\d+\.attn\.(bias|masked_bias)", k)]:
        del sd[k]  # the causal-mask buffer of older nanoGPT versions, not a weight
    for need in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight"):
        if need not in sd:
            raise CheckpointError(f"no {need}: this is not a nanoGPT GPT (tinygpt converts only that layout)")
    wte, wpe = sd["transformer.wte.weight"], sd["transformer.wpe.weight"]
    if wte.dim() != 2 or wpe.dim() != 2 or wpe.shape[1] != wte.shape[1]:
        raise CheckpointError("embedding tensors have unexpected shapes")
    V, C = wte.shape
    T = wpe.shape[0]
    layers = sorted({int(m.group(1)) for k in sd if (m := re.match(r"transformer\.h\.(\d+)\.", k))})
    L = len(layers)
    if layers != list(range(L)) or L == 0:
        raise CheckpointError("the transformer blocks are not numbered 0..n-1")
    bias = "transformer.ln_f.bias" in sd
    H = args.get("n_head") if isinstance(args.get("n_head"), int) else n_head
    if n_head is not None and H != n_head:
        raise CheckpointError(f"--n-head {n_head} contradicts the checkpoint's model_args n_head {H}")
    if not H:
        raise CheckpointError("the checkpoint has no model_args, and the number of heads can't be read from shapes: give --n-head")
    for key, value in (("n_layer", L), ("n_embd", C), ("block_size", T), ("bias", bias)):
        if key in args and args[key] != value:
            raise CheckpointError(f"model_args says {key}={args[key]!r} but the tensors say {value!r}")
    if "vocab_size" in args and args["vocab_size"] != V:
        raise CheckpointError(f"model_args says vocab_size={args['vocab_size']!r} but the embedding has {V} rows")
    fc = sd.get("transformer.h.0.mlp.c_fc.weight")
    if fc is None or fc.dim() != 2 or fc.shape[1] != C:
        raise CheckpointError("no usable transformer.h.0.mlp.c_fc.weight: not a nanoGPT GPT")
    hidden = fc.shape[0]
    head = sd.pop("lm_head.weight", None)
    tied = head is None or (head.shape == wte.shape and bool((head == wte).all()))
    dropout = args.get("dropout", 0.0)
    dropout = float(dropout) if isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout < 1 else 0.0
    try:
        cfg = GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=C, dropout=dropout, bias=bias,
                        pos_encoding="learned", ffn="gelu", norm="layernorm", tie_weights=tied, mlp_ratio=hidden / C).validate()
    except ConfigError as e:
        raise CheckpointError(f"the checkpoint's shape does not fit tinygpt: {e}") from None
    if cfg.ffn_hidden != hidden:
        raise CheckpointError(f"feed-forward width {hidden} can't be expressed by tinygpt (it rounds to multiples of 8)")

    from tinygpt_tui.engine.export import gpt2_layers

    names = {"transformer.wte.weight": "tok_emb.weight", "transformer.wpe.weight": "pos_emb.weight"}
    for ours, theirs, _, _ in gpt2_layers(cfg):  # nanoGPT's names are GPT-2's (its layers are Linear, not Conv1D)
        names.update({f"{theirs}.weight": f"{ours}.weight", f"{theirs}.bias": f"{ours}.bias"})
    unknown = [k for k in sd if k not in names]
    if unknown:
        raise CheckpointError(f"tensor {unknown[0][:80]} has no place in a nanoGPT GPT ({len(unknown)} such); not converted")
    out = {names[k]: v.detach().float().contiguous() for k, v in sd.items()}
    if not tied:
        out["head.weight"] = head.detach().float().contiguous()
    check_tensors({k: ("F32", tuple(v.shape)) for k, v in out.items()}, expected_shapes(cfg), "the checkpoint", "this configuration")
    return cfg, out
