"""A corpus's text: which files, read in chunks, scanned once (engine/prepare.py encodes it).

A corpus is a file, a folder of .txt files (not its subfolders, nor hidden files) or a glob
('books/*.txt'): its files sorted by path. engine/prepare.py puts each file's first 90% of characters
in the train split and its last 10% in the validation split (every book is in both), the files of a
split joined by SEPARATOR: for a corpus of one file, exactly what data.Corpus does in memory.

Text is read in chunks (never a whole file in memory) ending at a line's end, normalized as
data.normalize_text does (no BOM; \r\n and \r as \n), refused if binary or not UTF-8, and refused if
the file changes while it is read (its size or mtime). The scan of a corpus (each file's size, mtime,
sha256, characters and distinct characters) is kept in its cache folder's source.json and reused for
a file whose size and mtime are unchanged.
"""

from __future__ import annotations

import contextlib
import glob as globlib
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from tinygpt_tui.engine.encodings import garbled
from tinygpt_tui.engine.files import KINDS_OF_FILE, MiB, atomic_write, cache_dir, not_text, not_utf8, open_regular, read_json
from tinygpt_tui.errors import CorpusError, TinyGPTError

ENV_PREPARED_DIR = "TINYGPT_PREPARED_DIR"
SEPARATOR = "\n\n"  # between two files of a split
CHUNK = 8 * MiB  # bytes read at a time
MAX_SOURCE_BYTES = 1 << 40  # a corpus of up to 1 TiB
FORMAT = "tinygpt-prepared/1"


# ----------------------------------------------------------------- events
@dataclass
class Progress:
    stage: str  # "scanning", "learning" (a BPE tokenizer: the text read), "merging" (its merges), "waiting" (for another
    # process preparing it), "encoding" or "verifying"
    done: int  # bytes of this stage done ...
    total: int  # ... of this many (0: a stage nothing measures, the merges: no share done, no time left)
    file: str = ""  # the file under way

    def record(self) -> dict:  # (as engine/train.py's events: a run yields these first; `tinygpt train --jsonl` prints them)
        return {"event": "prepare", **vars(self)}


STAGE_WORDS = {"scanning": "scanning the corpus", "learning": "reading it for the BPE", "merging": "working out the BPE's merges",
               "encoding": "encoding it to tokens", "verifying": "checking the token files",
               "waiting": "waiting for another process preparing this corpus"}  # (the CLI's bar and the app say them)


def prepared_dir() -> Path:
    """Where prepared corpora live: $TINYGPT_PREPARED_DIR, else $XDG_CACHE_HOME/tinygpt/prepared (~/.cache/...)."""
    if os.environ.get(ENV_PREPARED_DIR):
        return Path(os.environ[ENV_PREPARED_DIR]).expanduser()
    folder = cache_dir()  # (a relative $XDG_CACHE_HOME is ignored, as the XDG spec says: see engine/files.py)
    if folder is None:
        raise CorpusError(f"no folder for prepared corpora: set ${ENV_PREPARED_DIR} or $XDG_CACHE_HOME (there is no home folder)")
    return folder / "prepared"


# ----------------------------------------------------------------- the source: which files
def source_files(spec: str) -> list[Path]:
    """The files of a corpus: a file, a folder's .txt files, or a glob's matches, sorted."""
    if not str(spec):
        from tinygpt_tui.engine.corpora import EMPTY_CORPUS

        raise CorpusError(EMPTY_CORPUS)
    try:
        files = _source_files(spec)
    except OSError as e:  # a folder without read or search permission on the way
        raise CorpusError(f"cannot read the corpus {spec}: {e.strerror or e}") from None
    bad = next((f for f in files if any("\ud800" <= c <= "\udfff" for c in str(f))), None)
    if bad is not None:  # (its name goes into source.json, config.json and the model card, all UTF-8)
        raise CorpusError(f"the path {bad} is not UTF-8 text: rename the file or its folder")
    return files


def _source_files(spec: str) -> list[Path]:
    p = Path(os.path.expanduser(str(spec)))
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() == ".txt" and f.is_file() and not f.name.startswith("."))
        if not files:
            raise CorpusError(f"corpus is a directory without .txt files, not a text file: {p}")
        return [f.resolve() for f in files]
    if p.exists():
        return [p.resolve()]
    if p.is_symlink():  # a link that loops or leads nowhere: say which
        os.close(open_regular(p, "corpus", CorpusError))
    if any(c in str(spec) for c in "*?["):
        matches = globlib.glob(os.path.expanduser(str(spec)))
        files = sorted(Path(f).resolve() for f in matches if Path(f).is_file())
        if not files and matches:  # (a FIFO, a device, a link that loops: matched, and never to be read; not "no file")
            os.close(open_regular(sorted(matches)[0], "corpus", CorpusError))  # (says what the first one is)
        if not files:
            raise CorpusError(f"no file matches {spec}")
        return files
    raise CorpusError(f"corpus not found: {p}")


