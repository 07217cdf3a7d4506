"""Prepared corpora (engine/sources.py, engine/prepare.py): files, folders and globs encoded once into
memory-mapped token files, reused, resumed, refused with one line; bits per character in evaluations."""

import contextlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinygpt_tui.data import Corpus, Dataset, normalize_text, split_text
from tinygpt_tui.engine.corpora import read_corpus
from tinygpt_tui.engine.prepare import Prepared, Progress, prepare, run_to_end
from tinygpt_tui.engine.sources import SEPARATOR, FileInfo, read_chunks
from tinygpt_tui.errors import CorpusError
from tinygpt_tui.tokenizer import CharTokenizer

from tests.test_cli import ROOT, assert_one_line_error, tinygpt_inproc

CHARS = lambda source: CharTokenizer(source.charset)  # noqa: E731  (a new run's vocabulary)


@pytest.fixture(autouse=True)
def prepared_dir(tmp_path, monkeypatch) -> Path:
    """Each test its own cache folder."""
    d = tmp_path / "prepared"
    monkeypatch.setenv("TINYGPT_PREPARED_DIR", str(d))
    return d


@pytest.fixture
def books(tmp_path, small_corpus) -> Path:
    """A folder of three "books" (and a file that is not a .txt, left out)."""
    text = small_corpus.read_text(encoding="utf-8")
    d = tmp_path / "books"
    d.mkdir()
    for i, name in enumerate(["b.txt", "a.txt", "c.txt"]):
        (d / name).write_text(text[i * 15_000 : (i + 1) * 15_000], encoding="utf-8")
    (d / "notes.md").write_text("not a book\n", encoding="utf-8")
    return d


def events(spec, tokenizer=CHARS, **kw) -> tuple[list, "Prepared"]:
    evs = list(prepare(str(spec), tokenizer, **kw))
    assert isinstance(evs[-1], Prepared) and all(isinstance(e, Progress) for e in evs[:-1])
    return evs[:-1], evs[-1]


def decoded(corpus, split):
    return corpus.tokenizer.decode(np.asarray(corpus.map(split)).tolist())


# ------------------------------------------------------------------ what a corpus is
def test_one_file_prepares_to_exactly_the_in_memory_dataset(small_corpus):
    """Same tokens, same batches of the same seed, same windows: memory-mapped or not."""
    import torch

    _, done = events(small_corpus)
    mem = read_corpus(small_corpus)
    tok = done.corpus.tokenizer
    assert tok.chars == CharTokenizer.from_text(mem.text).chars
    a, b = Dataset(done.corpus, tok, 32), Dataset(mem, tok, 32)
    assert a.train.dtype == np.uint16 and not isinstance(a.train, np.ndarray)  # (a TokenMap over the file)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.val, b.val)
    for split in ("train", "val"):
        xa, ya = a.batch(split, 8, torch.Generator().manual_seed(5), torch.device("cpu"))
        xb, yb = b.batch(split, 8, torch.Generator().manual_seed(5), torch.device("cpu"))
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and xa.dtype == torch.int64
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a.windows("val", 16, torch.device("cpu")), b.windows("val", 16, torch.device("cpu"))))
    assert done.corpus.sha256 == mem.sha256 and done.corpus.chars == len(mem.text)
    assert a.corpus.split_size("val") == b.corpus.split_size("val") == (len(split_text(mem.text)[1]),) * 2


def test_folder_is_its_sorted_txt_files_each_split_90_10(books):
    """Every book is in both splits: each one's first 90% in train, last 10% in val, joined by the separator."""
    _, done = events(books)
    texts = [(books / n).read_text(encoding="utf-8") for n in ("a.txt", "b.txt", "c.txt")]
    assert decoded(done.corpus, "train") == SEPARATOR.join(split_text(t)[0] for t in texts)
    assert decoded(done.corpus, "val") == SEPARATOR.join(split_text(t)[1] for t in texts)
    files = done.corpus.meta["source"]["files"]
    assert [Path(f["path"]).name for f in files] == ["a.txt", "b.txt", "c.txt"]
    chars, nbytes = done.corpus.split_size("val")
    assert chars == len(decoded(done.corpus, "val")) and nbytes == len(decoded(done.corpus, "val").encode())


