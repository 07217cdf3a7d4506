"""Byte-level BPE: the tokenizer, its file in a model folder, and everything that shows its tokens."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import make_tiny_model
from test_cli import assert_one_line_error, run_events, tinygpt, tinygpt_inproc
from tinygpt_tui.errors import CheckpointError, CorpusError, SettingsError
from tinygpt_tui.tokenizer import BpeTokenizer, CharTokenizer, check_bpe_size, pieces

VOCAB = 300


@pytest.fixture(scope="module")
def bpe(small_corpus) -> BpeTokenizer:
    return BpeTokenizer.train(small_corpus.read_text(encoding="utf-8"), VOCAB)


@pytest.fixture(scope="module")
def bpe_models(tmp_path_factory, small_corpus, bpe) -> Path:
    """A models folder with one random tiny BPE model."""
    d = tmp_path_factory.mktemp("bpe_models")
    make_tiny_model(d / "bee", small_corpus.read_text(encoding="utf-8"), seed=3, tokenizer=bpe)
    return d


# ------------------------------------------------------------------ the tokenizer
def test_trained_bpe_has_the_bytes_and_the_size_asked(bpe):
    assert bpe.vocab_size == VOCAB and bpe.kind == "bpe" and bpe.describe() == f"bpe {VOCAB}"
    assert sorted(bpe.token_bytes[:256]) == [bytes([b]) for b in range(256)]  # every byte is a token
    assert any(len(b) > 1 for b in bpe.token_bytes)  # and merges made longer ones
    assert bpe.token_id("\n") is not None and bpe.start_id == bpe.token_id("\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_unicode_text_round_trips(bpe, text):
    ids = bpe.encode(text).ids
    assert bpe.decode(ids) == text
    assert bpe.encode(text).dropped == []
    arr, dropped = bpe.encode_array(text)  # the corpus path (in pieces, in parallel): the same ids
    assert arr.tolist() == ids and dropped == []


def test_lone_surrogates_are_left_out_and_reported(bpe):
    enc = bpe.encode("ab\udcffc\ud800\udcff")  # what Python makes of undecodable bytes on a command line
    assert bpe.decode(enc.ids) == "abc" and enc.dropped == ["\udcff", "\ud800"]
    assert bpe.encode_array("x\udcffy")[1] == ["\udcff"]


def test_pieces_encode_as_the_whole(bpe, small_corpus):
    text = small_corpus.read_text(encoding="utf-8") + "\n\n  tail\n 红楼梦\nend"
    parts = list(pieces(text, 1000))
    assert len(parts) > 10 and "".join(parts) == text
    assert bpe.encode_array(text)[0].tolist() == bpe.encode(text).ids


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.integers(0, VOCAB - 1), max_size=60), cuts=st.lists(st.integers(0, 60), max_size=8))
def test_streaming_decode_never_yields_a_broken_sequence(bpe, ids, cuts):
    """Whatever ids a model draws, and however a sampler splits them into calls: each piece is whole
    UTF-8 text, and the pieces add up to the bytes decoded at once."""
    stream, out, start = bpe.stream(), [], 0
    for cut in sorted(cuts) + [len(ids)]:
        out.append(stream.feed(ids[start:max(cut, start)]))
        start = max(cut, start)
    out.append(stream.flush())
    for piece in out:
        piece.encode("utf-8")  # no lone surrogate: never half a character
    assert "".join(out) == b"".join(bpe.token_bytes[i] for i in ids).decode("utf-8", "replace")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(min_codepoint=0x80, exclude_categories=("Cs",)), min_size=1, max_size=40))
def test_streaming_a_text_one_token_at_a_time_holds_back_partial_characters(bpe, text):
    ids = bpe.encode(text).ids
    stream = bpe.stream()
    pieces_out = [stream.feed([i]) for i in ids] + [stream.flush()]
    assert "".join(pieces_out) == text and "\ufffd" not in "".join(pieces_out)


def test_labels_show_partial_bytes_inertly(bpe):
    labels = [bpe.token_text(i) for i in bpe.encode("红").ids]
    assert labels == ["\u2039e7\u203a", "\u2039ba\u203a", "\u2039a2\u203a"]  # each byte of 红 alone: its hex, marked
    assert bpe.labels[bpe.token_id(" the") or bpe.token_id("e")] in (" the", "e")


def test_labels_read_as_text_where_the_bytes_are_whole_characters():
    """A token holding € showed as \\xe2\\x82\\xac, and one holding é's first byte as caf\\xc3: escapes where
    a reader expects the text, and no mark that says which bytes are only part of a character."""
    from tinygpt_tui.tokenizer import byte_text

    bpe = BpeTokenizer.train("5€ and 6€, un café, 红楼梦 " * 50, 280)
    assert {"€", " 红楼梦", " café"} <= set(bpe.labels)  # whole characters read as themselves
    assert {"\u2039e282\u203a", "红\u2039e6\u203a"} <= set(bpe.labels)  # € but its last byte; 红 and 楼's first
    assert bpe.labels[bpe.token_id("€")] == "€"
    assert byte_text(b" caf\xc3") == " caf\u2039c3\u203a" and byte_text(b"\xa9 \xe2\x82") == "\u2039a9\u203a \u2039e282\u203a"
    assert byte_text(b"\xed\xa0\x80\xff") == "\u2039eda080ff\u203a"  # never UTF-8 at all: marked the same way
    assert len(set(bpe.labels)) == bpe.vocab_size  # still one label per token


def drained(events):
    """What a generator of Progress events returns (a Source, a learned BPE)."""
    while True:
        try:
            next(events)
        except StopIteration as done:
            return done.value


@pytest.mark.slow  # (a process encoding 22 MB of text: 17 s)
def test_encoding_a_chunk_takes_memory_of_a_few_pieces_not_of_the_chunk(small_corpus, tmp_path):
    """A BPE preparation encoded each 8 MB chunk in one call: a 300 MB corpus peaked at 1.2 GB (a
    character one at 0.14 GB); 3.6 MB of text took 300 MB more. The same ids, in pieces at a time."""
    import subprocess
    import sys

    script = tmp_path / "m.py"
    script.write_text(f"""
