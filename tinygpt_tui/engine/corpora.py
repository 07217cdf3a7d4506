"""The corpus catalog: public texts by name, fetched with a sha256 check or imported from a local file."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tinygpt_tui.data import Corpus, normalize_text
from tinygpt_tui.engine.files import MiB, decode_utf8, new_file_mode, open_regular, read_bytes, read_json, unlink_quietly
from tinygpt_tui.engine.files import sha256_file as file_sha256
from tinygpt_tui.engine.presets import edge_problem
from tinygpt_tui.errors import CorpusError, TinyGPTError
from tinygpt_tui.tokenizer import shell_word

ENV_CORPORA_DIR = "TINYGPT_CORPORA_DIR"
CATALOG_FILE = Path(__file__).resolve().parents[2] / "corpora" / "catalog.json"
MAX_CORPUS_BYTES = 2 * 1024**3
EMPTY_CORPUS = "the corpus given is an empty string: give a text file, a folder, a quoted glob or a corpus name"  # (as a Path: '.')


@dataclass
class CatalogEntry:
    name: str
    title: str
    file: str
    url: str
    sha256: str
    bytes: int = 0


def corpora_dir() -> Path:
    env = os.environ.get(ENV_CORPORA_DIR)
    return Path(env).expanduser() if env else CATALOG_FILE.parent


def catalog() -> dict[str, CatalogEntry]:
    raw = read_json(CATALOG_FILE, "the corpus catalog", MiB, CorpusError)
    keys = {"title", "file", "url", "sha256", "bytes"}  # (its language, license and about are for people reading it)
    return {name: CatalogEntry(name=name, **{k: v for k, v in d.items() if k in keys}) for name, d in raw.items()}


def read_corpus(path) -> Corpus:
    """A corpus file read safely (a regular file, at most MAX_CORPUS_BYTES, text checked as it is read),
    or a one-line CorpusError saying why it can't be used."""
    if not str(path):
        raise CorpusError(EMPTY_CORPUS)
    p = Path(os.path.expanduser(str(path)))
    try:
        if not p.exists() and not p.is_symlink():  # (a link that loops or leads nowhere: read_bytes says which)
            raise CorpusError(f"corpus not found: {p}")
        if p.is_dir():
            raise CorpusError(f"corpus is a directory, not a text file: {p}")
    except OSError as e:  # a folder on the way without search permission
        raise CorpusError(f"cannot read the corpus {p}: {e.strerror or e}") from None
    raw = read_bytes(p, "corpus", MAX_CORPUS_BYTES, CorpusError, text=True)
    if not raw.strip():
        raise CorpusError(f"corpus {'holds only whitespace' if raw else 'is empty'}: {p}")
    text = normalize_text(decode_utf8(raw, "corpus", p, CorpusError))
    if not text.strip():
        raise CorpusError(f"corpus has no text: {p}")
    from tinygpt_tui.engine.encodings import garbled

    if why := garbled(text):
        raise CorpusError(f"corpus {why}: {p}")
    return Corpus(str(p), text, hashlib.sha256(raw).hexdigest())


def own_corpus(doc: dict | None) -> str:
    """The corpus a model's config.json says it was trained on, as resolve_corpus takes it: the recorded path
    while it is there (a file, a folder, or a glob that matches), else its name (a catalog or added corpus)."""
    import glob

    c = doc.get("corpus") if isinstance(doc, dict) and isinstance(doc.get("corpus"), dict) else {}
    path = os.path.expanduser(str(c.get("path") or ""))
    return path if path and (os.path.exists(path) or glob.glob(path)) else str(c.get("name") or "")


def whole_text(spec) -> str:
    """A corpus's text in memory (the inspector's character frequencies and head hints): a file's, or a
    folder's or glob's files read one by one and joined as engine/sources.py joins the files of a split."""
    from tinygpt_tui.engine.sources import SEPARATOR, source_files

    if Path(os.path.expanduser(str(spec))).is_file():
        return read_corpus(spec).text
    return SEPARATOR.join(read_corpus(f).text for f in source_files(str(spec)))