def test_a_folder_takes_upper_case_txt_files_too(tmp_path, small_corpus):
    """Gutenberg's downloads are often BOOK.TXT: the folder was "without .txt files"."""
    d = tmp_path / "caps"
    d.mkdir()
    (d / "BOOK.TXT").write_text(small_corpus.read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    (d / "notes.md").write_text("not a book\n", encoding="utf-8")
    _, done = events(d)
    assert [Path(f["path"]).name for f in done.corpus.meta["source"]["files"]] == ["BOOK.TXT"]


def test_glob_picks_its_matches(books):
    _, done = events(books / "[ab].txt")
    assert len(done.corpus.meta["source"]["files"]) == 2 and done.corpus.name == "books"


def test_chunks_never_split_a_character_or_a_crlf():
    """Tiny chunks over text with no line ends, 4-byte characters and \\r\\n: the same text as read whole."""
    import tempfile

    text = "\ufeff" + "a🌸b林\r\nc\rd" * 50 + "é" * 30
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
    st = os.stat(f.name)
    info = FileInfo(f.name, st.st_size, st.st_mtime_ns)
    for chunk in (1, 2, 3, 5, 7, 64):
        assert "".join(t for _, t, _ in read_chunks(info, 0, chunk)) == normalize_text(text)
    os.unlink(f.name)


# ------------------------------------------------------------------ reuse, resume, changes
def test_prepared_once_then_reused_and_redone_when_the_text_changes(books):
    first, done = events(books)
    assert {e.stage for e in first} >= {"scanning", "encoding"} and not done.reused
    again, done2 = events(books)
    assert done2.reused and not [e for e in again if e.stage != "verifying"]
    os.utime(books / "a.txt")  # touched, same text: its sha256 says unchanged
    again, done3 = events(books)
    assert done3.reused and not [e for e in again if e.stage == "encoding"]
    with open(books / "b.txt", "a", encoding="utf-8") as f:
        f.write("\nTHE END\n")
    again, done4 = events(books)
    assert not done4.reused and "THE END" in decoded(done4.corpus, "val")


def test_an_interrupted_preparation_continues_where_it_stopped(books, prepared_dir, tmp_path):
    gen = prepare(str(books), CHARS)
    for ev in gen:
        if ev.stage == "encoding" and ev.file.endswith("c.txt"):
            break  # a Ctrl+C during the last book
    gen.close()
    assert list(prepared_dir.glob("*/*.partial")) and list(prepared_dir.glob("*/*.progress.json"))
    evs, done = events(books)
    first = next(e for e in evs if e.stage == "encoding")
    assert first.file.endswith("c.txt")  # the first two books were not encoded again
    assert not list(prepared_dir.glob("*/*.partial")) and not list(prepared_dir.glob("*/*.progress.json"))
    texts = [(books / n).read_text(encoding="utf-8") for n in ("a.txt", "b.txt", "c.txt")]
    assert decoded(done.corpus, "train") == SEPARATOR.join(split_text(t)[0] for t in texts)


def ctrl_c_while_preparing(corpus, args: list, ready, command: tuple = ("train",)) -> tuple[int, str, str]:
    """`tinygpt train CORPUS ARGS` (or COMMAND ARGS) while this test holds the corpus's prepared folder's lock, as another process
    preparing it would (the run waits there, mid-preparation); Ctrl+C once ready(process, folder). The child starts
    with SIGINT at its default, as from a terminal: a suite run in the background (nohup, `&`) hands its children
    SIGINT ignored, and Python then keeps it ignored. Returns its exit code, stdout and stderr."""
    from tests.conftest import hold_preparation

    folder, lock = hold_preparation(corpus)
    try:
        argv = [*command, str(corpus), *args] if command == ("train",) else [*command, *args]
        p = subprocess.Popen([sys.executable, "-m", "tinygpt_tui.cli.main", *argv], cwd=ROOT, env={**os.environ, "COLUMNS": "200"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 240  # (a bound on a hang, not a timing)
        while not ready(p, folder):
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=0.1)
            assert p.returncode is None, p.communicate()
            assert time.monotonic() < deadline, "the run never reached the lock"
        p.send_signal(signal.SIGINT)
    finally:
        os.close(lock)
    out, err = p.communicate(timeout=240)
    return p.returncode, out, err


@pytest.mark.parametrize("jsonl", [False, True])
def test_ctrl_c_after_the_corpus_is_ready_and_before_the_first_step_says_nothing_was_saved(small_corpus, prepared_dir, tmp_path,
                                                                                           monkeypatch, jsonl):
    """Ctrl+C once the handlers were in, before the run's first step: "stopping: saving a checkpoint", then exit 0
    with nothing more said, and (rightly) nothing saved."""
    from tinygpt_tui.cli import train as cli_train

    installed = cli_train.install_stop_handlers

    def and_ctrl_c(stop, *a, **kw):  # the Ctrl+C lands right after the handlers go in
        installed(stop, *a, **kw)
        stop.set()

    monkeypatch.setattr(cli_train, "install_stop_handlers", and_ctrl_c)
    r = tinygpt_inproc("train", small_corpus, "--name", "x", "--models-dir", tmp_path / "models", "--preset", "tiny",
                       "--max-steps", "5", "--threads", "1", *(["--jsonl"] if jsonl else []))
    assert r.returncode == 130, (r.stdout, r.stderr)
    assert r.stderr.strip().splitlines()[-1] == "stopped before training began: nothing trained, nothing saved", r.stderr
    assert not (tmp_path / "models" / "x").exists()


def test_ctrl_c_while_a_run_prepares_its_corpus_stops_it_before_anything_is_trained(small_corpus, prepared_dir, tmp_path):
    """Ctrl+C during `tinygpt train`'s preparation (minutes for a big corpus) said "stopping: saving a
    checkpoint", let the preparation run to its end, then trained nothing and saved that at step 0."""
    corpus, models = tmp_path / "c.txt", tmp_path / "models"
    corpus.write_bytes(small_corpus.read_bytes())

    def learned(p, folder):  # its BPE: it goes on to encode, and waits for the lock
        return list(folder.glob("bpe300-*.tokenizer.json"))

    code, out, err = ctrl_c_while_preparing(corpus, ["--name", "x", "--models-dir", str(models), "--tokenizer", "bpe", "--vocab-size",
                                                     "300", "--preset", "tiny", "--max-steps", "5", "--threads", "1"], learned)
    assert code == 130, (out, err)
    assert "stopped while preparing the corpus" in err and "Traceback" not in err and not (models / "x").exists()


def test_train_jsonl_prints_the_preparation_as_prepare_records_before_the_start(small_corpus, tmp_path):
    """`tinygpt train --jsonl` printed nothing while it prepared its corpus (minutes for a big one, or a BPE to
    learn), then the run's events. The preparation is "prepare" records now, as the app gets them, before "start"."""
    corpus = tmp_path / "own.txt"  # (its own text: scanned, learned and encoded here, not found prepared)
    corpus.write_text(f"{tmp_path}\n" + small_corpus.read_text(encoding="utf-8"), encoding="utf-8")
    r = tinygpt_inproc("train", corpus, "--name", "j", "--models-dir", tmp_path / "m", "--tokenizer", "bpe", "--vocab-size", "300",
                       "--preset", "tiny", "--block-size", "32", "--max-steps", "2", "--eval-iters", "1", "--sample-chars", "0",
                       "--threads", "1", "--jsonl")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    start = [x["event"] for x in recs].index("start")
    prep = recs[:start]
    assert all(x["event"] == "prepare" and set(x) == {"event", "stage", "done", "total", "file"} for x in prep), prep
    assert "prepare" not in [x["event"] for x in recs[start:]] and recs[-1]["event"] == "finish"
    assert list(dict.fromkeys(x["stage"] for x in prep)) == ["scanning", "learning", "merging", "encoding", "verifying"]
    last = {x["stage"]: x for x in prep}  # each stage's last record: done (the merges: nothing measures them)
    assert all(x["done"] == x["total"] > 0 for stage, x in last.items() if stage != "merging") and last["merging"]["total"] == 0


def waits_for_the_lock(pid: int, folder: Path) -> bool:
    """Whether the process has opened the prepared folder's lock, which this test holds: it waits there, trying it
    (Linux lists a process's open files in /proc/PID/fd)."""
    lock = str(folder / ".lock")
    with contextlib.suppress(OSError):
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == lock for fd in os.listdir(f"/proc/{pid}/fd"))
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="tells a process waiting for a lock by /proc/PID/fd (Linux)")
def test_ctrl_c_while_a_run_from_another_model_prepares_its_corpus_stops_it_too(small_corpus, prepared_dir, tmp_path):
    """With --from A the corpus was prepared inside the run, after the Ctrl+C handler was installed: Ctrl+C
    said "stopping: saving a checkpoint", and once the preparation ended B was saved, trained 0 steps."""
    from tests.conftest import make_model

    corpus, models = tmp_path / "c.txt", tmp_path / "models"
    corpus.write_bytes(small_corpus.read_bytes())
    make_model(models, "a")
    code, out, err = ctrl_c_while_preparing(corpus, ["--name", "b", "--from", "a", "--models-dir", str(models), "--max-steps", "5",
                                                     "--threads", "1"], lambda p, folder: waits_for_the_lock(p.pid, folder))
    assert code == 130, (out, err)
    assert [line for line in err.splitlines() if "stop" in line] == [
        "stopped while preparing the corpus: nothing trained, nothing saved (the next run goes on with the encoding from where it stopped)"]
    assert "Traceback" not in err and not (models / "b").exists()