import resource
from tinygpt_tui.tokenizer import BpeTokenizer
text = open({str(small_corpus)!r}, encoding="utf-8").read()
tok = BpeTokenizer.train(text, {VOCAB})
big = text * 60
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ids, _ = tok.encode_array(big)
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
assert ids.tolist() == tok.encode(big).ids
print(grew // 1024)
""", encoding="utf-8")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) < 160, r.stdout  # megabytes (3.6 MB of text: 2.6 million tokens, 5 MB as uint16)


def scanned(path: Path):
    """The corpus at path as engine/sources.py scans it (what a run's tokenizer is made from)."""
    from tinygpt_tui.engine.sources import scan

    return drained(scan(str(path)))  # Progress events, then the Source as its return value


def test_bpe_learns_its_merges_from_the_training_split_alone(tmp_path, small_corpus):
    from tinygpt_tui.engine.lineage import run_tokenizer
    from tinygpt_tui.engine.presets import TrainConfig

    text = small_corpus.read_text(encoding="utf-8")
    text += " qqzzqqzz" * (len(text) // 9 // 8)  # about a tenth more: the validation split is all this word
    (tmp_path / "x.txt").write_text(text, encoding="utf-8")
    make, lineage = run_tokenizer(TrainConfig(name="t", tokenizer="bpe", vocab_size=VOCAB), None)
    tok = drained(make(scanned(tmp_path / "x.txt")))
    assert tok.vocab_size == VOCAB and lineage is None
    assert tok.token_id(" qqzzqqzz") is None and tok.token_id("qq") is None
    assert len(tok.encode(" qqzzqqzz").ids) >= 4


def test_a_learned_bpe_is_kept_with_the_prepared_corpus_and_not_learned_again(tmp_path, small_corpus):
    """Every run learned the BPE again from the whole training split before it found the token files
    prepared: 95 s of silence on each run of a 300 MB corpus, though nothing had changed."""
    from tinygpt_tui.engine import lineage
    from tinygpt_tui.engine.presets import TrainConfig

    (tmp_path / "k.txt").write_bytes(small_corpus.read_bytes())
    source = scanned(tmp_path / "k.txt")
    make = lineage.run_tokenizer(TrainConfig(name="t", tokenizer="bpe", vocab_size=VOCAB), None)[0]
    first = drained(make(source))
    kept = list(Path(source.folder).glob(f"bpe{VOCAB}-*.tokenizer.json"))
    assert len(kept) == 1 and BpeTokenizer.from_json(kept[0].read_text(encoding="utf-8")).to_json() == first.to_json()
    before = kept[0].stat()
    lineage.LEARNED.clear()  # (as a new process starts)
    assert drained(make(scanned(tmp_path / "k.txt"))).to_json() == first.to_json()
    assert (kept[0].stat().st_ino, kept[0].stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # read, not learned again
    kept[0].write_text('{"model": 5}', encoding="utf-8")  # damaged: learned again, and kept again
    lineage.LEARNED.clear()
    assert drained(make(scanned(tmp_path / "k.txt"))).to_json() == first.to_json()
    assert BpeTokenizer.from_json(kept[0].read_text(encoding="utf-8")).to_json() == first.to_json()
    assert drained(lineage.run_tokenizer(TrainConfig(name="t", tokenizer="bpe", vocab_size=VOCAB + 1), None)[0](source)).vocab_size == VOCAB + 1


def test_preparing_for_a_bpe_says_it_is_learning_it(tmp_path, small_corpus):
    """Learning the BPE (minutes on a big corpus) said nothing: the bar sat on "scanning the corpus"
    at 100%. It is a stage of its own now, once: the next preparation finds it learned."""
    from tinygpt_tui.engine import lineage
    from tinygpt_tui.engine.prepare import Prepared, prepare
    from tinygpt_tui.engine.presets import TrainConfig

    (tmp_path / "p.txt").write_bytes(small_corpus.read_bytes())
    make = lineage.run_tokenizer(TrainConfig(name="t", tokenizer="bpe", vocab_size=VOCAB), None)[0]
    events = list(prepare(str(tmp_path / "p.txt"), make))
    stages = [e.stage for e in events if not isinstance(e, Prepared)]
    learning = [e for e in events if getattr(e, "stage", "") == "learning"]
    assert learning and stages.index("learning") < stages.index("encoding") and "learning" not in stages[stages.index("encoding"):]
    assert learning[-1].done == learning[-1].total > 0 and all(e.done <= e.total for e in learning)
    assert events[-1].corpus.tokenizer.vocab_size == VOCAB
    lineage.LEARNED.clear()  # (as a new process starts)
    again = list(prepare(str(tmp_path / "p.txt"), make))
    assert "learning" not in [getattr(e, "stage", "") for e in again] and again[-1].reused
    with pytest.raises(CorpusError, match="more than this corpus supports"):  # the thread's error, said by the caller
        list(prepare(str(tmp_path / "p.txt"), lineage.run_tokenizer(TrainConfig(name="t", tokenizer="bpe", vocab_size=99_999), None)[0]))


def test_a_bpe_working_out_its_merges_is_a_stage_of_its_own_without_a_measure(tmp_path, small_corpus):
    """Learning a BPE was measured by the bytes read; the text is read in a moment, then Hugging Face's trainer
    works out the merges (14 s of 14.5 for 30 MB and 4,096 tokens), the bar at 100% and "0s left" meanwhile.
    The merges are a stage of their own now, which no figure measures (total 0), ending as they are done."""
    from tinygpt_tui.engine import lineage
    from tinygpt_tui.engine.prepare import Prepared, prepare
    from tinygpt_tui.engine.presets import TrainConfig

    (tmp_path / "m.txt").write_bytes(small_corpus.read_bytes())
    lineage.LEARNED.clear()  # (as a new process starts: learned, not found)
    make = lineage.run_tokenizer(TrainConfig(name="t", tokenizer="bpe", vocab_size=VOCAB), None)[0]
    events = [e for e in prepare(str(tmp_path / "m.txt"), make) if not isinstance(e, Prepared)]
    stages = [e.stage for e in events]
    read = stages.index("learning") + next(i for i, e in enumerate(events[stages.index("learning"):]) if e.done == e.total)
    assert stages[read] == "learning" and set(stages[read + 1 : stages.index("encoding")]) == {"merging"}  # the reading's 100%, once
    assert all(e.done == e.total == 0 for e in events if e.stage == "merging") and "merging" not in stages[stages.index("encoding"):]


def test_the_bar_of_the_bpe_merges_says_the_time_they_take_not_a_time_left():
    """`tinygpt train --tokenizer bpe`'s bar sat at 100% and "0:00:00" left while the merges were worked out."""
    import io

    from rich.console import Console

    from tinygpt_tui.cli.common import PrepareBar
    from tinygpt_tui.engine.sources import Progress

    def lines(bar) -> list[str]:
        out = Console(file=io.StringIO(), width=200)
        out.print(bar.progress.make_tasks_table(bar.progress.tasks))
        return [" ".join(line.split()) for line in out.file.getvalue().splitlines()]

    with PrepareBar(out=Console(file=io.StringIO(), force_terminal=True, width=200)) as bar:
        for ev in (Progress("learning", 4_000_000, 9_000_000), Progress("learning", 9_000_000, 9_000_000), Progress("merging", 0, 0)):
            bar(ev)
        learning, merging = lines(bar)
        assert learning.startswith("reading it for the BPE") and "9.0/9.0 MB" in learning
        assert merging.startswith("working out the BPE's merges") and merging.endswith(", time left unknown")
        assert re.search(r"merges \S+ \d+:\d\d:\d\d, time left unknown$", merging) and "MB" not in merging  # (no bytes, no 0:00:00 left)
        bar(Progress("encoding", 1_000_000, 10_000_000))  # the merges done: their time taken, their bar full
        assert re.search(r"took \d+:\d\d:\d\d$", lines(bar)[1]) and bar.progress.tasks[1].finished


def test_bpe_larger_than_the_corpus_supports_is_refused():
    with pytest.raises(CorpusError, match="more than this corpus supports"):
        BpeTokenizer.train("abcabc abc\n" * 20, 5000)
    for n in (10, 255, 10**7, True, 3.5):
        with pytest.raises(SettingsError):
            check_bpe_size(n)


# ------------------------------------------------------------------ the file in a model folder
def good_doc(bpe) -> dict:
    return json.loads(bpe.to_json())


def hostile_docs(bpe):
    """(why, tokenizer.json text) for files a stranger could ship."""
    d = good_doc(bpe)
    vocab, merges = d["model"]["vocab"], d["model"]["merges"]

    def with_model(**kw):
        return json.dumps({**d, "model": {**d["model"], **kw}})

    some = next(iter(vocab))
    yield "not json", "{not json"
    yield "nested", "[" * 100_000 + "]" * 100_000
    yield "not a bpe", json.dumps({**d, "model": {**d["model"], "type": "WordPiece"}})
    yield "a list", "[1, 2, 3]"
    yield "not byte-level", json.dumps({**d, "pre_tokenizer": {"type": "Whitespace"}})
    yield "normalizer", json.dumps({**d, "normalizer": {"type": "Lowercase"}})
    yield "added tokens", json.dumps({**d, "added_tokens": [{"id": 0, "content": "x"}]})
    yield "id gap", with_model(vocab={**vocab, some: len(vocab) + 5})
    yield "id twice", with_model(vocab={**vocab, "zzzzq": 0})
    yield "string id", with_model(vocab={**vocab, some: "0"})
    yield "a missing byte", with_model(vocab={("ĠĠĠĠĠĠĠĠq" if k == "Ġ" else k): v for k, v in vocab.items()})
    yield "not byte symbols", with_model(vocab={**{k: v for k, v in vocab.items() if v != len(vocab) - 1}, "\x1b[31m": len(vocab) - 1})
    yield "bad merge", with_model(merges=merges + [["nope", "zz"]])
    yield "merge not a token", with_model(merges=merges + [["Ġ", "Ġ"]] if "ĠĠ" not in vocab else merges + [["Ġ", "Ċ"]])
    yield "too small", with_model(vocab={"a": 0, "b": 1}, merges=[])
    yield "too many merges", with_model(merges=merges * (len(vocab) // len(merges) + 2))


def test_hostile_tokenizer_files_are_refused_in_one_line(tmp_path, bpe, small_corpus):
    from tinygpt_tui.engine import folder as ckpt

    make_tiny_model(tmp_path / "m", small_corpus.read_text(encoding="utf-8"), tokenizer=bpe)
    ckpt.check_folder(tmp_path / "m")  # the good one loads
    for why, text in hostile_docs(bpe):
        (tmp_path / "m" / "tokenizer.json").write_text(text, encoding="utf-8")
        with pytest.raises(CheckpointError) as e:
            ckpt.check_folder(tmp_path / "m")
        msg = str(e.value)
        assert "tokenizer.json" in msg and "\n" not in msg and len(msg) < 300, (why, msg)
        assert not ckpt.read_info(tmp_path / "m").ok
        if why == "a missing byte":
            assert "of the 256 bytes" in msg


def test_a_hostile_tokenizer_file_is_one_line_on_the_command_line(tmp_path, bpe, small_corpus):
    make_tiny_model(tmp_path / "m", small_corpus.read_text(encoding="utf-8"), tokenizer=bpe)
    doc = good_doc(bpe)
    doc["model"]["merges"].append(["\u0100\u0100\u0100", "x"])
    (tmp_path / "m" / "tokenizer.json").write_text(json.dumps(doc), encoding="utf-8")
    r = tinygpt_inproc("generate", "m", "--models-dir", tmp_path, "-n", "5")
    assert_one_line_error(r, "tokenizer.json", "merge")


def test_a_folder_with_both_tokenizers_or_a_size_mismatch_is_refused(tmp_path, bpe, small_corpus):
    from tinygpt_tui.engine import folder as ckpt

    text = small_corpus.read_text(encoding="utf-8")
    make_tiny_model(tmp_path / "m", text, tokenizer=bpe)
    (tmp_path / "m" / "vocab.json").write_text(CharTokenizer.from_text(text).to_json(), encoding="utf-8")
    with pytest.raises(CheckpointError, match="both vocab.json and tokenizer.json"):
        ckpt.check_folder(tmp_path / "m")
    os.unlink(tmp_path / "m" / "vocab.json")
    (tmp_path / "m" / "tokenizer.json").write_text(BpeTokenizer.train(text, VOCAB - 1).to_json(), encoding="utf-8")
    with pytest.raises(CheckpointError, match=f"tokenizer.json has {VOCAB - 1} tokens, config.json says vocab_size {VOCAB}"):
        ckpt.check_folder(tmp_path / "m")


# ------------------------------------------------------------------ everything that shows tokens
def test_sampler_streams_text_from_a_bpe_model(bpe_models):
    from tinygpt_tui.engine.folder import load_model
    from tinygpt_tui.sampler import Generation, SamplingSettings

    loaded = load_model(bpe_models / "bee")
    for backend in ("auto", "torch"):
        gen = Generation(loaded.model, loaded.tokenizer, "ROMEO: 红", SamplingSettings(max_new_tokens=120, seed=1), backend=backend)
        chunks = list(gen.chunks())
        assert gen.generated == 120 and all(isinstance(c, str) and c for c in chunks)
        for c in chunks:
            c.encode("utf-8")  # whole characters only


def test_models_generate_and_inspect_show_bpe_tokens(bpe_models, bpe):
    r = tinygpt_inproc("models", "--models-dir", bpe_models)
    assert r.returncode == 0 and f"bpe {VOCAB}" in r.stdout
    r = tinygpt_inproc("generate", "bee", "--models-dir", bpe_models, "--prompt", "ROMEO:", "-n", "40", "--seed", "2")
    assert r.returncode == 0 and r.stdout.startswith("ROMEO:")
    prompt = "ROMEO: the king\n"
    r = tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--prompt", prompt, "--layer", "0")
    assert r.returncode == 0, r.stderr
    labels = [bpe.token_text(i) for i in bpe.encode(prompt).ids]
    assert any(len(lab) > 1 for lab in labels)  # merged tokens label whole columns
    shown = "".join(lab.replace(" ", "\u00b7").replace("\n", "\u23ce") for lab in labels)
    assert shown in r.stdout and f"context {len(labels)}/32 tokens" in r.stdout and "Next token after" in r.stdout
    r = tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--prompt", prompt, "--json")
    doc = json.loads(r.stdout)
    assert doc["chars"] == labels and doc["ids"] == bpe.encode(prompt).ids


def test_inspect_marks_the_bytes_of_a_character_split_across_tokens(bpe_models, bpe):
    """`tinygpt inspect` drew € split into byte tokens as \\xe2\\x82\\xac; --rank-of takes a byte as shown."""
    assert bpe.token_id("€") is None  # not in this English vocabulary: three byte tokens
    r = tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--prompt", "5€", "--layer", "0",
                       "--rank-of", "\u2039e2\u203a")
    assert r.returncode == 0, r.stderr
    assert "5\u2039e2\u203a\u203982\u203a\u2039ac\u203a" in r.stdout and "\\x" not in r.stdout
    assert 'asked about: "\u2039e2\u203a" ranks #' in r.stdout  # (quoted, as every ranked token is)


def test_inspect_keys_a_byte_token_under_the_table_only_where_one_shows(bpe_models):
    """A newcomer read ‹e2› in `inspect` and could not tell it was a raw byte: one key line under the bars, where
    such a token shows (in the context, the bars, or --rank-of), and none where none does."""
    key = "byte(s) in hex of a character the tokenizer splits into bytes"
    r = tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--prompt", "5€", "--layer", "0")
    lines = r.stdout.splitlines()
    (line,) = [ln for ln in lines if key in ln]
    assert line == f"\u2039e2\u203a \u203982\u203a \u2039ac\u203a: {key}", line
    assert lines.index(line) > max(i for i, ln in enumerate(lines) if ln.endswith("%")) > lines.index(line) - 3  # under the bars
    r = tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--prompt", "ROMEO: the king", "--layer", "0", "-k", "1")
    assert r.returncode == 0 and "\u2039" not in r.stdout and key not in r.stdout, r.stdout  # (its one bar: "g")
    r = tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--prompt", "ROMEO", "--layer", "0", "-k", "1", "--rank-of", "\u2039e2\u203a")
    assert f"\u2039e2\u203a: {key}" in r.stdout, r.stdout
    for view in ("--lens", "--ablate"):  # (the other views of the same context: the key there too, last)
        r = tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--prompt", "5€", view)
        assert r.returncode == 0 and r.stdout.rstrip().splitlines()[-1].endswith(key), r.stdout


def test_the_lens_of_a_bpe_model_speaks_of_tokens(bpe_models):
    """The lens's key said the embeddings row "mostly names the character itself" of a model whose rows are tokens."""
    r = tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--prompt", "ROMEO: the king", "--lens")
    assert r.returncode == 0, r.stderr
    assert "names the token itself" in r.stdout and "names the character" not in r.stdout, r.stdout


async def test_the_app_s_inspector_keys_a_byte_token_as_the_cli_does_and_a_character_model_s_does_not(bpe_models, small_corpus, tmp_path):
    """`tinygpt inspect` put a key under its bars where a byte token such as ‹e2› shows; the app's inspector (F2)
    showed the same ‹e2› with none. Under its bars now, whole on screen at 80x24; a character model: no key."""
    from test_app import wait_for
    from test_inspect import inspector_on, lines_on_screen
    from tinygpt_tui.engine.folder import load_model

    key = "byte(s) in hex of a character the tokenizer splits into bytes"
    make_tiny_model(tmp_path / "chars", small_corpus.read_text(encoding="utf-8") + "5€", seed=4)  # (€ in its vocabulary)
    for folder, shown in ((bpe_models / "bee", f"‹e2› ‹82› ‹ac›: {key}"), (tmp_path / "chars", None)):
        screen, host = inspector_on("ROMEO: 5€", folder, load_model(folder).tokenizer)
        async with host.run_test(size=(80, 24)) as pilot:
            assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
            await pilot.pause()
            line = screen.query_one("#insp-key")
            if shown is None:
                assert "€" in screen.view.chars and not line.display and key not in str(line.render())
                continue
            assert " ".join(str(line.render()).split()) == shown  # (wrapped at 80 columns)
            height = line.size.height
            assert height >= 1 and lines_on_screen(screen, line, 24) == set(range(height))  # under the bars, whole
            assert line.region.y > screen.query_one("#insp-probs").region.y


def test_generate_says_its_length_counts_tokens_for_a_bpe_model(bpe_models):
    """-n said "Characters to generate"; a BPE model's -n 30 wrote about 55 characters of Shakespeare."""
    from tinygpt_tui.app.sidebar import FIELDS

    assert "tokens, for a BPE model" in " ".join(tinygpt_inproc("generate", "--help").stdout.split())
    assert "tokens, for a BPE model" in dict((f[0], f[4]) for f in FIELDS)["length"]


def test_inspect_says_an_undecodable_byte_of_the_prompt_was_left_out_not_before_the_window(bpe_models):
    """`inspect --prompt $'a\\xffb'` said "the first 1 character(s) lie before the model's window" (of
    128 tokens, for 3 characters) and nothing of the byte it had left out."""
    r = tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--prompt", "a\udcffb", "--layer", "0")
    assert r.returncode == 0, r.stderr
    assert "before the model's window" not in r.stdout and "left out: \\xff" in r.stdout
    doc = json.loads(tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--prompt", "a\udcffb", "--json").stdout)
    assert doc["truncated"] == 0 and doc["dropped"] == ["\udcff"]


def test_near_takes_a_token_as_the_map_shows_it(bpe_models, bpe):
    """The map labels " the" as ·the; --near ·the said "not a token of the model's vocabulary"."""
    word = next(t for t in map(bpe.token_text, range(bpe.vocab_size)) if t.startswith(" ") and t[1:].isalpha())
    shown = "\u00b7" + word[1:]
    r = tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--embeddings", "--near", shown, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == json.loads(
        tinygpt_inproc("inspect", "bee", "--models-dir", bpe_models, "--embeddings", "--near", word, "--json").stdout)


def test_inspector_labels_escape_controls_in_tokens(bpe_models):
    from tinygpt_tui.engine.folder import load_model
    from tinygpt_tui.engine.inspect import analyze, display_char

    loaded = load_model(bpe_models / "bee")
    a = analyze(loaded.model, loaded.tokenizer, "a\x1b[31m b")
    assert "\x1b" in "".join(a.chars)  # the token holds the escape ...
    assert all("\x1b" not in display_char(c) for c in a.chars)  # ... its label never does
    assert "\u241b" in "".join(display_char(c) for c in a.chars)


@pytest.mark.slow
def test_train_with_bpe_end_to_end(tmp_path, small_corpus):
    r = tinygpt("train", small_corpus, "--name", "b", "--models-dir", tmp_path, "--tokenizer", "bpe", "--vocab-size", VOCAB,
                "--preset", "tiny", "--block-size", "32", "--max-steps", "12", "--eval-interval", "6", "--eval-iters", "2",
                "--threads", "1", "--jsonl")
    assert r.returncode == 0, r.stderr
    events = run_events(r.stdout)
    assert events[0]["tokenizer"] == f"bpe {VOCAB}" and events[0]["model"]["vocab_size"] == VOCAB
    assert all(isinstance(e.get("sample", ""), str) for e in events)
    folder = tmp_path / "b"
    assert (folder / "tokenizer.json").is_file() and not (folder / "vocab.json").exists()
    doc = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert doc["training"]["tokenizer"] == "bpe" and doc["training"]["vocab_size"] == VOCAB
    assert "byte-level BPE" in (folder / "README.md").read_text(encoding="utf-8")
    r = tinygpt("train", "--name", "b", "--models-dir", tmp_path, "--resume", "--max-steps", "14", "--threads", "1", "--jsonl")
    assert r.returncode == 0, r.stderr
    assert run_events(r.stdout)[0]["tokenizer"] == f"bpe {VOCAB}"


def test_the_try_it_prompt_of_a_bpe_model_is_text_it_learned(small_corpus):
    """After `tinygpt import` of a Chinese BPE model the "try it" line said --prompt "ROMEO:": a BPE drops no
    character, so the rule for character vocabularies always passed. Now a BPE suggests ROMEO: where it learned
    some of it, else its earliest learned word, else nothing."""
    from tinygpt_tui.cli.common import try_prompt

    english = small_corpus.read_text(encoding="utf-8")
    assert try_prompt(BpeTokenizer.train(english, 512)) == "ROMEO:"  # (its learned tokens hold R, O, M and E)
    assert try_prompt(BpeTokenizer.train(english, 300)) == "the"  # (they don't yet: its first word, not "he")
    chinese = "".join(f"宝玉笑道：“{w}来了。”黛玉道：“不去。”\n" for w in "你我他她这那" * 40)
    zh = BpeTokenizer.train(chinese, 300)
    word = try_prompt(zh)
    assert len(word) > 1 and word.isalpha() and word in chinese and zh.token_id(word) is not None, word  # (one of its tokens)
    assert try_prompt(BpeTokenizer.train("1, 2; 3. 4! " * 200, 260)) == ""  # (no word learned: no prompt)
    assert try_prompt(CharTokenizer(sorted(set(chinese)))) == "" and try_prompt(CharTokenizer("ROMEab:")) == "ROMEO:"


def test_bad_tokenizer_options_are_one_line(tmp_path, small_corpus):
    common = ("--models-dir", tmp_path, "--preset", "tiny", "--max-steps", "2")
    assert_one_line_error(tinygpt_inproc("train", small_corpus, "--name", "x", "--tokenizer", "bpe", "--vocab-size", "100000", *common),
                          "--vocab-size 100,000 is more than this corpus supports")
    assert_one_line_error(tinygpt_inproc("train", small_corpus, "--name", "x", "--tokenizer", "bpe", "--vocab-size", "100", *common), "256")
    assert_one_line_error(tinygpt_inproc("train", small_corpus, "--name", "x", "--vocab-size", "500", *common), "--tokenizer bpe")
    assert_one_line_error(tinygpt_inproc("train", small_corpus, "--name", "x", "--tokenizer", "words", *common), "char, bpe")
    assert not (tmp_path / "x").exists()


def test_corpus_prepare_prepares_the_bpe_corpus_train_then_uses(tmp_path, small_corpus):
    """`tinygpt corpus prepare` encoded characters only: a big corpus could not be prepared ahead for a BPE run,
    which learned and encoded it all itself. It takes train's --tokenizer and --vocab-size, checked alike."""
    env = {"TINYGPT_PREPARED_DIR": str(tmp_path / "prepared")}
    r = tinygpt_inproc("corpus", "prepare", small_corpus, "--tokenizer", "bpe", "--vocab-size", "300", env=env)
    assert r.returncode == 0 and "tokens (bpe 300); prepared at" in r.stdout, r.stdout + r.stderr
    folder = Path(r.stdout.strip().rsplit(": ", 1)[1])
    made = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert len([n for n in made if n.endswith(".bin")]) == 2
    r = tinygpt_inproc("train", small_corpus, "--name", "b", "--models-dir", tmp_path, "--tokenizer", "bpe", "--vocab-size", "300",
                       "--preset", "tiny", "--block-size", "32", "--max-steps", "1", "--threads", "1", "--jsonl", env=env)
    assert r.returncode == 0, r.stderr
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == made  # found prepared: nothing learned or encoded again
    common = (small_corpus, "--force")
    for args, needle in ((("--tokenizer", "bpe", "--vocab-size", "100"), "256"), (("--vocab-size", "500"), "--tokenizer bpe"),
                         (("--tokenizer", "words"), "char, bpe")):
        said = [tinygpt_inproc(*cmd, *args, env=env) for cmd in (("corpus", "prepare", *common), ("train", small_corpus, "--name", "x"))]
        assert_one_line_error(said[0], needle)
        assert said[0].stderr == said[1].stderr
    assert_one_line_error(tinygpt_inproc("corpus", "prepare", small_corpus, "--tokenizer", "bpe", "--vocab-size", "100000", env=env),
                          "--vocab-size 100,000 is more than this corpus supports")
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == made


def test_a_corpus_too_short_in_tokens_says_tokens_and_how_to_fit(tmp_path, small_corpus):
    """Long enough in characters, too short once BPE merges them: the error spoke of "tokens of known
    characters" (a character model's words) and gave no way out, where a character model's says --block-size."""
    short = tmp_path / "s.txt"
    short.write_text(small_corpus.read_text(encoding="utf-8")[:2000], encoding="utf-8")
    r = tinygpt_inproc("train", short, "--name", "x", "--models-dir", tmp_path, "--tokenizer", "bpe", "--vocab-size", "400",
                       "--preset", "tiny", "--max-steps", "2", "--threads", "1")
    assert_one_line_error(r, "validation split holds", "tokens;", "smaller --block-size")
    assert "known characters" not in r.stderr
    tiny = tmp_path / "t.txt"
    tiny.write_text("hello world\n", encoding="utf-8")  # too short whatever the vocabulary: said first, not after --vocab-size
    r = tinygpt_inproc("train", tiny, "--name", "x", "--models-dir", tmp_path, "--tokenizer", "bpe", "--vocab-size", "300",
                       "--preset", "tiny", "--max-steps", "2", "--threads", "1")
    assert_one_line_error(r, "corpus is too short")


def test_a_one_character_corpus_is_said_in_the_singular(tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("a", encoding="utf-8")
    r = tinygpt_inproc("train", one, "--name", "x", "--models-dir", tmp_path, "--tokenizer", "bpe", "--threads", "1")
    assert_one_line_error(r, "corpus is too short: 1 character, but context length")


def test_options_that_count_characters_say_what_a_bpe_model_counts():
    """generate --top-k and inspect's options said "characters" alone, where a BPE model counts tokens."""
    from typer.main import get_command

    from tinygpt_tui.cli.main import app

    commands = get_command(app).commands
    said = {(c, p.name): p.help for c in ("generate", "inspect") for p in commands[c].params if "character" in (getattr(p, "help", "") or "")}
    assert {("generate", "top_k"), ("inspect", "top_k"), ("inspect", "embeddings"), ("inspect", "prompt")} <= set(said)
    assert all("token" in h for h in said.values()), [k for k, h in said.items() if "token" not in h]
    assert "token" in commands["inspect"].help.split(".")[0]


def test_export_takes_bpe_to_hf_and_refuses_gguf(tmp_path, bpe_models, bpe):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tinygpt_tui.engine.folder import load_model

    assert_one_line_error(tinygpt_inproc("export", "bee", tmp_path / "b.gguf", "--to", "gguf", "--models-dir", bpe_models), "GGUF", "BPE")
    assert not (tmp_path / "b.gguf").exists()
    r = tinygpt_inproc("export", "bee", tmp_path / "hf", "--to", "hf", "--models-dir", bpe_models)
    assert r.returncode == 0, r.stderr
    text = "ROMEO: héllo 红楼梦\n"
    hf_tok, ours = AutoTokenizer.from_pretrained(tmp_path / "hf"), load_model(bpe_models / "bee")
    ids = hf_tok(text)["input_ids"]
    assert ids == bpe.encode(text).ids and hf_tok.decode(ids) == text
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    x = torch.tensor([ids])
    with torch.no_grad():
        assert torch.allclose(hf(x).logits, ours.model(x)[0], atol=1e-5)


# ------------------------------------------------------------------ the app
async def test_app_sidebar_and_training_form_offer_bpe(bpe_models, small_corpus):
    from test_app import fill, listed, make_app, option_lines

    app = make_app(bpe_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await listed(pilot, app)
        models = app.get_screen("generate").query_one("#models")
        assert option_lines(models, 0)[1:] == ["  23k params · val 4.000", f"  fixture · ctx 32 · bpe {VOCAB}"]
        await pilot.press("ctrl+t")
        await pilot.pause()
        ts = app.screen
        fill(ts, **{"train-corpus-path": small_corpus, "train-name": "fb", "train-steps": "20", "hp-tokenizer": "bpe 1024"})
        cfg = ts.read_form()
        assert (cfg.tokenizer, cfg.vocab_size, cfg.init_from) == ("bpe", 1024, None)
        assert "--tokenizer bpe --vocab-size 1024" in cfg.command
        fill(ts, **{"hp-from": "bee"})  # starting from a model keeps its tokenizer, whatever the tokens field says
        cfg = ts.read_form()
        assert (cfg.tokenizer, cfg.vocab_size, cfg.init_from) == (None, None, "bee") and "--from bee" in cfg.command
