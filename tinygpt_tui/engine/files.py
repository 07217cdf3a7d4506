"""The one way tinygpt opens a file, and the checks on everything read from a model folder.

A model folder may come from a stranger, so a file's name says nothing about what is behind it:
- writes never follow a symbolic link: a whole file is written to a new temporary file and
  renamed over the name (a rename replaces a link); files appended in place (the lock,
  metrics.jsonl) are opened with O_NOFOLLOW;
- reads accept only regular files (opened with O_NONBLOCK, so a FIFO cannot block the open,
  then checked with fstat); a link to a regular file is read, as a user may make one on purpose;
- reads are bounded per kind of file, on the size and again on what is read; text is checked
  for NUL bytes and UTF-16/32 chunk by chunk, so a huge binary file costs one chunk of memory;
- what is read is validated (types, ranges, finite floats) before any code assumes its shape.
No torch or numpy here: the app lists the models folder before its first frame.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
from pathlib import Path

from tinygpt_tui.config import ConfigError, GPTConfig
from tinygpt_tui.engine.encodings import cjk_encoding, utf16_without_bom
from tinygpt_tui.errors import CheckpointError

MiB = 1024 * 1024
CHUNK = 4 * MiB
BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}
# documents a newcomer gives as a book: said by name (iconv, the advice for a non-UTF-8 text, would garble them)
DOCUMENTS = {b"%PDF-": "a PDF document, not text: extract its text first, e.g. pdftotext book.pdf book.txt",
             b"PK\x03\x04": "a ZIP archive (as a .docx, .epub or .odt is), not text: save or export it as plain text first",
             b"{\\rtf": "an RTF document (rich text, full of markup), not plain text: save or export it as plain text first"}


def not_text(head: bytes) -> str | None:
    """Why a file that starts with these bytes is not UTF-8 text (a document, or UTF-16/32), or None."""
    kind = next((kind for magic, kind in DOCUMENTS.items() if head.startswith(magic)), None)
    if kind:
        return f"is {kind}"
    name = next((name for bom, name in BOMS.items() if head.startswith(bom)), None) or utf16_without_bom(head)
    return f"is {name} text, tinygpt reads UTF-8: convert it first, e.g. iconv -f {name} -t UTF-8" if name else None


KINDS_OF_FILE = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                 (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


# ---------------------------------------------------------------- reading and writing
def open_regular(path, what: str, error=CheckpointError, write: bool = False) -> int:
    """A file descriptor on a regular file (created for a write); anything else is refused by kind."""
    flags = os.O_NONBLOCK | os.O_CLOEXEC | (os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW if write else os.O_RDONLY)
    try:
        fd = os.open(path, flags, 0o666)
    except FileNotFoundError:
        raise error(f"{what} is missing: {path}") from None
    except OSError as e:
        if e.errno == errno.ELOOP and write:
            raise error(f"{what} is a symbolic link, which tinygpt does not write through: {path}") from None
        if e.errno == errno.ELOOP:  # (a read follows links: this one leads back to itself)
            raise error(f"{what} is a symbolic link that loops (too many levels of links): {path}") from None
        if e.errno == errno.EISDIR:
            raise error(f"{what} is a folder, not a file: {path}") from None
        raise error(f"cannot open {what}: {e.strerror or e}: {path}") from None  # (which folder: a read-only one, say)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in KINDS_OF_FILE if test(mode)), "not a regular file")
        raise error(f"{what} is {kind}, not a regular file: {path}")
    os.set_blocking(fd, True)
    return fd


def read_bytes(path, what: str, limit: int, error=CheckpointError, text: bool = False) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (text: no NUL bytes, no UTF-16/32)."""
    fd = open_regular(path, what, error)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise error(f"{what} is {size:,} bytes, more than the {limit:,} tinygpt reads: {path}")
        chunks, total = [], 0
        while chunk := os.read(fd, min(CHUNK, limit + 1 - total)):
            if text and not chunks and (why := not_text(chunk)):
                raise error(f"{what} {why}: {path}")
            if text and b"\x00" in chunk:
                raise error(f"{what} looks binary (it contains NUL bytes), not text: {path}")
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew since fstat
                raise error(f"{what} is more than the {limit:,} bytes tinygpt reads: {path}")
        return b"".join(chunks)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def not_utf8(raw: bytes, e: UnicodeDecodeError, offset: int = 0) -> str:
    """Why bytes are not UTF-8: cut off inside their last character (a copy or download that stopped
    early: converting would garble it), or a bad byte (another encoding: iconv converts it). The example is cp1252,
    not latin1: Latin-1's letters are cp1252's too, and cp1252's curly quotes and dashes (bytes 0x80-0x9f) read
    as Latin-1 become invisible C1 control characters."""
    if e.end == len(raw) and e.reason == "unexpected end of data":
        return (f"ends in the middle of a UTF-8 character (offset {offset + e.start:,}): cut off? "
                "copy or download it again, or drop its last bytes")
    bad = f"is not UTF-8 text (bad byte 0x{raw[e.start]:02x} at offset {offset + e.start:,})"
    if cjk := cjk_encoding(raw):
        return f"{bad}; it reads as {cjk[1]} in {cjk[0]}: convert it first, e.g. iconv -f {cjk[0]} -t utf-8"
    return f"{bad}; convert it from its encoding first, e.g. iconv -f cp1252 -t utf-8 (Windows or Latin-1 text)"