def test_an_interrupted_preparation_restarts_when_its_source_changed(books, prepared_dir):
    gen = prepare(str(books), CHARS)
    for ev in gen:
        if ev.stage == "encoding" and ev.file.endswith("c.txt"):
            break
    gen.close()
    (books / "a.txt").write_text("A new first book.\n" * 400, encoding="utf-8")
    evs, done = events(books)
    assert next(e for e in evs if e.stage == "encoding").file.endswith("a.txt")  # from the start
    assert decoded(done.corpus, "train").startswith("A new first book.")


@pytest.mark.parametrize("stage", ["scanning", "encoding"])
def test_a_file_that_changes_while_it_is_prepared_is_refused(tmp_path, prepared_dir, stage):
    big = tmp_path / "growing.txt"
    big.write_bytes(b"all work and no play\n" * 500_000)  # 10.5 MB: more than one chunk
    if stage == "encoding":
        run_to_end(prepare(str(big), CharTokenizer(list("\n adiklnoprwy"))))  # scanned (and encoded) once ...
        os.utime(big, ns=(1, 1))  # ... then the mtime changes: scanned again, encoding redone
        big.write_bytes(big.read_bytes().replace(b"all", b"ALL", 1))
    gen = prepare(str(big), CharTokenizer(sorted(set("all work and no play\nALL"))))
    with pytest.raises(CorpusError, match="changed while it was being prepared"):
        for ev in gen:
            if ev.stage == stage:
                with open(big, "ab") as f:
                    f.write(b"more\n")
    assert not list(prepared_dir.glob("*/*.partial")) and not list(prepared_dir.glob("*/*.progress.json"))


