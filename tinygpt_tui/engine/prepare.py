"""Prepared corpora: a text corpus of any size (engine/sources.py), encoded once into memory-mapped token files.

    for ev in prepare("books/", lambda source: CharTokenizer(source.charset)):
        ...  # Progress events while it works, then one Prepared holding the corpus

Preparing reads the files twice, in chunks: a scan (engine/sources.py: sha256, characters, the set of
characters a character vocabulary needs) and an encoding pass per tokenizer. Both are kept in a cache
folder, prepared_dir()/NAME-KEY/ (KEY: a hash of the corpus's absolute path or pattern):
  source.json        the scan: each file's size, mtime, sha256, characters and character set
  TOKID.train.bin    the train split's token ids, uint16 (uint32 for a vocabulary past 65,535)
  TOKID.val.bin      the validation split's, and TOKID.json their description: the tokenizer (TOKID is
                     a hash of its JSON), the source, the token, character and byte counts, the sha256s
A later run reuses them when each file's size and mtime are unchanged (else its sha256 is compared), and
checks the token files' sha256 before trusting them: a mismatch is an error (the cache was damaged;
`tinygpt corpus prepare CORPUS --force` makes it again). Encoding writes TOKID.*.partial files and
TOKID.progress.json (where it got to, fsynced); a run that stopped continues from there. A file that
changes while it is read, a full disk, bad text: a CorpusError, the partial files removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generator, Iterator

import numpy as np

from tinygpt_tui.data import TRAIN_FRACTION
from tinygpt_tui.engine.files import MiB, open_regular, read_json, sha256_file, unlink_quietly
from tinygpt_tui.engine.sources import (CHUNK, FORMAT, SEPARATOR, Progress, Source, count_ok, prepared_dir,  # noqa: F401
                                        read_chunks, scan, write_json)
from tinygpt_tui.errors import CorpusError, TinyGPTError
from tinygpt_tui.tokenizer import shell_word

CHECKPOINT_BYTES = 256 * MiB  # source bytes between two fsynced progress records
CHECKPOINT_S = 1.0  # at a file's end, at most one a second: each holds every file's fingerprint and costs three fsyncs
TOKEN_FILE = "prepared token file"


@dataclass
class Prepared:
    corpus: "PreparedCorpus"
    reused: bool  # nothing needed encoding


# ----------------------------------------------------------------- the prepared corpus
def tokenizer_id(tokenizer) -> str:
    """The tokenizer's identity: a hash of its JSON (its vocabulary, merges, ...)."""
    return hashlib.sha256(tokenizer.to_json().encode("utf-8")).hexdigest()[:16]


def token_dtype(vocab_size: int):
    """The smallest unsigned type that holds every id (as tokenizer.encode_array writes them)."""
    return np.uint16 if vocab_size <= 65535 else np.uint32


@dataclass
class PreparedCorpus:
    """What data.Dataset reads: like data.Corpus, but the tokens are memory-mapped files."""

    path: str  # the corpus as given: a file, a folder or a glob
    sha256: str
    meta: dict  # TOKID.json
    folder: Path
    name: str = ""
    tokenizer: object = None  # the one it was encoded with
    maps: dict = field(default_factory=dict)

    @property
    def chars(self) -> int:
        return sum(s["chars"] for s in self.meta["splits"].values())

    def split_size(self, name: str) -> tuple[int, int]:
        s = self.meta["splits"][name]
        return s["chars"], s["bytes"]

    def tokens(self, tokenizer) -> tuple[np.ndarray, np.ndarray, list[str]]:
        if tokenizer_id(tokenizer) != self.meta["tokenizer"]["id"]:
            raise CorpusError("this prepared corpus was encoded with another tokenizer")
        return self.map("train"), self.map("val"), list(self.meta.get("dropped", []))

    def map(self, split: str) -> "TokenMap":
        """The split's token ids, memory-mapped read-only: pages are read as windows touch them."""
        if split not in self.maps:
            s = self.meta["splits"][split]
            self.maps[split] = TokenMap(self.folder / s["file"], np.dtype(self.meta["dtype"]), s["tokens"])
        return self.maps[split]


