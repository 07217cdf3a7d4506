"""`tinygpt convert`: turn a nanoGPT checkpoint (ckpt.pt) into a tinygpt model folder.

A .pt file is a pickle, and unpickling a file from a stranger can run any code.
This command is the one place tinygpt reads one, and only with
``torch.load(weights_only=True)``, which rebuilds tensors and plain data
(dicts, lists, numbers, strings) and refuses everything else. The vocabulary
of a character-level nanoGPT model lives in its dataset's ``meta.pkl``, read
here with an unpickler that allows no classes or functions at all (plain data
only), or is rebuilt from the training text exactly as nanoGPT's prepare.py
builds it (the sorted distinct characters).

Only the nanoGPT GPT layout is accepted, and every tensor must be accounted
for: learned positions, GELU feed-forward, LayerNorm (with or without
biases), tied or untied output. Anything else is refused rather than guessed.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

from tinygpt_tui.errors import CheckpointError, SettingsError

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
    import io

    try:
        raw = path.read_bytes() if path.stat().st_size <= MAX_META_BYTES else None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    if raw is None:
        raise CheckpointError(f"{path} is too large to be a nanoGPT meta.pkl")
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


def _load_pt(src: Path):
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": noise around the one-line answer
            warnings.simplefilter("ignore")
            return torch.load(str(src), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else "refused"
        raise CheckpointError(
            f"{src.name} needs more than tensors and plain data to load, so it was refused unread by "
            f"torch.load(weights_only=True) ({first})"
        ) from None
    except Exception as e:  # a truncated zip, not a torch file at all, ...
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{src.name} is not a readable PyTorch checkpoint ({first})") from None


def _state_and_args(obj) -> tuple[dict, dict, dict]:
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
        for prefix in ("_orig_mod.", "module."):  # torch.compile and DDP wrappers
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
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

    names = {"transformer.wte.weight": "tok_emb.weight", "transformer.wpe.weight": "pos_emb.weight",
             "transformer.ln_f.weight": "norm.weight", "transformer.ln_f.bias": "norm.bias"}
    parts = {"ln_1": "norm1", "ln_2": "norm2", "attn.c_attn": "attn.qkv", "attn.c_proj": "attn.proj",
             "mlp.c_fc": "ffn.up", "mlp.c_proj": "ffn.down"}
    for i in range(L):
        for src, dst in parts.items():
            for w in ("weight", "bias"):
                names[f"transformer.h.{i}.{src}.{w}"] = f"blocks.{i}.{dst}.{w}"
    out, unknown = {}, []
    for k, v in sd.items():
        if k in names:
            out[names[k]] = v.detach().float().contiguous()
        else:
            unknown.append(k)
    if unknown:
        raise CheckpointError(f"tensor {unknown[0][:80]} has no place in a nanoGPT GPT ({len(unknown)} such); not converted")
    if not tied:
        out["head.weight"] = head.detach().float().contiguous()
    from tinygpt_tui.engine.folder import expected_shapes

    want = expected_shapes(cfg)
    for k, shape in want.items():
        if k not in out:
            raise CheckpointError(f"the checkpoint lacks the tensor for {k}")
        if tuple(out[k].shape) != shape:
            raise CheckpointError(f"{k}: shape {list(out[k].shape)}, expected {list(shape)} for this configuration")
    if set(out) - set(want):
        raise CheckpointError(f"unexpected tensor {sorted(set(out) - set(want))[0]}")
    return cfg, out


def run_convert(src, name, models_dir, meta, corpus, n_head, echo=print):
    import torch

    from tinygpt_tui.engine import folder as ckpt
    from tinygpt_tui.data import normalize_text, read_corpus
    from tinygpt_tui.model import GPT
    from tinygpt_tui.tokenizer import CharTokenizer, printable
    from tinygpt_tui.engine.train import check_name

    src = Path(src).expanduser()
    if not src.is_file():
        raise CheckpointError(f"no such checkpoint file: {src}")
    if src.stat().st_size > MAX_PT_BYTES:
        raise CheckpointError(f"{src.name} is larger than {MAX_PT_BYTES // 1024**3} GB; not a tiny model")
    if meta is None and corpus is None:
        raise SettingsError("a character model needs its vocabulary: give --meta data/<dataset>/meta.pkl or --corpus <its input.txt>")
    check_name(name)
    models_dir = Path(models_dir) if models_dir else ckpt.default_models_dir()
    dest = models_dir / name
    if (dest / ckpt.CONFIG).exists():
        raise SettingsError(f"a model named {name!r} already exists in {models_dir}; pick another --name")

    echo(f"reading {printable(str(src))} with torch.load(weights_only=True): only tensors and plain data are rebuilt, no code in the file can run")
    obj = _load_pt(src)
    sd, args, extra = _state_and_args(obj)
    cfg, state = map_nanogpt(sd, args, n_head)
    echo(f"nanoGPT model: {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} dims, context {cfg.block_size}, "
         f"vocabulary {cfg.vocab_size}, bias {cfg.bias}, {'tied' if cfg.tie_weights else 'untied'} output "
         f"-> tinygpt learned positions, gelu, layernorm")

    corpus_doc = {"name": "unknown"}
    if meta is not None:
        chars = read_meta(Path(meta).expanduser())
        how = f"{Path(meta).name} (read as plain data: no classes, no functions)"
    else:
        c = read_corpus(corpus)
        raw = Path(c.path).read_bytes().decode("utf-8")
        chars = sorted(set(raw))  # exactly what nanoGPT's prepare.py builds, before any newline clean-up
        if sorted(set(normalize_text(raw))) != chars:
            echo("note: the text has \\r or a byte-order mark; the vocabulary keeps them as nanoGPT did")
        how = f"the distinct characters of {printable(Path(c.path).name)}, sorted, as nanoGPT's prepare.py builds them"
        corpus_doc = {"name": c.name, "path": c.path, "sha256": c.sha256, "chars": len(c.text)}
    if len(chars) != cfg.vocab_size:
        raise CheckpointError(f"the vocabulary has {len(chars)} characters but the model's embedding has {cfg.vocab_size} rows; "
                              "is this the checkpoint's own dataset?")
    tokenizer = CharTokenizer(chars)
    echo(f"vocabulary: {len(chars)} characters from {how}")

    for k, t in state.items():
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{k} holds NaN or infinite values")
    model = GPT(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (cfg.tie_weights and k == "head.weight")]
    if missing or unexpected:
        raise CheckpointError(f"the mapped weights do not fit the model ({(missing or unexpected)[0]})")
    model.eval()

    step = extra.get("iter_num") if isinstance(extra.get("iter_num"), int) else 0
    best = extra.get("best_val_loss")
    best = float(best) if isinstance(best, (int, float)) or (hasattr(best, "item") and getattr(best, "numel", lambda: 0)() == 1) else None
    doc = {
        "name": name,
        "model": cfg.to_dict(),
        "corpus": corpus_doc,
        "figures": {"step": step, "best_val_loss": best, "val_loss": None, "params": model.num_params()},
        "converted_from": {"format": "nanoGPT ckpt.pt", "file": src.name, "sha256": hashlib.sha256(src.read_bytes()).hexdigest()},
        "command": f"tinygpt convert {src.name} --name {name}",
    }
    lock = ckpt.FolderLock(dest)
    try:
        if (dest / ckpt.CONFIG).exists():
            raise SettingsError(f"a model named {name!r} already exists in {models_dir}; pick another --name")
        ckpt.save_model(dest, model, tokenizer, doc, card=ckpt.render_card(doc))
    finally:
        lock.release()
    echo(f"wrote {printable(str(dest))}: model.safetensors, config.json, vocab.json, README.md "
         f"({model.num_params():,} parameters, step {step:,}); the optimizer state is not carried over, so it can't be resumed")
    echo(f"try it: tinygpt generate {printable(name) if ' ' not in name else repr(printable(name))} --prompt \"ROMEO:\"")
    return dest