def test_a_damaged_token_file_is_refused_then_prepared_again_with_force(small_corpus, tmp_path):
    _, done = events(small_corpus)
    path = done.corpus.folder / done.corpus.meta["splits"]["val"]["file"]
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))
    r = tinygpt_inproc("corpus", "prepare", small_corpus)
    assert_one_line_error(r, "does not match its checksum", "--force")
    r = tinygpt_inproc("corpus", "prepare", small_corpus, "--force")
    assert r.returncode == 0 and "characters" in r.stdout
    assert "already prepared" in tinygpt_inproc("corpus", "prepare", small_corpus).stdout


def test_a_damaged_bpe_token_file_names_the_command_that_prepares_that_bpe_again(small_corpus, prepared_dir):
    """The hint said `corpus prepare SPEC --force`, which prepares characters: a BPE run met the same error again."""
    bpe = ["--tokenizer", "bpe", "--vocab-size", "300"]
    assert tinygpt_inproc("corpus", "prepare", small_corpus, *bpe).returncode == 0
    (meta,) = [p for p in prepared_dir.glob("*/*.json") if json.loads(p.read_text()).get("tokenizer", {}).get("type") == "BpeTokenizer"]
    val = meta.parent / json.loads(meta.read_text())["splits"]["val"]["file"]
    data = bytearray(val.read_bytes())
    data[10] ^= 1
    val.write_bytes(bytes(data))
    assert_one_line_error(tinygpt_inproc("corpus", "prepare", small_corpus, *bpe), "does not match its checksum",
                          "--tokenizer bpe --vocab-size 300 --force")
    assert tinygpt_inproc("corpus", "prepare", small_corpus, *bpe, "--force").returncode == 0  # as the hint says
    assert "already prepared" in tinygpt_inproc("corpus", "prepare", small_corpus, *bpe).stdout