class TokenMap:
    """A token file memory-mapped read-only, indexed like a numpy array (``len``, ``[...]`` gives a copy).
    After each read it hands the pages it mapped back: the kernel maps 64 kB around every window read
    (fault-around), and kept, they would grow a run's memory with each window until the whole file is
    mapped. The pages stay in the page cache; the next read of them maps them again, cheaply."""

    def __init__(self, path: Path, dtype: np.dtype, tokens: int):
        self.mm = None
        if tokens:
            fd = open_regular(path, TOKEN_FILE, CorpusError)
            try:
                self.mm = mmap.mmap(fd, tokens * dtype.itemsize, access=mmap.ACCESS_READ)
            finally:
                os.close(fd)
        self.array = np.frombuffer(self.mm, dtype=dtype, count=tokens) if self.mm else np.zeros(0, dtype)
        self.dtype, self.shape = dtype, self.array.shape

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, key) -> np.ndarray:
        out = np.array(self.array[key])
        if self.mm is not None and hasattr(mmap, "MADV_DONTNEED"):
            self.mm.madvise(mmap.MADV_DONTNEED)
        return out

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)


def _load(source: Source, tid: str) -> dict | None:
    """TOKID.json if it describes this source's files as they are now, else None."""
    try:
        meta = read_json(source.folder / f"{tid}.json", "prepared corpus", 64 * MiB, CorpusError)
    except CorpusError:
        return None
    try:
        splits = meta["splits"]
        ok = (meta["format"] == FORMAT and meta["source"]["sha256"] == source.sha256 and meta["tokenizer"]["id"] == tid
              and meta["dtype"] in ("uint16", "uint32") and [f["sha256"] for f in meta["source"]["files"]] == [f.sha256 for f in source.files]
              and set(splits) == {"train", "val"} and all(splits[s]["file"] == f"{tid}.{s}.bin" and isinstance(splits[s]["sha256"], str)
                                                          and all(count_ok(splits[s][k]) for k in ("tokens", "chars", "bytes")) for s in splits))
    except (KeyError, TypeError, AttributeError):
        ok = False
    return meta if ok else None


_VERIFIED: set = set()  # token files this process has checked (size, mtime and sha256 as recorded)


def _fingerprint(source: Source, meta: dict) -> tuple:
    files = [source.folder / s["file"] for s in meta["splits"].values()]
    return tuple((str(p), *((st.st_size, st.st_mtime_ns) if (st := _stat(p)) else ()), s["sha256"])
                 for p, s in zip(files, meta["splits"].values()))


def _stat(path: Path):
    with contextlib.suppress(OSError):
        return path.stat()


def verify(source: Source, meta: dict) -> Iterator[Progress]:
    """Each token file's size and sha256 against TOKID.json (a CorpusError if either differs)."""
    splits = meta["splits"]
    itemsize = np.dtype(meta["dtype"]).itemsize
    total, done = sum(s["tokens"] * itemsize for s in splits.values()), [0]
    for s in splits.values():
        path = source.folder / s["file"]
        size = path.stat().st_size if path.is_file() else -1
        if size != s["tokens"] * itemsize or sha256_file(path, TOKEN_FILE, CorpusError, progress=done) != s["sha256"]:
            tok = meta.get("tokenizer", {})  # (a BPE's files are prepared again only when the command names that BPE)
            bpe = f" --tokenizer bpe --vocab-size {tok.get('vocab_size')}" if tok.get("type") == "BpeTokenizer" else ""
            raise CorpusError(f"the prepared token file {path} does not match its checksum (damaged?); "
                              f"prepare it again: tinygpt corpus prepare {shell_word(source.spec)}{bpe} --force")
        yield Progress("verifying", done[0], total, str(path))


