"""Tokenizer and corpus handling: any Unicode, BOM stripped, unknown characters reported, 90/10 split."""

import os
import numpy as np
import pytest

from tinygpt_tui.data import Dataset, min_corpus_chars, split_text
from tinygpt_tui.engine.corpora import read_corpus
from tinygpt_tui.errors import CorpusError
from tinygpt_tui.tokenizer import CharTokenizer, printable

from tests.conftest import hongloumeng_path


def test_round_trip_with_chinese_and_emoji():
    text = "林黛玉 walks 🌸🎉 — naïve café\n"
    tok = CharTokenizer.from_text(text)
    enc = tok.encode(text)
    assert enc.dropped == [] and tok.decode(enc.ids) == text
    arr, dropped = tok.encode_array(text)
    assert arr.tolist() == enc.ids and dropped == []


def test_unknown_characters_are_dropped_and_reported():
    tok = CharTokenizer.from_text("abc ")
    enc = tok.encode("a€b€ 💥c")
    assert tok.decode(enc.ids) == "ab c"
    assert enc.dropped == ["€", "💥"]


def test_vocabulary_json_round_trip_keeps_order():
    tok = CharTokenizer.from_text("zyx玉\n\t")
    again = CharTokenizer.from_json(tok.to_json())
    assert again.chars == tok.chars


def test_bom_stripped_and_newlines_normalised(tmp_path):
    p = tmp_path / "c.txt"
    p.write_bytes("\ufeffline one\r\nline two\rline three\n".encode("utf-8"))
    c = read_corpus(p)
    assert c.text == "line one\nline two\nline three\n"
    assert "\ufeff" not in CharTokenizer.from_text(c.text).chars


def test_hongloumeng_vocabulary():
    c = read_corpus(hongloumeng_path())
    tok = CharTokenizer.from_text(c.text)
    assert not c.text.startswith("\ufeff")
    assert 4000 < tok.vocab_size < 4500
    arr, dropped = tok.encode_array(c.text[:5000])
    assert arr.dtype == np.uint16 and tok.decode(arr.tolist()) == c.text[:5000] and not dropped