def decode_utf8(raw: bytes, what: str, path, error=CheckpointError) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} {not_utf8(raw, e)}: {path}") from None


def read_text(path, what: str, limit: int, error=CheckpointError) -> str:
    return decode_utf8(read_bytes(path, what, limit, error, text=True), what, path, error)


def read_json(path, what: str, limit: int, error=CheckpointError):
    text = read_text(path, what, limit, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} is not valid JSON ({e.msg.removesuffix(' at')} at line {e.lineno}): {path}") from None
    except (ValueError, RecursionError) as e:  # a 5000-digit number, or nesting past the recursion limit
        raise error(f"{what} is not valid JSON ({str(e).split(';')[0][:90]}): {path}") from None


def append(path, data: str, what: str) -> None:
    """Append to a regular file, never through a link (metrics.jsonl)."""
    fd = open_regular(path, what, write=True)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, data.encode("utf-8"))
    finally:
        os.close(fd)


def new_file_mode() -> int:
    """The mode of an ordinary new file: 0666 less the umask. Read from /proc where it can be: setting the umask to
    learn it leaves a moment in which another thread's new files (a training run's, beside an export) are 0666."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii", errors="replace")
        return 0o666 & ~int(next(ln for ln in status.splitlines() if ln.startswith("Umask:")).split()[1], 8)
    except (OSError, StopIteration, IndexError, ValueError):
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def stage(path: Path, data: bytes | str) -> str:
    """Write data to a new temporary file beside path (never an existing file or link) and fsync it."""
    import tempfile

    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise CheckpointError(f"cannot write to {path.parent}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), new_file_mode())  # (mkstemp makes it 0600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        unlink_quietly(tmp)
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from None
    return tmp


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    tmp = stage(path, data)
    try:
        os.replace(tmp, path)
    except OSError as e:
        unlink_quietly(tmp)
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from None


def sha256_file(path, what: str, error=CheckpointError, limit: int | None = None, progress: list | None = None) -> str:
    """The sha256 of a regular file (a FIFO or a device is refused), read a chunk at a time; one of more
    than ``limit`` bytes is refused; ``progress[0]`` counts the bytes read."""
    h = hashlib.sha256()
    with os.fdopen(open_regular(path, what, error), "rb") as f:
        while True:
            try:
                block = f.read(CHUNK)
            except OSError as e:  # (a disk error, say: one line naming the file)
                raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
            if not block:
                break
            h.update(block)
            if progress is not None:
                progress[0] += len(block)
            if limit is not None and f.tell() > limit:
                raise error(f"{path} is larger than the {limit:,} bytes a {what} may hold")
    return h.hexdigest()


def unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------- validation
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
MUST_BE = {"int": "a whole number from 0 to 2**62", "num": "a finite number", "num?": "a finite number or null",
           "int?": "a whole number from 0 to 2**62, or null", "str": "a string", "scalar?": "text, true/false, null or a number within ±2**62"}
SECTIONS = {
    "figures": {"step": "int", "tokens_seen": "int", "params": "int", "train_time_s": "num", "val_loss": "num?",
                "best_val_loss": "num?", "train_loss": "num?", "val_loss_is": "str", "weights_step": "int"},
    "corpus": {"name": "str", "path": "str", "sha256": "str", "chars": "int"},
    "training": {},  # every value a JSON scalar; TrainConfig.check judges them on --resume
    "lineage": {"from": "str", "path": "str", "corpus": "str", "sha256": "str", "step": "int", "tokenizer": "str"},  # --from
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
            raise CheckpointError(f"config.json: {key} must be {MUST_BE[kind]}")
    for section, fields in SECTIONS.items():
        sec = doc.get(section, {})
        if not isinstance(sec, dict):
            raise CheckpointError(f'config.json: the "{section}" section is not a JSON object')
        for key, v in sec.items():
            if not KINDS[fields.get(key, "scalar?")](v):
                raise CheckpointError(f"config.json: {section}.{str(key)[:40]} is {str(v)[:40]!r}; it must be {MUST_BE[fields.get(key, 'scalar?')]}")
    model = doc.get("model")
    if model is None:
        if isinstance(doc.get("model_type"), str):  # (an export, or a folder from the Hub, given as a model)
            raise CheckpointError(f'config.json has no "model" section: a Hugging Face folder (model_type '
                                  f'{doc["model_type"][:40]!r}); `tinygpt import` makes a model of a GPT-2 one')
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
    if not isinstance(meta, dict) or "step" not in meta:
        raise CheckpointError("the training state is malformed (no step)")
    for key, kind in {"step": "int", "elapsed_s": "num", "tokens_seen": "int", "best_val_loss": "num?", "best_step": "int?", "seed": "int"}.items():
        if key in meta and not KINDS[kind](meta[key]):
            raise CheckpointError(f"the training state is malformed ({key} is {str(meta[key])[:40]!r}; it must be {MUST_BE[kind]})")
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


# ---------------------------------------------------------------- safetensors, read by hand
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2,
               "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit


def read_safetensors_header(path: Path) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict]:
    """{name: (dtype, shape)} and the metadata of a safetensors file, from its header alone.

    The format: an 8-byte little-endian length, that much JSON, then the tensors' bytes. Read here,
    not through the safetensors package, to keep numpy out of listing a folder. The checks are the
    format's own: offsets inside the file tiling the data with no gap or overlap, each tensor's
    byte count matching its dtype and shape. The weights themselves load through safetensors.
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
    out, spans = {}, []
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
        if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[dtype]:
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
    """The weights file's tensors are floating point and exactly the ones the config builds."""
    check_tensors(read_safetensors_header(folder / WEIGHTS)[0], expected_shapes(cfg), WEIGHTS, "the config")