# ----------------------------------------------------------------- pass 2: encoding
def prepare(spec: str, tokenizer, force: bool = False) -> Iterator[Progress | Prepared]:
    """Prepare a corpus for a tokenizer (an object with vocab_size, encode_array(text) -> (ids, dropped)
    and to_json(), or a function making one from the scanned Source, e.g. a new character vocabulary,
    or returning a generator of Progress events that returns one, e.g. a BPE learned from the text);
    yields Progress events, then Prepared. Reuses what an earlier preparation left when it still fits."""
    source = yield from scan(spec)
    if callable(tokenizer) and not hasattr(tokenizer, "encode_array"):
        tokenizer = tokenizer(source)
        if isinstance(tokenizer, Generator):  # (one that takes a while, e.g. learning a BPE, says how far it got)
            tokenizer = yield from tokenizer
    tid = tokenizer_id(tokenizer)
    with _locked(source.folder) as lock:
        while not lock.take():  # another process prepares it: said, not a stage's figures frozen while it waits,
            yield Progress("waiting", 0, 0, source.spec)  # and said again as it waits: a stop (the app's) is seen
            time.sleep(0.25)
        meta = None if force else _load(source, tid)
        reused = meta is not None
        if reused:
            if _fingerprint(source, meta) not in _VERIFIED:
                yield from verify(source, meta)
                _VERIFIED.add(_fingerprint(source, meta))
        else:
            meta = yield from _encode(source, tokenizer, tid)
            _VERIFIED.add(_fingerprint(source, meta))  # (hashed as they were written)
    yield Prepared(PreparedCorpus(source.spec, source.sha256, meta, source.folder, source.name, tokenizer), reused)


@dataclass
class _Lock:
    fd: int
    taken: bool  # False: another process holds it; take() tries again

    def take(self) -> bool:
        import fcntl

        if not self.taken:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.taken = True
            except BlockingIOError:
                pass
        return self.taken