def test_a_name_taken_is_said_before_the_corpus_is_prepared(small_corpus, prepared_dir, tmp_path):
    """`tinygpt train BIG -n taken` prepared the corpus (minutes for a big one) and only then said the name was taken."""
    from tests.conftest import make_model

    make_model(tmp_path / "models", "taken")
    r = tinygpt_inproc("train", small_corpus, "--name", "taken", "--models-dir", tmp_path / "models", "--max-steps", "1")
    assert_one_line_error(r, "a model named 'taken' already exists")
    assert not list(prepared_dir.glob("*/*.bin"))  # nothing encoded


# ------------------------------------------------------------------ bad input: one line, exit 2
def test_a_folder_without_text_files_and_a_glob_matching_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("hi", encoding="utf-8")
    assert_one_line_error(tinygpt_inproc("corpus", "prepare", tmp_path / "empty"), "without .txt files")
    assert_one_line_error(tinygpt_inproc("corpus", "prepare", f"{tmp_path}/nothing*.txt"), "no file matches")
    r = tinygpt_inproc("train", f"{tmp_path}/nothing*.txt", "--name", "m", "--models-dir", tmp_path / "models")
    assert_one_line_error(r, "no file matches")
    assert not (tmp_path / "models" / "m").exists()


def test_a_book_cut_inside_its_last_character_is_told_apart_from_another_encoding(tmp_path):
    """In a folder of books, a file cut short inside a character is said to be cut, not sent to iconv."""
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "a.txt").write_bytes("ein Märchen\n".encode() * 300 + "中".encode()[:2])
    r = tinygpt_inproc("corpus", "prepare", tmp_path / "books")
    assert_one_line_error(r, "a.txt ends in the middle of a UTF-8 character")
    assert "iconv" not in r.stderr
    (tmp_path / "books" / "a.txt").write_bytes("caf\xe9\n".encode("latin-1") * 300)
    assert_one_line_error(tinygpt_inproc("corpus", "prepare", tmp_path / "books"), "not UTF-8", "iconv")


def test_a_vocabulary_past_65535_entries_is_stored_in_32_bits(tmp_path):
    chars = "".join(chr(0x20000 + i) for i in range(70_000))  # (CJK extension planes and beyond)
    p = tmp_path / "wide.txt"
    p.write_text(chars + "\n" + chars[::-1], encoding="utf-8")
    _, done = events(p)
    assert done.corpus.meta["dtype"] == "uint32" and done.corpus.map("train")[:5].dtype == np.uint32
    assert done.corpus.tokenizer.vocab_size == 70_001
    assert decoded(done.corpus, "train") + decoded(done.corpus, "val") == p.read_text(encoding="utf-8")


