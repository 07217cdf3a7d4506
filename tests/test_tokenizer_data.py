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
