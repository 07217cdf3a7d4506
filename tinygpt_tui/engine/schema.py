"""Validation of what a model folder holds, before anything uses it: config.json's sections and
the safetensors header (read here without numpy or torch: the app lists folders before its
first frame)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tinygpt_tui.config import ConfigError, GPTConfig
from tinygpt_tui.errors import CheckpointError

FORMAT = "tinygpt/1"
WEIGHTS = "model.safetensors"


def validate_config_doc(doc) -> GPTConfig:
    if not isinstance(doc, dict):
        raise CheckpointError("config.json must hold a JSON object")
    if doc.get("format") not in (None, FORMAT):
        raise CheckpointError(f"config.json has format {str(doc.get('format'))[:40]!r}; this tinygpt reads {FORMAT}")
    if "model" not in doc:
        raise CheckpointError('config.json has no "model" section')
    try:
        return GPTConfig.from_dict(doc["model"])
    except ConfigError as e:
        raise CheckpointError(f"config.json: {e}") from None
    except TypeError as e:
        raise CheckpointError(f"config.json: bad model section ({e})") from None


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

    def bad(why: str):
        return CheckpointError(f"{WEIGHTS} is not a valid safetensors file ({why})")

    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8:
                raise bad("shorter than its 8-byte header length")
            n = int.from_bytes(head, "little")
            if n > min(size - 8, MAX_HEADER_BYTES):
                raise bad(f"header length {n} runs past the end of the file")
            raw = f.read(n)
    except FileNotFoundError:
        raise CheckpointError(f"{WEIGHTS} is missing in {path.parent}") from None
    except IsADirectoryError:
        raise bad("it is a folder") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {WEIGHTS}: {e.strerror or e}") from None
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
