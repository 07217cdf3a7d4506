"""Validation by schema, in one place, of everything read from a model folder before it is used:
config.json and each of its sections, the vocabulary's size, the training state, metrics.jsonl
records, and the safetensors header (read here without numpy or torch: the app lists folders
before its first frame). Types, ranges, and finiteness of every float; a wrong-typed section is
refused with one line, never reaches code that assumes a dict.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from tinygpt_tui.config import ConfigError, GPTConfig
from tinygpt_tui.engine.safe_io import open_regular
from tinygpt_tui.errors import CheckpointError

FORMAT = "tinygpt/1"
WEIGHTS = "model.safetensors"
BIG = 2**62  # past any real step, token count or parameter count, inside every integer type used


def number(v, lo=-math.inf, hi=math.inf, whole=False) -> bool:
    """A JSON number (not a bool), finite, within [lo, hi]; whole: an integer."""
    if isinstance(v, bool) or not isinstance(v, int if whole else (int, float)):
        return False
    return (whole or math.isfinite(v)) and lo <= v <= hi


# config.json: each section's fields and what they hold (absent is allowed, wrong is not)
KINDS = {
    "int": lambda v: number(v, 0, BIG, whole=True),
    "num": lambda v: number(v),
    "num?": lambda v: v is None or number(v),
    "int?": lambda v: v is None or number(v, 0, BIG, whole=True),
    "str": lambda v: isinstance(v, str),
    "scalar?": lambda v: v is None or isinstance(v, (str, bool)) or number(v, -BIG, BIG),
}
SECTIONS = {
    "figures": {"step": "int", "tokens_seen": "int", "params": "int", "train_time_s": "num", "val_loss": "num?",
                "best_val_loss": "num?", "train_loss": "num?", "val_loss_is": "str", "weights_step": "int"},
    "corpus": {"name": "str", "path": "str", "sha256": "str", "chars": "int"},
    "training": {},  # every value a JSON scalar; TrainConfig.check judges them on --resume
    "versions": {},
}
TOP = {"name": "str", "device": "str", "dtype": "str", "command": "str", "updated": "str", "world_size": "int"}


def validate_config_doc(doc) -> GPTConfig:
    """config.json checked section by section; returns its model configuration."""
    if not isinstance(doc, dict):
        raise CheckpointError("config.json must hold a JSON object")
    if doc.get("format") not in (None, FORMAT):
        raise CheckpointError(f"config.json has format {str(doc.get('format'))[:40]!r}; this tinygpt reads {FORMAT}")
    for key, kind in TOP.items():
        if key in doc and not KINDS[kind](doc[key]):
            raise CheckpointError(f"config.json: {key} is not a {'whole number' if kind == 'int' else 'string'}")
    for section, fields in SECTIONS.items():
        sec = doc.get(section, {})
        if not isinstance(sec, dict):
            raise CheckpointError(f'config.json: the "{section}" section is not a JSON object')
        for key, v in sec.items():
            if not KINDS[fields.get(key, "scalar?")](v):
                raise CheckpointError(f"config.json: {section}.{str(key)[:40]} holds {str(v)[:40]!r}, which is out of place there")
    model = doc.get("model")
    if model is None:
        raise CheckpointError('config.json has no "model" section')
    if not isinstance(model, dict):
        raise CheckpointError('config.json: the "model" section is not a JSON object')
    for key, v in model.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise CheckpointError(f"config.json: model {key} is {v}, not a finite number")
        if type(v) is int and not -BIG <= v <= BIG:
            raise CheckpointError(f"config.json: model {key} is beyond the limit of {BIG}")
    try:
        cfg = GPTConfig.from_dict(model)
    except ConfigError as e:
        raise CheckpointError(f"config.json: {e}") from None
    except TypeError as e:
        raise CheckpointError(f"config.json: bad model section ({e})") from None
    check_vocab_size(cfg.vocab_size, "config.json")
    return cfg


def check_vocab_size(n: int, where: str) -> None:
    if n < 2:
        raise CheckpointError(f"{where}: a vocabulary of {n} character can only repeat it; a model needs at least 2")


def validate_train_state(meta, tensor_names) -> dict:
    """The training state's metadata and tensor names, checked before --resume uses them."""
    if not isinstance(meta, dict) or not number(meta.get("step"), 0, BIG, whole=True):
        raise CheckpointError("the training state is malformed (no step)")
    for key, kind in {"elapsed_s": "num", "tokens_seen": "int", "best_val_loss": "num?", "best_step": "int?", "seed": "int"}.items():
        if key in meta and not KINDS[kind](meta[key]):
            raise CheckpointError(f"the training state is malformed ({key} is {str(meta[key])[:40]!r})")
    if meta.get("elapsed_s", 0) < 0:
        raise CheckpointError("the training state is malformed (elapsed_s is negative)")
    groups, scalars = meta.get("param_groups", []), meta.get("scalars", {})
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups) or not isinstance(scalars, dict):
        raise CheckpointError("the training state is malformed (its optimizer section)")
    for key, v in scalars.items():
        if key.count(".") < 1 or not key.split(".", 1)[0].isdigit() or not number(v):
            raise CheckpointError(f"the training state is malformed (optimizer entry {key[:40]!r})")
    for name in tensor_names:
        parts = name.split(".", 2)
        if not (name.startswith("model.") or (len(parts) == 3 and parts[0] == "opt" and parts[1].isdigit())):
            raise CheckpointError(f"the training state is malformed (a tensor named {name[:60]!r})")
    return meta