@pytest.mark.parametrize(
    "content,msg",
    [
        (b"", "empty"),
        (b"   \n\n", "only whitespace"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("caf\xe9".encode("latin-1") * 100, "not UTF-8.*iconv"),
        ("ein Märchen\n".encode() * 200 + "中".encode()[:2], "ends in the middle of a UTF-8 character"),  # a copy cut short
    ],
)
def test_bad_corpora_get_one_line_errors(tmp_path, content, msg):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(CorpusError, match=msg) as e:
        read_corpus(p)
    assert "\n" not in str(e.value)


def test_missing_and_directory_corpus(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        read_corpus(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match="directory"):
        read_corpus(tmp_path)


def test_split_is_first_90_last_10_like_nanogpt(tmp_path):
    text = "".join(chr(97 + i % 26) for i in range(5000))
    train, val = split_text(text)
    assert train + val == text and len(train) == 4500


def test_corpus_too_short_for_context(tmp_path):
    p = tmp_path / "short.txt"
    p.write_text("hello world " * 50, encoding="utf-8")
    c = read_corpus(p)
    with pytest.raises(CorpusError, match="too short"):
        Dataset(c, CharTokenizer.from_text(c.text), 128)
    assert min_corpus_chars(128) > len(c.text)
    Dataset(c, CharTokenizer.from_text(c.text), 16)  # fine with a small context


def test_batches_are_shifted_windows(small_corpus):
    import torch

    c = read_corpus(small_corpus)
    tok = CharTokenizer.from_text(c.text)
    ds = Dataset(c, tok, 32)
    x, y = ds.batch("train", 4, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert x.shape == y.shape == (4, 32)
    assert torch.equal(x[:, 1:], y[:, :-1])
    text = tok.decode(x[0].tolist())
    assert text in c.text[: int(len(c.text) * 0.9) + 1]


def test_printable_neutralises_escape_sequences():
    s = printable("ok\x1b[2J\x1b]0;pwned\x07\u202e\x00done\n\ttab")
    assert "\x1b" not in s and "\x07" not in s and "\u202e" not in s and "\x00" not in s
    assert s.startswith("ok") and s.endswith("done\n\ttab")


def test_printable_shows_an_undecodable_byte_of_a_path_as_the_byte():
    name = os.fsdecode(b"c\xff\x80.txt")  # how Python reads a file name that is not UTF-8
    assert printable(name) == "c\\xff\\x80.txt"
    assert printable("\ud800") == "\\ud800"  # a lone surrogate that no byte stands for stays a \u escape


BOOK = "“Pray, do not trouble yourself,” said Margaret — she was naïve, not a fool, and the café was shut.\n" * 40


@pytest.mark.parametrize(
    "content,msg",
    [
        # cp1252's curly quotes: the advice was `iconv -f latin1`, which turns them into invisible C1 controls
        (BOOK.encode("cp1252"), r"bad byte 0x93.*iconv -f cp1252 -t utf-8"),
        # UTF-16 saved without its byte-order mark: it was "looks binary", with no way out
        (BOOK.encode("utf-16-le"), "is UTF-16LE text.*iconv -f UTF-16LE"),
        (BOOK.encode("utf-16-be"), "is UTF-16BE text.*iconv -f UTF-16BE"),
        # an RTF document renamed .txt was trained on, markup and all
        (rb"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard " + BOOK.encode() + b"}", "RTF document.*plain text"),
        # UTF-8 read as cp1252 and saved as UTF-8 again, and the old advice followed: both were trained on silently
        (BOOK.encode().decode("cp1252", errors="replace").encode(), "garbled UTF-8.*â€œ.*“.*iconv -f utf-8 -t cp1252"),
        (BOOK.encode().decode("latin-1").encode(), "garbled UTF-8.*iconv -f utf-8 -t latin1"),
        (BOOK.encode("cp1252").decode("latin-1").encode(), "120 invisible C1 control characters.*iconv -f cp1252"),
    ],
    ids=["cp1252", "utf16le", "utf16be", "rtf", "mojibake-cp1252", "mojibake-latin1", "c1-controls"],
)
def test_a_book_in_another_encoding_is_refused_with_the_conversion_that_fixes_it(tmp_path, content, msg):
    p = tmp_path / "book.txt"
    p.write_bytes(content)
    with pytest.raises(CorpusError, match=msg) as e:
        read_corpus(p)
    assert "\n" not in str(e.value) and str(e.value).isprintable()


EAST_ASIAN = {  # (a book as a learner may have saved it before UTF-8; Red Chamber's own text for the Chinese)
    "GB18030": ("Chinese", None, "gb18030"),
    "BIG5": ("Chinese", "話說天下大勢，分久必合，合久必分。周末七國分爭，並入於秦。\n" * 400, "big5"),
    "SHIFT_JIS": ("Japanese", "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。\n" * 400, "shift_jis"),
    "EUC-KR": ("Korean", "나는 고양이로소이다. 이름은 아직 없다. 어디서 태어났는지 짐작이 가지 않는다.\n" * 400, "euc-kr"),
}


@pytest.mark.parametrize("encoding", list(EAST_ASIAN))
def test_a_chinese_japanese_or_korean_book_before_utf8_is_told_its_encoding(tmp_path, encoding):
    """A Chinese book in GB18030 was told `iconv -f cp1252` (Windows or Latin-1 text), which makes nonsense of it: the
    README invites Chinese books. The bytes are read as each encoding saved before UTF-8, and the one that reads as
    its script is named."""
    lang, text, codec = EAST_ASIAN[encoding]
    text = text or hongloumeng_path().read_text(encoding="utf-8")[:60_000]
    p = tmp_path / "book.txt"
    p.write_bytes(text.encode(codec, errors="ignore"))
    with pytest.raises(CorpusError, match=f"reads as {lang} in {encoding}: convert it first, e.g. iconv -f {encoding} -t utf-8"):
        read_corpus(p)


def test_text_that_quotes_a_little_mojibake_or_is_not_latin_is_still_a_corpus(tmp_path):
    p = tmp_path / "book.txt"
    p.write_text(BOOK + "A page on encodings: “Ã©” is what é becomes when UTF-8 is read as cp1252.\n", encoding="utf-8")
    assert read_corpus(p).text.endswith("cp1252.\n")
    p.write_text("林黛玉道：“你又来了。”\n" * 200 + "Ein Märchen — Ελληνικά — русский\n" * 50, encoding="utf-8")
    assert "русский" in read_corpus(p).text