def check_tensors(got: dict, want: dict, what: str, source: str) -> None:
    """``got`` ({name: (dtype, shape)}) holds floating-point tensors with exactly the names and shapes
    of ``want`` ({name: shape}, what ``source`` builds); checked before any tensor is loaded."""
    for k, (dtype, _shape) in got.items():
        if dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"{what}: {k[:80]} is {dtype[:20]}, not floating point")
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing:
        raise CheckpointError(f"{what} lacks {len(missing)} tensors {source} needs, e.g. {missing[0]}")
    if extra:
        raise CheckpointError(f"{what} has tensors {source} does not describe, e.g. {extra[0][:80]}")
    for k, shape in want.items():
        if got[k][1] != shape:
            raise CheckpointError(f"{what}: {k} has shape {list(got[k][1])}, {source} makes it {list(shape)}")


def cache_dir() -> Path | None:
    """tinygpt's cache folder, as every reader of it finds it (the machine probe, prepared corpora, the decoder's
    compile note): $XDG_CACHE_HOME/tinygpt; ~/.cache/tinygpt where it is unset, empty or a relative path (the XDG spec: all
    its paths are absolute, a relative one is ignored; it named a folder under wherever tinygpt was started);
    None without a home to put it in."""
    base = os.path.expanduser(os.environ.get("XDG_CACHE_HOME", ""))
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):  # no HOME and no password entry
            return None
    return Path(base) / "tinygpt"