def test_a_full_disk_removes_the_partial_files_and_leaves_the_source(tmp_path, small_corpus):
    """Writes past a file-size limit fail as a full disk would: one error line, nothing half-written kept."""
    src = tmp_path / "c.txt"
    src.write_bytes(small_corpus.read_bytes() * 4)  # 240 kB: 430 kB of train tokens
    before = src.read_bytes()
    prepared = tmp_path / "prepared"

    def limit():  # in the child: a write past 200 kB fails with EFBIG instead of killing it with SIGXFSZ
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    r = subprocess.run([sys.executable, "-m", "tinygpt_tui.cli.main", "corpus", "prepare", str(src)], capture_output=True, text=True,
                       env={**os.environ, "TINYGPT_PREPARED_DIR": str(prepared)}, cwd=ROOT, preexec_fn=limit, timeout=120)
    assert_one_line_error(r, "cannot write the prepared corpus", "removed")
    left = [p.name for p in prepared.rglob("*") if p.is_file()]
    assert not [n for n in left if n.endswith((".partial", ".progress.json", ".bin"))] and not [n for n in left if n.endswith(".json") and n != "source.json"]
    assert src.read_bytes() == before
    r = tinygpt_inproc("corpus", "prepare", src)  # with room again, it is prepared
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ training and evaluation on it
def test_train_on_a_folder_reports_bits_per_character_everywhere(books, tmp_path):
    models = tmp_path / "models"
    r = tinygpt_inproc("train", books, "--name", "m", "--models-dir", models, "--preset", "tiny", "--n-layer", "1", "--n-embd", "32",
                       "--block-size", "16", "--batch-size", "4", "--max-steps", "4", "--eval-interval", "2", "--eval-iters", "1",
                       "--sample-chars", "0", "--threads", "1", "--jsonl")
    assert r.returncode == 0, r.stderr
    evs = [json.loads(line) for line in r.stdout.splitlines()]
    ev = [e for e in evs if e["event"] == "eval"]
    fin = evs[-1]
    assert ev and all(e["bpc"] == pytest.approx(e["val_loss"] / math.log(2)) for e in ev)  # characters: bits = loss / ln 2
    assert fin["bpc"] == pytest.approx(fin["val_loss"] / math.log(2)) and fin["bpb"] <= fin["bpc"]
    doc = json.loads((models / "m" / "config.json").read_text(encoding="utf-8"))
    assert doc["figures"]["val_bpc"] == pytest.approx(fin["bpc"]) and doc["corpus"]["name"] == "books"
    assert f"{fin['bpc']:.4f}" in (models / "m" / "README.md").read_text(encoding="utf-8")
    out = tinygpt_inproc("eval", "m", "--models-dir", models)  # its own corpus: the folder it was trained on
    assert out.returncode == 0, out.stderr
    assert "bits/char" in out.stdout and f"{fin['bpc']:.4f}" in out.stdout


def test_bits_are_of_the_text_whatever_the_tokens():
    """A loss per token times tokens per character: a tokenizer with fewer tokens than characters scales up."""
    text = "abcd" * 4000
    corpus = Corpus("x.txt", text, "0" * 64)

    class Pairs(CharTokenizer):  # two characters a token: half the tokens of the text
        def encode_array(self, t):
            ids, dropped = super().encode_array(t)
            return ids[::2], dropped

    d = Dataset(corpus, Pairs(list("abcd")), 16)
    bpc, bpb = d.bits(1.0, "val")
    assert bpc == pytest.approx(len(d.val) / len(split_text(text)[1]) / math.log(2)) and bpc == bpb
    assert bpc == pytest.approx(0.5 / math.log(2))


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads RssFile from Linux's /proc")
def test_reading_windows_does_not_grow_memory_with_the_corpus(tmp_path):
    """The pages a window maps are handed back: 3,000 random windows of a 12 MB token file leave the
    process's file-backed memory where it was (kept, they would be most of the file)."""
    import torch

    def rss_file_mb():
        line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("RssFile"))
        return int(line.split()[1]) / 1024

    p = tmp_path / "big.txt"
    p.write_bytes(b"".join(b"line %d of a long text, all different\n" % i for i in range(170_000)))  # 6.6 MB
    _, done = events(p)
    data = Dataset(done.corpus, done.corpus.tokenizer, 64)
    gen = torch.Generator().manual_seed(0)
    data.batch("train", 32, gen, torch.device("cpu"))
    before = rss_file_mb()
    for _ in range(100):
        data.batch("train", 30, gen, torch.device("cpu"))
    assert rss_file_mb() - before < 2, (before, rss_file_mb())