@contextlib.contextmanager
def _locked(folder: Path):
    """One process prepares a corpus at a time (another waits, then finds it prepared): the lock, to take()."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise CorpusError(f"cannot write the prepared corpus to {folder}: {e.strerror or e}") from None
    try:
        yield _Lock(fd, False)
    finally:
        os.close(fd)


def _encode(source: Source, tokenizer, tid: str) -> Iterator[Progress]:
    folder, dtype = source.folder, token_dtype(tokenizer.vocab_size)
    names = {s: f"{tid}.{s}.bin" for s in ("train", "val")}
    partial = {s: folder / f"{names[s]}.partial" for s in names}
    record = folder / f"{tid}.progress.json"
    fingerprint = [[f.path, f.size, f.mtime_ns, f.sha256] for f in source.files]
    state = _resume_state(record, partial, fingerprint, dtype)
    outs = {}
    try:
        for s in names:
            outs[s] = open(partial[s], "r+b" if state["file"] or state["offset"] else "wb")  # noqa: SIM115 (closed below)
            outs[s].truncate(state["tokens"][s] * np.dtype(dtype).itemsize)
            outs[s].seek(0, os.SEEK_END)
        total = source.size
        done = sum(f.size for f in source.files[: state["file"]]) + state["offset"]
        since, last = 0, time.monotonic()
        for i in range(state["file"], len(source.files)):
            f = source.files[i]
            split_at = int(f.chars * TRAIN_FRACTION)
            if state["offset"] == 0 and i > 0:
                for s in names:
                    _emit(tokenizer, SEPARATOR, outs[s], state, s)
            for raw, text, end in read_chunks(f, state["offset"]):
                k = max(0, min(len(text), split_at - state["chars"]))
                _emit(tokenizer, text[:k], outs["train"], state, "train")
                _emit(tokenizer, text[k:], outs["val"], state, "val")
                state["chars"] += len(text)
                state["offset"] = end
                since += len(raw)
                if since >= CHECKPOINT_BYTES:
                    _checkpoint(outs, record, state, fingerprint, dtype)
                    since, last = 0, time.monotonic()
                try:
                    yield Progress("encoding", done + end, total, f.path)
                except GeneratorExit:  # stopped here, between two chunks (state and files agree): it continues from here
                    with contextlib.suppress(OSError):  # (a full disk: from the last record, as after a kill)
                        _checkpoint(outs, record, state, fingerprint, dtype)
                    raise
            done += f.size
            state.update(file=i + 1, offset=0, chars=0)
            # (a folder of books continues from the next book after a kill; one of 10,000 small files took minutes a checkpoint a file)
            if i + 1 < len(source.files) and time.monotonic() - last >= CHECKPOINT_S:
                _checkpoint(outs, record, state, fingerprint, dtype)
                since, last = 0, time.monotonic()
        for out in outs.values():
            out.flush()
            os.fsync(out.fileno())
            out.close()
        sums, progress = {}, [0]
        for s in names:
            sums[s] = sha256_file(partial[s], TOKEN_FILE, CorpusError, progress=progress)
            yield Progress("verifying", progress[0], sum(state["tokens"].values()) * np.dtype(dtype).itemsize, str(partial[s]))
        meta = {
            "format": FORMAT, "dtype": np.dtype(dtype).name,
            "tokenizer": {"id": tid, "vocab_size": tokenizer.vocab_size, "type": type(tokenizer).__name__},
            "source": {"spec": source.spec, "sha256": source.sha256, "separator": SEPARATOR, "split": "the last 10% of each file",
                       "files": [vars(f) | {"charset": None} for f in source.files]},
            "splits": {s: {"file": names[s], "tokens": state["tokens"][s], "chars": state["chars_split"][s],
                           "bytes": state["bytes"][s], "sha256": sums[s]} for s in names},
            "dropped": state["dropped"][:1000], "prepared": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        for s in names:
            os.replace(partial[s], folder / names[s])
        write_json(folder / f"{tid}.json", meta)  # last: the token files are trusted only once it exists
        unlink_quietly(record)
        return meta
    except BaseException as e:
        for out in outs.values():
            with contextlib.suppress(OSError):
                out.close()
        # a full disk, a quota, a file-size limit; or the source is bad or changed: nothing half-written stays
        if isinstance(e, (OSError, TinyGPTError)):
            for p in (*partial.values(), record):
                unlink_quietly(p)
        if isinstance(e, OSError):
            raise CorpusError(f"cannot write the prepared corpus to {folder}: {e.strerror or e}; the partial files were removed") from None
        raise  # (stopped, by Ctrl+C or a consumer that stopped listening: the partial files and their record stay to continue from)


def _emit(tokenizer, text: str, out, state: dict, split: str) -> None:
    if not text:
        return
    ids, dropped = tokenizer.encode_array(text)
    out.write(np.ascontiguousarray(ids, dtype=token_dtype(tokenizer.vocab_size)).tobytes())
    state["tokens"][split] += len(ids)
    state["chars_split"][split] += len(text)
    state["bytes"][split] += len(text.encode("utf-8"))
    if dropped and len(state["dropped"]) < 1000:
        state["dropped"] = list(dict.fromkeys(state["dropped"] + dropped))


def _checkpoint(outs: dict, record: Path, state: dict, fingerprint: list, dtype) -> None:
    """Make the token files durable up to here, then record where here is (a restart continues from it)."""
    for out in outs.values():
        out.flush()
        os.fsync(out.fileno())
    write_json(record, {"fingerprint": fingerprint, "dtype": np.dtype(dtype).name, **state})


def _resume_state(record: Path, partial: dict, fingerprint: list, dtype) -> dict:
    """Where an interrupted encoding got to, if its record fits these files and the partial files hold
    at least what it recorded; else the start (the partial files are then rewritten)."""
    fresh = {"file": 0, "offset": 0, "chars": 0, "tokens": {"train": 0, "val": 0}, "chars_split": {"train": 0, "val": 0},
             "bytes": {"train": 0, "val": 0}, "dropped": []}
    try:
        state = read_json(record, "progress record", 16 * MiB, CorpusError)
        ok = (state.pop("fingerprint") == fingerprint and state.pop("dtype") == np.dtype(dtype).name
              and set(state) == set(fresh) and all(partial[s].stat().st_size >= state["tokens"][s] * np.dtype(dtype).itemsize
                                                   for s in partial))
    except (CorpusError, KeyError, TypeError, AttributeError, OSError):
        ok = False
    if not ok:
        unlink_quietly(record)
        return fresh
    return state


def until_prepared(events: Iterator, stop=None) -> Generator:
    """prepare()'s Progress events, passed on (``yield from``); returns the prepared corpus, or None when ``stop``
    (a threading.Event) is set before it is handed over: the preparation ends there, and the next one continues from it
    (set as the last of the work was done, or with none to do, the run still trains nothing and saves nothing)."""
    try:
        for ev in events:
            if stop is not None and stop.is_set():
                return None
            if isinstance(ev, Prepared):
                return ev.corpus
            yield ev
    finally:
        events.close()
    raise CorpusError("the corpus was not prepared")


def run_to_end(events: Iterator, on_progress: Callable[[Progress], None] | None = None) -> "PreparedCorpus":
    """Drain prepare()'s events (passing each Progress on); the prepared corpus."""
    for ev in events:
        if isinstance(ev, Prepared):
            return ev.corpus
        if on_progress is not None:
            on_progress(ev)
    raise CorpusError("the corpus was not prepared")