def own_text(folder) -> tuple[str | None, str]:
    """A model folder's own corpus, whole (the inspector's embedding map and head hints): the file or folder it was
    trained on while it is there, else the corpus of its name; or None and why it is not here (how to fetch it)."""
    from tinygpt_tui.engine.folder import read_info

    try:
        return (whole_text(resolve_corpus(own_corpus(read_info(folder).doc))), "") if folder is not None else (None, "no model folder")
    except (TinyGPTError, OSError) as e:
        return None, str(e)


def sha256_file(path: Path) -> str:
    return file_sha256(path, "corpus", CorpusError, MAX_CORPUS_BYTES)


def _copy_into(src: Path, dest: Path, data: bytes | None = None) -> Path:
    """Copy src (or write ``data`` instead) to dest through a new temporary file, fsynced, and a rename (never
    through a link at dest): a full disk or a read-only folder is one line naming dest, a read error one naming
    src, and a corpus there before stays whole."""
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), new_file_mode())  # (mkstemp makes it 0600)
            if data is not None:
                out.write(data)
            else:
                _copy_blocks(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except OSError as e:
        raise CorpusError(f"cannot write {dest}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            unlink_quietly(tmp)
    return dest


def _copy_blocks(src: Path, out) -> None:
    with os.fdopen(open_regular(src, "corpus", CorpusError), "rb") as f:
        while True:
            try:
                block = f.read(MiB)
            except OSError as e:  # (not the write's fault: name the file that could not be read)
                raise CorpusError(f"cannot read {src}: {e.strerror or e}") from None
            if not block:
                return
            out.write(block)


def local_path(entry: CatalogEntry) -> Path:
    return corpora_dir() / entry.file


def is_fetched(entry: CatalogEntry) -> bool:
    return local_path(entry).is_file()


@dataclass
class CorpusListing:
    name: str
    path: Path
    source: str  # "catalog" or "local"
    present: bool
    title: str = ""
    size: int = 0


def list_corpora() -> list[CorpusListing]:
    out, seen = [], set()
    for e in catalog().values():
        p = local_path(e)
        out.append(CorpusListing(e.name, p, "catalog", p.is_file(), e.title, p.stat().st_size if p.is_file() else e.bytes))
        seen.add(p.name)
    d = corpora_dir()
    if d.is_dir():
        for p in sorted(d.glob("*.txt")):
            if p.name not in seen:
                out.append(CorpusListing(p.stem, p, "local", True, p.stem, p.stat().st_size))
    return out


def _there(p: Path) -> bool:
    """Whether p exists (or may: a folder on the way cannot be searched, and reading it will say so)."""
    try:
        p.stat()
    except PermissionError:
        return True
    except OSError:
        return p.is_symlink()  # (a link that loops or leads nowhere: reading it says which)
    return True


def catalog_entry(name: str) -> CatalogEntry | None:
    """The catalog corpus ``name`` names (by name or file name), fetched or not; None for a path or another name."""
    cat = catalog()
    return cat.get(name) or next((e for e in cat.values() if name in (e.file, Path(e.file).stem)), None)


def unfetched(name: str) -> CatalogEntry | None:
    """The catalog corpus ``name`` means where it is not fetched yet (and no file of that name is here), else None."""
    p = Path(os.path.expanduser(str(name)))
    entry = None if _there(p) else catalog_entry(str(name))
    return entry if entry is not None and not is_fetched(entry) else None


def resolve_corpus(name: str) -> Path:
    """A path to a text file, a folder or a glob of them, a catalog corpus (fetched) by name or file name, or a corpus added to
    corpora/ by name or NAME.txt (a model card names its corpus by file: ``--corpus vimmanual.txt``)."""
    import glob

    name = str(name)
    if not name:
        raise CorpusError(EMPTY_CORPUS)
    p = Path(os.path.expanduser(name))
    is_glob = any(c in name for c in "*?[")
    if _there(p) or (is_glob and glob.glob(str(p))):
        return p
    entry = catalog_entry(name)
    if entry is not None:
        if is_fetched(entry):
            return local_path(entry)
        raise CorpusError(f"corpus {entry.name!r} is in the catalog but not fetched yet: `tinygpt corpus fetch {entry.name}` "
                          f"downloads it (add `--from FILE` to take a copy you have); or give a text file's path instead")
    stem = name.removesuffix(".txt")
    if stem and "/" not in stem and (corpora_dir() / f"{stem}.txt").is_file():
        return corpora_dir() / f"{stem}.txt"
    if is_glob:  # (not a corpus added as "book [draft]": engine/prepare.py says it matches nothing)
        return p
    known = ", ".join(c.name for c in list_corpora()) or "none"
    raise CorpusError(f"corpus not found: {name} (not a file; the corpora here: {known})")


def _install(src: Path, entry: CatalogEntry) -> Path:
    got = sha256_file(src)
    if got != entry.sha256:
        raise CorpusError(f"{src} is not {entry.title}: its sha256 is {got[:16]}…, the catalog expects {entry.sha256[:16]}…")
    return _copy_into(src, local_path(entry))


def fetch(name: str, from_file: str | None = None, timeout: float = 30.0) -> Path:
    """Download a catalog corpus (or import a local copy) and verify its sha256."""
    cat = catalog()
    if name not in cat:
        raise CorpusError(f"unknown corpus {name!r}; the catalog has: {', '.join(cat)}")
    entry = cat[name]
    if from_file is not None:
        src = Path(os.path.expanduser(from_file))
        if not src.exists():
            raise CorpusError(f"file not found: {src}")
        return _install(src, entry)
    here = local_path(entry)
    if here.is_file() and sha256_file(here) == entry.sha256:  # fetched before: nothing to download (offline too)
        return here
    corpora_dir().mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{entry.file}.", suffix=".download", dir=corpora_dir())
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(entry.url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        return _install(Path(tmp), entry)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise CorpusError(
            f"cannot download {entry.title} from {entry.url} ({reason}); "
            f"download it yourself and run `tinygpt corpus fetch {name} --from FILE`"
        ) from None
    finally:
        unlink_quietly(tmp)


# Project Gutenberg's books open with its header and close with its licence (about 20,000 characters of legal
# English), between lines like "*** START OF THE PROJECT GUTENBERG EBOOK MOBY DICK ***" and "*** END OF ...", as real
# files write them: any case, spaces doubled or indented, "THIS" and "ETEXT" in older ones.
GUTENBERG = tuple(re.compile(rf"^[ \t]*\*{{3}}[ \t]*{w}[ \t]+OF[ \t]+(?:THE|THIS)[ \t]+PROJECT[ \t]+GUTENBERG[ \t]+E-?(?:BOOK|TEXT)\b.*$",
                             re.M | re.I) for w in ("START", "END"))
# an older book's last line before its END line, which is the project's too: "End of the Project Gutenberg EBook of X"
GUTENBERG_LAST = re.compile(r"(?:\A|\n)[ \t]*End of (?:the |this )?Project Gutenberg\b[^\n]*\s*\Z", re.I)


def gutenberg_book(text: str) -> str | None:
    """The book inside a Project Gutenberg file (what its START and END lines enclose, blank lines at either end
    left out), or None where the text has no such lines or nothing between them. The END line is looked for after
    START (one before it, quoted in the header, would keep the licence)."""
    start = GUTENBERG[0].search(text)
    end = GUTENBERG[1].search(text, start.end() if start else 0)
    if start is None and end is None:
        return None
    body = GUTENBERG_LAST.sub("", text[start.end() if start else 0: end.start() if end else len(text)]).strip("\n")
    return body + "\n" if body.strip() else None


HTML = re.compile(r"\A\ufeff?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S)


def file_note(path: str, gutenberg: bool = True) -> str | None:
    """A line for a run on one file as a newcomer downloads it, else None: an HTML page saved as .txt (its tags
    would be trained on with its text) or, with ``gutenberg``, a Project Gutenberg book (its header and licence
    would). Reads its first and last 64 kB only."""
    p = Path(os.path.expanduser(path))
    try:
        if not p.is_file():
            return None
        with p.open("rb") as f:
            head = f.read(1 << 16).decode("utf-8", "ignore")
            f.seek(max(0, p.stat().st_size - (1 << 16)))
            tail = f.read().decode("utf-8", "ignore")
    except OSError:
        return None
    if HTML.match(head):
        return f"{p.name} is an HTML page: its tags are trained on with its text; save the page as text first (a browser's Save as)"
    if not gutenberg or p.parent.resolve() == corpora_dir().resolve() or not (GUTENBERG[0].search(head) or GUTENBERG[1].search(tail)):
        return None  # (an added corpus is the book alone)
    return (f"{p.name} holds Project Gutenberg's header and licence, trained on with the book; "
            f"`tinygpt corpus add {shell_word(path)}` adds the book alone")


def corpus_notes(corpus: str) -> list[str]:
    """What a run says of its corpus before it trains (`tinygpt train`, the app's training job): which files a folder
    or a glob gives, and file_note's line. None for a corpus the run will refuse: the run says why."""
    from tinygpt_tui.engine.sources import files_line

    try:
        path = str(resolve_corpus(corpus))
        return [line for line in (files_line(path), file_note(path)) if line]
    except (TinyGPTError, OSError):
        return []


def add(path: str, name: str | None = None, force: bool = False, whole: bool = False) -> tuple[Path, int, int]:
    """Copy a text file of your own into corpora/ (checked to be a usable corpus first); force: replace one added before.
    A Project Gutenberg book goes in without the project's header and licence unless ``whole``. Where it went, its
    characters, and the characters left out."""
    if os.path.isdir(os.path.expanduser(path)):
        from tinygpt_tui.engine.sources import source_files

        try:  # (advice to train on a folder train then refuses was a second error)
            source_files(path)
            then = f"a folder of .txt files is trained on where it is, e.g. tinygpt train {shell_word(path)} --name NAME"
        except TinyGPTError:
            then = "nor does it hold .txt files to train on where it is (its subfolders are not read)"
        raise CorpusError(f"corpus add takes one text file, not a folder: {path}; {then}")
    corpus = read_corpus(path)  # raises a clear error for missing, empty, binary or non-UTF-8 files
    if len(set(corpus.text)) < 2:  # (as train would refuse it)
        raise CorpusError(f"{path} holds one distinct character: there is nothing to learn")
    stem = (name or Path(path).stem).removesuffix(".txt")  # (--name mine.txt is mine.txt, not mine.txt.txt)
    if not stem.strip() or any(c in stem for c in '/\\') or not stem.isprintable() or stem.startswith("."):
        raise CorpusError(f"bad corpus name {stem!r}: use letters, digits, spaces, - or _ (no control characters)")
    if why := edge_problem(stem):
        raise CorpusError(f"bad corpus name {stem!r}: it {why}; --name NAME gives it another")
    if any(stem in (e.name, Path(e.file).stem) for e in catalog().values()):
        raise CorpusError(f"{stem!r} is the name of a catalog corpus; pick another --name")
    dest = corpora_dir() / f"{stem}.txt"
    book = None if whole else gutenberg_book(corpus.text)
    data = book.encode("utf-8") if book is not None else None
    sha = hashlib.sha256(data).hexdigest() if data is not None else corpus.sha256
    if dest.exists() and not force and sha256_file(dest) != sha:
        raise CorpusError(f"{dest} already exists with different text; pick another --name, or --force to replace it")
    if book is None:
        return _copy_into(Path(corpus.path), dest), len(corpus.text), 0
    return _copy_into(Path(corpus.path), dest, data), len(book), len(corpus.text) - len(book)