def test_a_corpus_given_by_a_relative_path_is_found_from_anywhere(tmp_path, small_corpus, monkeypatch):
    """`tinygpt train book.txt` recorded the path as typed: from another folder, eval said the model's
    corpus was not on this machine."""
    (tmp_path / "book.md").write_bytes(small_corpus.read_bytes())
    monkeypatch.chdir(tmp_path)
    tiny = ["--preset", "tiny", "--block-size", "16", "--max-steps", "2", "--eval-iters", "1", "--sample-chars", "0", "--threads", "1"]
    assert tinygpt_inproc("train", "book.md", "--name", "b", "--models-dir", tmp_path / "m", *tiny, "--jsonl").returncode == 0
    monkeypatch.chdir(ROOT)
    r = tinygpt_inproc("eval", tmp_path / "m" / "b")
    assert r.returncode == 0 and "val" in r.stdout, r.stderr


def test_a_preparation_waiting_for_another_process_preparing_the_corpus_says_so(small_corpus, tmp_path):
    """A run waiting for another process preparing the same corpus said nothing: the last stage's figures stayed frozen
    (the flock was taken blocking). It says "waiting" first (the CLI's bar and the app say the stage's words), then,
    the lock let go, prepares the corpus as before."""
    import fcntl
    import queue
    import threading

    from tinygpt_tui.engine.sources import STAGE_WORDS

    corpus = tmp_path / "own.txt"  # (its own text: not found prepared by another test)
    corpus.write_text(f"{tmp_path}\n" + small_corpus.read_text(encoding="utf-8"), encoding="utf-8")
    folder = run_to_end(prepare(str(corpus), lambda source: CharTokenizer(source.charset))).folder  # (scanned: its folder)
    lock = os.open(folder / ".lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)  # as another process preparing it
    seen: queue.Queue = queue.Queue()
    worker = threading.Thread(target=lambda: [seen.put(ev) for ev in prepare(str(corpus), lambda source: CharTokenizer(source.charset[:-1]))])
    worker.start()
    try:
        first = seen.get(timeout=120)  # (a bound on a hang, were nothing said: not a timing)
    finally:
        os.close(lock)
        worker.join()
    assert isinstance(first, Progress) and first.stage == "waiting" and first.total == 0
    assert STAGE_WORDS["waiting"] == "waiting for another process preparing this corpus"
    rest = list(seen.queue)
    assert [e.stage for e in rest if isinstance(e, Progress)][:1] == ["encoding"] and isinstance(rest[-1], Prepared)


def test_a_garbled_book_in_a_folder_is_refused_before_training_and_a_folder_is_not_added(tmp_path):
    """The prepared path (a folder, a glob, any file a run trains on) reads its files in chunks, not through
    read_corpus: it refuses mojibake too, by the file's name; `corpus add` of a folder says how to train on it."""
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "a.txt").write_text("“Quite so,” said the vicar — naïvely.\n" * 400, encoding="utf-8")
    (tmp_path / "books" / "b.txt").write_text(("“Quite so,” said she — naïvely.\n" * 400).encode().decode("cp1252", errors="replace"), encoding="utf-8")
    r = tinygpt_inproc("train", tmp_path / "books", "--name", "m", "--max-steps", "1", "--models-dir", tmp_path / "models")
    assert_one_line_error(r, "b.txt is garbled UTF-8", "iconv -f utf-8 -t cp1252")
    assert not (tmp_path / "models" / "m").exists()
    r = tinygpt_inproc("corpus", "add", tmp_path / "books", env={"TINYGPT_CORPORA_DIR": str(tmp_path / "c")})
    assert_one_line_error(r, "corpus add takes one text file, not a folder", "tinygpt train", "books --name NAME")
    assert not (tmp_path / "c").exists()
    (tmp_path / "shelf" / "volume 1").mkdir(parents=True)  # (books in subfolders alone: train would refuse it too)
    (tmp_path / "shelf" / "volume 1" / "a.txt").write_text("a book\n" * 400, encoding="utf-8")
    r = tinygpt_inproc("corpus", "add", tmp_path / "shelf", env={"TINYGPT_CORPORA_DIR": str(tmp_path / "c")})
    assert_one_line_error(r, "not a folder", "nor does it hold .txt files")
    assert "tinygpt train" not in r.stderr and not (tmp_path / "c").exists()