def valid_record(r) -> bool:
    """A metrics.jsonl record that a reader (the app's chart, a comparison) can use as it is."""
    if not isinstance(r, dict) or not isinstance(r.get("event"), str):
        return False
    if "step" in r and not number(r["step"], 0, BIG, whole=True):
        return False
    for k, v in r.items():
        if isinstance(v, int) and not isinstance(v, bool) and not -BIG <= v <= BIG:
            return False
        if isinstance(v, float) and not math.isfinite(v) and not (k == "eta_s" and v == math.inf):
            return False
    return True


FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2,
               "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit


def read_safetensors_header(path: Path) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict]:
    """{name: (dtype, shape)} and the metadata of a safetensors file, from its header alone.

    The format is an 8-byte little-endian length, that many bytes of JSON, then the tensors'
    bytes. Reading the header here (rather than through the safetensors package) keeps numpy out
    of listing and checking a folder: the app lists the models folder before its first frame.
    The checks are the format's own: offsets inside the file, tiling the data with no gap or
    overlap, each tensor's byte count matching its dtype and shape. Loading the weights still
    goes through the safetensors package.
    """

    path = Path(path)

    def bad(why: str):
        return CheckpointError(f"{path.name} is not a valid safetensors file ({why})")

    try:
        with os.fdopen(open_regular(path, path.name), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8:
                raise bad("shorter than its 8-byte header length")
            n = int.from_bytes(head, "little")
            if n > min(size - 8, MAX_HEADER_BYTES):
                raise bad(f"header length {n} runs past the end of the file")
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"cannot read {path.name}: {e.strerror or e}") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("its header is not JSON") from None
    if not isinstance(doc, dict):
        raise bad("its header is not a JSON object")
    meta = doc.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise bad("its metadata is not a map of strings")
    data_bytes = size - 8 - n
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    spans = []
    for k, t in doc.items():
        name = str(k)[:80]
        if not isinstance(t, dict):
            raise bad(f"{name} is not described")
        dtype, shape, offsets = t.get("dtype"), t.get("shape"), t.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise bad(f"{name} has an unknown dtype {str(dtype)[:20]!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise bad(f"{name} has a bad shape")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
            raise bad(f"{name} has offsets outside the file")
        numel = 1
        for d in shape:
            numel *= d
        if offsets[1] - offsets[0] != numel * DTYPE_BYTES[dtype]:
            raise bad(f"{name}: {offsets[1] - offsets[0]} bytes for a {dtype} tensor of shape {shape}")
        out[k] = (dtype, tuple(shape))
        spans.append(offsets)
    end = 0
    for start, stop in sorted(spans):
        if start != end:
            raise bad("its tensors overlap or leave gaps")
        end = stop
    if end != data_bytes:
        raise bad("its tensors do not cover the data")
    return out, meta


def _weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    tensors, _ = read_safetensors_header(path)
    for k, (dtype, _shape) in tensors.items():  # refuse integer "weights" before loading anything
        if dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"{WEIGHTS}: {k[:80]} is {dtype[:20]}, not floating point")
    return {k: shape for k, (_dtype, shape) in tensors.items()}


def expected_shapes(cfg: GPTConfig) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of the model a config builds (no torch)."""
    C, V, h = cfg.n_embd, cfg.vocab_size, cfg.ffn_hidden
    up = (2 if cfg.ffn == "swiglu" else 1) * h
    shapes = {"tok_emb.weight": (V, C)}
    if cfg.pos_encoding == "learned":
        shapes["pos_emb.weight"] = (cfg.block_size, C)

    def norm(prefix):
        shapes[f"{prefix}.weight"] = (C,)
        if cfg.norm == "layernorm" and cfg.bias:
            shapes[f"{prefix}.bias"] = (C,)

    for i in range(cfg.n_layer):
        b = f"blocks.{i}"
        norm(f"{b}.norm1")
        norm(f"{b}.norm2")
        for name, shape in (("attn.qkv", (3 * C, C)), ("attn.proj", (C, C)), ("ffn.up", (up, C)), ("ffn.down", (C, h))):
            shapes[f"{b}.{name}.weight"] = shape
            if cfg.bias:
                shapes[f"{b}.{name}.bias"] = (shape[0],)
    norm("norm")
    if not cfg.tie_weights:
        shapes["head.weight"] = (V, C)
    return shapes


def check_weights(folder: Path, cfg: GPTConfig) -> None:
    got = _weight_shapes(folder / WEIGHTS)
    want = expected_shapes(cfg)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing:
        raise CheckpointError(f"{WEIGHTS} lacks {len(missing)} tensors the config needs, e.g. {missing[0]}")
    if extra:
        raise CheckpointError(f"{WEIGHTS} has tensors the config does not describe, e.g. {extra[0][:80]}")
    for k, shape in want.items():
        if got[k] != shape:
            raise CheckpointError(f"{WEIGHTS}: {k} has shape {list(got[k])}, the config says {list(shape)}")