def stat_source(p: Path) -> os.stat_result:
    try:
        st = p.stat()
    except OSError as e:
        raise CorpusError(f"cannot read {p}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):  # (/dev/zero and a FIFO have no size: they read as "empty", or never end)
        kind = next((name for test, name in KINDS_OF_FILE if test(st.st_mode)), "not a regular file")
        raise CorpusError(f"corpus is {kind}, not a regular file: {p}")
    return st


def look_first(spec: str) -> None:
    """The corpus's quick checks (its files there and readable, none empty, each starting as UTF-8 text), so
    that a wrong corpus is said before the slow work: the machine's first probe took 10 s before saying it."""
    for p in source_files(spec):
        st = stat_source(p)
        if st.st_size == 0:
            raise CorpusError(f"corpus is empty: {p}")
        with contextlib.closing(read_chunks(FileInfo(str(p), st.st_size, st.st_mtime_ns), chunk=1 << 16)) as chunks:
            first = next(chunks, None)
        if first is not None and first[2] == st.st_size and not first[1].strip():  # (the whole file read: said here, before
            raise CorpusError(f"corpus holds only whitespace: {p}")               # the run's notes, as one line)


def files_line(spec: str) -> str | None:
    """Which files a folder or a glob gives, in a line ("corpus books: reads 2 .txt file(s); left out, not .txt: a.md");
    None for one file. A run named none of them, and a folder's other files were left out without a word."""
    p, files = Path(os.path.expanduser(str(spec))), source_files(spec)
    if not p.is_dir():
        return None if p.exists() else f"corpus {spec}: reads {len(files):,} file(s) that match"
    others = sorted(f.name for f in p.iterdir() if f.is_file() and not f.name.startswith(".") and f.suffix.lower() != ".txt")
    more = f" and {len(others) - 3:,} more" if len(others) > 3 else ""
    return f"corpus {p}: reads {len(files):,} .txt file(s)" + (f"; left out, not .txt: {', '.join(others[:3])}{more}" if others else "")


def corpus_name(spec: str) -> str:
    p = Path(os.path.expanduser(str(spec)))
    return p.parent.name or "corpus" if any(c in str(spec) for c in "*?[") and not p.exists() else p.stem or p.name


@dataclass
class FileInfo:
    path: str
    size: int
    mtime_ns: int
    sha256: str = ""
    chars: int = 0  # after normalization (no BOM, \r\n and \r as \n)
    charset: str = ""  # its distinct characters, sorted

    def same_stat(self, st: os.stat_result) -> bool:
        return st.st_size == self.size and st.st_mtime_ns == self.mtime_ns


@dataclass
class Source:
    spec: str
    files: list[FileInfo]
    folder: Path  # its cache folder

    @property
    def name(self) -> str:
        return corpus_name(self.spec)

    @property
    def sha256(self) -> str:
        """The file's sha256 for one file; for several, of their sha256s and names (order matters)."""
        if len(self.files) == 1:
            return self.files[0].sha256
        return hashlib.sha256("".join(f"{f.sha256}  {Path(f.path).name}\n" for f in self.files).encode()).hexdigest()

    @property
    def charset(self) -> list[str]:
        """Every character of the corpus (the separator's too, for several files): a character vocabulary."""
        chars = set("".join(f.charset for f in self.files)) | (set(SEPARATOR) if len(self.files) > 1 else set())
        return sorted(chars)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def texts(self, chunk: int = CHUNK) -> Iterator[str]:
        """The corpus's text, normalized, in chunks ending at a line's end where one is near (e.g. to
        train a subword tokenizer on): files in order, SEPARATOR between them."""
        for i, f in enumerate(self.files):
            if i:
                yield SEPARATOR
            for _, text, _ in read_chunks(f, 0, chunk):
                yield text


# ----------------------------------------------------------------- reading text in chunks
def read_chunks(f: FileInfo, offset: int = 0, chunk: int = CHUNK) -> Iterator[tuple[bytes, str, int]]:
    """(raw bytes, normalized text, offset after them) from ``offset``, each ending at a line's end
    (else at a whole character, never between \\r and \\n); refuses binary, non-UTF-8 and a changed file."""
    fd = open_regular(f.path, "corpus", CorpusError)
    try:
        if not f.same_stat(os.fstat(fd)):
            raise changed(f.path)
        os.lseek(fd, offset, os.SEEK_SET)
        carry, pos = b"", offset
        while True:
            raw = os.read(fd, min(chunk, f.size - pos)) if pos < f.size else b""  # (no further than its size when scanned)
            pos += len(raw)
            buf, at_end = carry + raw, not raw
            if not buf:
                break
            if offset == 0 and (why := not_text(buf)):
                raise CorpusError(f"{f.path} {why}")
            cut = len(buf) if at_end else _cut(buf)
            if cut == 0:  # no line end and no whole character in a full chunk plus its carry: read more
                carry = buf
                continue
            piece, carry = buf[:cut], buf[cut:]
            if b"\x00" in piece:
                raise CorpusError(f"{f.path} looks binary (it contains NUL bytes), not text")
            try:
                text = piece.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CorpusError(f"{f.path} {not_utf8(piece, e, offset)}") from None
            if offset == 0:
                text = text.removeprefix("\ufeff")
                if why := garbled(text):
                    raise CorpusError(f"{f.path} {why}")
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            offset += cut
            yield piece, text, offset
            if at_end:
                break
        if not f.same_stat(os.fstat(fd)) or offset != f.size:
            raise changed(f.path)
    except OSError as e:
        raise CorpusError(f"cannot read {f.path}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _cut(buf: bytes) -> int:
    """Where to end a chunk: after its last \\n, else before an incomplete character or a trailing \\r."""
    nl = buf.rfind(b"\n")
    if nl >= 0:
        return nl + 1
    i = len(buf)
    while i > 0 and buf[i - 1] & 0xC0 == 0x80:  # continuation bytes
        i -= 1
    if i > 0 and buf[i - 1] >= 0xC0:  # the lead byte of a character that may continue in the next chunk
        i -= 1
    while i > 0 and buf[i - 1] == 0x0D:  # \r: its \n may come next
        i -= 1
    return i


def changed(path) -> CorpusError:
    return CorpusError(f"{path} changed while it was being prepared; run again once nothing writes to it")


# ----------------------------------------------------------------- pass 1: the scan
def cache_folder(spec: str) -> Path:
    """The corpus's folder of prepared files (its scan, its token files, its BPEs)."""
    key = hashlib.sha256(os.path.abspath(os.path.expanduser(str(spec))).encode()).hexdigest()[:16]
    return prepared_dir() / f"{corpus_name(spec)[:40]}-{key}"


def scanned(folder: Path) -> dict:
    """What an earlier scan recorded in folder/source.json: path -> FileInfo (nothing where there is none, or it is bad)."""
    with contextlib.suppress(TinyGPTError, TypeError, ValueError, AttributeError, KeyError):
        known = {d["path"]: FileInfo(**d) for d in read_json(folder / "source.json", "source.json", 256 * MiB, CorpusError)["files"]}
        return {k: f for k, f in known.items() if all(count_ok(v) for v in (f.size, f.mtime_ns, f.chars))
                and all(isinstance(v, str) for v in (f.path, f.sha256, f.charset))}
    return {}


def scan(spec: str) -> Iterator[Progress | Source]:
    """The corpus's files with their sha256, characters and character set (from source.json where a
    file's size and mtime are unchanged); yields Progress, then the Source."""
    paths, folder = source_files(spec), cache_folder(spec)
    known = scanned(folder)
    files, todo = [], []
    for p in paths:
        st = stat_source(p)
        if st.st_size > MAX_SOURCE_BYTES:
            raise CorpusError(f"{p} is {st.st_size:,} bytes, more than the {MAX_SOURCE_BYTES:,} tinygpt reads")
        old = known.get(str(p))
        files.append(old if old is not None and old.same_stat(st) else FileInfo(str(p), st.st_size, st.st_mtime_ns))
        if files[-1] is not old:
            todo.append(files[-1])
    total, done = sum(f.size for f in todo), 0
    for f in todo:
        h, seen, chars = hashlib.sha256(), np.zeros(0x110000, dtype=bool), 0
        for raw, text, end in read_chunks(f):
            h.update(raw)
            chars += len(text)
            seen[np.frombuffer(text.encode("ascii" if text.isascii() else "utf-32-le"), np.uint8 if text.isascii() else np.uint32)] = True
            yield Progress("scanning", done + end, total, f.path)
        done += f.size
        f.sha256, f.chars, f.charset = h.hexdigest(), chars, "".join(map(chr, np.flatnonzero(seen)))
        if not f.charset.strip():
            raise CorpusError(f"corpus {'holds only whitespace' if f.charset else 'is empty'}: {f.path}")
    source = Source(str(spec), files, folder)
    if todo or set(known) != {f.path for f in files}:
        write_json(folder / "source.json", {"format": FORMAT, "spec": str(spec), "files": [vars(f) for f in files]})
    return source


def write_json(path: Path, doc: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(doc, ensure_ascii=False, indent=1))
    except (OSError, TinyGPTError) as e:
        raise CorpusError(f"cannot write the prepared corpus to {path.parent}: {getattr(e, 'strerror', None) or e}") from None


def count_ok(v) -> bool:
    return type(v) is int and 0 <= v < 2**62
