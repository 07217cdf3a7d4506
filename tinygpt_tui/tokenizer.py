"""Tokenizers: text to ids and back. Two kinds share one interface (``Tokenizer``):

- ``CharTokenizer``: one id per distinct character of the corpus (vocab.json);
- ``BpeTokenizer``: byte-level BPE (GPT-2's scheme) trained on the corpus with Hugging Face
  ``tokenizers``: the 256 bytes are tokens, and merges of frequent neighbours add longer ones
  (tokenizer.json). Any text encodes, nothing is dropped; a token may hold part of a character.

Both give a streaming decoder (``stream()``): ids in, text out, holding back the bytes of a
character not finished yet, so a sampler never shows a broken UTF-8 sequence.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tinygpt_tui.errors import CheckpointError, CorpusError, SettingsError

if TYPE_CHECKING:
    import numpy as np

BOM = "\ufeff"
MAX_VOCAB = 2_000_000
BPE_MIN, BPE_MAX = 256, 262_144  # the 256 bytes (a byte model), up to a quarter million
MAX_TOKEN_BYTES = 1024  # no merge of a real corpus is longer; a stranger's file is refused past it
TOKENIZER_KINDS = ("char", "bpe")


@dataclass
class Encoded:
    ids: list[int]
    dropped: list[str] = field(default_factory=list)  # distinct characters not in the vocabulary, in order seen


class Tokenizer:
    """What every tokenizer offers; the rest of tinygpt uses nothing else."""

    kind = ""
    FILE = ""  # its file in a model folder
    unit = "token"  # what one id stands for, in words

    vocab_size: int

    def encode(self, text: str) -> Encoded:
        raise NotImplementedError

    def encode_array(self, text: str) -> tuple[np.ndarray, list[str]]:
        """A whole corpus as a numpy array (uint16 when the vocabulary fits), and the characters dropped."""
        raise NotImplementedError

    def decode(self, ids) -> str:
        stream = self.stream()
        return stream.feed(ids) + stream.flush()

    def token_text(self, i: int) -> str:
        """Token i as text (bytes that are part of a character shown as ‹e2›, see ``byte_text``). Not
        inert: show it through ``printable`` or the inspector's ``display_char``."""
        raise NotImplementedError

    def token_id(self, text: str) -> int | None:
        """The id of the token that is exactly this text, if there is one."""
        raise NotImplementedError

    def stream(self):
        """A streaming decoder: ``feed(ids)`` returns the text finished so far, ``flush()`` the rest."""
        raise NotImplementedError

    def to_json(self) -> str:
        raise NotImplementedError

    @property
    def labels(self) -> list[str]:
        """Every token's text, by id (what the inspector labels columns and bars with)."""
        if getattr(self, "_labels", None) is None:
            self._labels = [self.token_text(i) for i in range(self.vocab_size)]
        return self._labels

    @property
    def start_id(self) -> int:
        """Where a generation without a prompt starts: a newline (a fresh line), else token 0."""
        i = self.token_id("\n")
        return 0 if i is None else i

    def describe(self) -> str:
        """One word or two for the sidebar and `tinygpt models`: char, bpe 512."""
        return self.kind if self.kind == "char" else f"{self.kind} {self.vocab_size}"


class CharStream:
    def __init__(self, chars: list[str]):
        self.chars = chars

    def feed(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)

    def flush(self) -> str:
        return ""


class CharTokenizer(Tokenizer):
    kind, FILE, unit = "char", "vocab.json", "character"

    def __init__(self, chars: list[str]):
        if not chars:
            raise CheckpointError("vocabulary is empty")
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        if len(self.stoi) != len(self.chars):
            raise CheckpointError("vocabulary has repeated characters")
        if bad := next((c for c in self.chars if "\ud800" <= c <= "\udfff"), None):  # (JSON's "\ud800", a pickle's str)
            raise CheckpointError(f"vocabulary holds a lone surrogate (U+{ord(bad):04X}), which is no character UTF-8 can write")
        self._table = None  # code point -> id, built on the first encode_array

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Encoded:
        """Encode text; characters outside the vocabulary are dropped and reported."""
        stoi = self.stoi
        return Encoded([stoi[c] for c in text if c in stoi], list(dict.fromkeys(c for c in text if c not in stoi)))

    def encode_array(self, text: str) -> tuple[np.ndarray, list[str]]:
        """Fast encoding of a whole corpus (or a chunk of one) to a numpy array (uint16 when it fits):
        each character's code point looks up its id in a table (the top value: not in the vocabulary)."""
        import numpy as np  # here, not at the top: the app lists models without numpy (first paint)

        if self._table is None:
            dtype = np.uint16 if self.vocab_size <= 65535 else np.uint32
            self._table = np.full(0x110000, np.iinfo(dtype).max, dtype=dtype)
            self._table[[ord(c) for c in self.chars]] = np.arange(self.vocab_size, dtype=dtype)
        ascii_ = text.isascii()  # (one byte a character: no need to widen to 32 bits)
        codes = np.frombuffer(text.encode("ascii" if ascii_ else "utf-32-le"), dtype=np.uint8 if ascii_ else np.uint32)
        ids = self._table[codes]
        unknown = ids == self._table.dtype.type(np.iinfo(self._table.dtype).max)
        if not unknown.any():
            return ids, []
        dropped = list(dict.fromkeys(chr(c) for c in codes[unknown][:10000]))
        return ids[~unknown], dropped

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)

    def token_text(self, i: int) -> str:
        return self.chars[i]

    def token_id(self, text: str) -> int | None:
        return self.stoi.get(text)

    @property
    def labels(self) -> list[str]:
        return self.chars

    def stream(self) -> CharStream:
        return CharStream(self.chars)

    def grown(self, chars) -> "CharTokenizer":
        """This vocabulary with the characters (a text or a list) it lacks appended (old ids unchanged)."""
        new = sorted(set(chars) - set(self.stoi))
        return CharTokenizer(self.chars + new) if new else self

    # --- persistence (JSON, never pickle) ---
    def to_json(self) -> str:
        return json.dumps({"type": "char", "chars": self.chars}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "CharTokenizer":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:  # (a 5000-digit number too)
            raise CheckpointError(f"vocab.json is not valid JSON: {str(e).split(';')[0][:90]}") from None
        if not isinstance(data, dict) or data.get("type") != "char" or not isinstance(data.get("chars"), list):
            raise CheckpointError('vocab.json must be {"type": "char", "chars": [...]}')
        chars = data["chars"]
        if len(chars) > MAX_VOCAB:
            raise CheckpointError(f"vocab.json has {len(chars)} entries, beyond the limit of {MAX_VOCAB}")
        if not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise CheckpointError("vocab.json entries must each be a single character")
        return cls(chars)


# ------------------------------------------------------------------ byte-level BPE
def byte_symbols() -> dict[str, int]:
    """GPT-2's table: each byte stands for a printable character in token strings (a space is Ġ,
    a newline Ċ), so that a vocabulary is plain JSON text. {character: byte}."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), ord("\u00ff") + 1)]
    kept = set(keep)
    rest = [b for b in range(256) if b not in kept]
    return {**{chr(b): b for b in keep}, **{chr(256 + n): b for n, b in enumerate(rest)}}


SYMBOL_BYTE = byte_symbols()
BYTE_SYMBOL = {b: c for c, b in SYMBOL_BYTE.items()}
CHUNK_CHARS = 1 << 16  # a corpus is encoded in pieces of about this many characters, in parallel
ENCODE_BATCH = 4  # pieces per core encoded at a time (16 at most: a megabyte of text)
CUT = re.compile(r"\n(?=\S)")  # a newline before a non-space: a pre-token boundary, so pieces encode as the whole


def pieces(text: str, size: int = CHUNK_CHARS):
    """The text in pieces of about ``size`` characters, each cut after a newline that GPT-2's
    pre-tokenizer always splits after: encoded one by one they give exactly the ids of the whole."""
    start = 0
    while len(text) - start > size:
        m = CUT.search(text, start + size)
        if m is None:
            break
        yield text[start : m.end()]
        start = m.end()
    yield text[start:]


def require_tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise SettingsError("BPE needs Hugging Face tokenizers: pip install 'tokenizers>=0.19'") from None
    return tokenizers


SURROGATE = re.compile("[\ud800-\udfff]")


def whole_characters(text: str) -> tuple[str, list[str]]:
    """Text that UTF-8 can encode: a lone surrogate (a command-line argument's undecodable byte) is
    left out and reported, as a character vocabulary leaves out what it does not know."""
    found = SURROGATE.findall(text)
    return (SURROGATE.sub("", text), list(dict.fromkeys(found))) if found else (text, [])


PARTIAL = re.compile("[\udc80-\udcff]+")  # the bytes UTF-8 could not decode, as surrogateescape gives them


def byte_text(data: bytes) -> str:
    """Token bytes as a label: the characters they spell where they are whole UTF-8, and each run of
    bytes that is only part of a character (or never UTF-8) as its hex in ‹›: "€" is ‹e2›‹82›‹ac› as
    three one-byte tokens, ‹e282›‹ac› as two, " caf‹c3›" the token " caf" and é's first byte."""
    return PARTIAL.sub(lambda m: "\u2039" + "".join(f"{ord(c) - 0xDC00:02x}" for c in m.group()) + "\u203a",
                       data.decode("utf-8", "surrogateescape"))


BYTE_LABEL = re.compile("\u2039[0-9a-f]+\u203a")  # byte_text's ‹a9›


def byte_key(labels) -> str | None:
    """The key to byte_text's ‹a9› where the labels hold one (else None): a newcomer could not tell it was a byte."""
    found = list(dict.fromkeys(m for t in labels for m in BYTE_LABEL.findall(t)))
    return f"{' '.join(found[:3])}: byte(s) in hex of a character the tokenizer splits into bytes" if found else None


class ByteStream:
    """Token bytes in, text out: an incremental UTF-8 decoder holds back a character's first bytes
    until its last arrives; a byte that can never start or finish one becomes U+FFFD."""

    def __init__(self, token_bytes: list[bytes]):
        self.token_bytes, self.utf8 = token_bytes, codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, ids) -> str:
        return self.utf8.decode(b"".join(self.token_bytes[i] for i in ids))

    def flush(self) -> str:
        return self.utf8.decode(b"", final=True)


class BpeTokenizer(Tokenizer):
    kind, FILE, unit = "bpe", "tokenizer.json", "token"

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]):
        self.vocab, self.merges = vocab, merges  # token strings in GPT-2's byte symbols
        self.symbols = sorted(vocab, key=vocab.get)
        self.token_bytes = [bytes(SYMBOL_BYTE[c] for c in s) for s in self.symbols]
        self._hf = self._labels = None

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    @property
    def hf(self):
        """The Hugging Face tokenizer, built from the checked vocabulary and merges when first used."""
        if self._hf is None:
            tk = require_tokenizers()
            hf = tk.Tokenizer(tk.models.BPE(vocab=self.vocab, merges=self.merges))
            hf.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
            hf.decoder = tk.decoders.ByteLevel()
            self._hf = hf
        return self._hf

    @classmethod
    def train(cls, text, vocab_size: int) -> "BpeTokenizer":
        """A byte-level BPE of ``vocab_size`` tokens learned from text, or an iterator of texts (merges of
        pairs seen twice or more)."""
        check_bpe_size(vocab_size)
        tk = require_tokenizers()
        hf = tk.Tokenizer(tk.models.BPE())
        hf.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False, special_tokens=[],
                                         initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
        hf.train_from_iterator((p for t in ([text] if isinstance(text, str) else text) for p in pieces(t)), trainer)
        got = hf.get_vocab_size()
        if got < vocab_size:
            raise CorpusError(f"--vocab-size {vocab_size:,} is more than this corpus supports: merging the pairs it holds twice "
                              f"or more stops at {got:,} tokens; use --vocab-size {got:,} or less")
        return cls.from_json(hf.to_str())

    def encode(self, text: str) -> Encoded:
        text, dropped = whole_characters(text)
        return Encoded(self.hf.encode(text).ids, dropped)

    def encode_array(self, text: str) -> tuple[np.ndarray, list[str]]:
        import numpy as np

        text, dropped = whole_characters(text)
        dtype = np.uint16 if self.vocab_size <= 65535 else np.uint32
        # a few pieces per core at a time, in parallel: an Encoding costs about 130 bytes a token (its
        # strings and offsets; encode_batch_fast, tokenizers 0.20+, leaves the offsets out), so a whole
        # 8 MB chunk at once took a gigabyte while a character corpus takes a hundred megabytes
        encode = getattr(self.hf, "encode_batch_fast", self.hf.encode_batch)
        todo, n = list(pieces(text)), min(ENCODE_BATCH * (os.cpu_count() or 1), 16)
        parts = [np.asarray(e.ids, dtype=dtype) for k in range(0, len(todo), n) for e in encode(todo[k : k + n])]
        return (np.concatenate(parts) if parts else np.zeros(0, dtype)), dropped

    def token_text(self, i: int) -> str:
        return byte_text(self.token_bytes[i])

    def token_id(self, text: str) -> int | None:
        return self.vocab.get("".join(BYTE_SYMBOL[b] for b in text.encode("utf-8")))

    def stream(self) -> ByteStream:
        return ByteStream(self.token_bytes)

    def to_json(self) -> str:
        return self.hf.to_str()

    @classmethod
    def from_json(cls, text: str) -> "BpeTokenizer":
        """tokenizer.json checked before use: a byte-level BPE with ids 0..N-1, every byte a token,
        every merge of two tokens into a third. Only its vocabulary and merges are used."""
        def bad(why: str):
            return CheckpointError(f"tokenizer.json {why}")

        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise bad(f"is not valid JSON: {str(e).split(';')[0][:90]}") from None
        model = doc.get("model") if isinstance(doc, dict) else None
        if not isinstance(model, dict) or model.get("type") != "BPE":
            raise bad('is not a BPE tokenizer (its "model" must have type BPE)')
        pre = doc.get("pre_tokenizer")
        if not isinstance(pre, dict) or pre.get("type") != "ByteLevel":
            raise bad("is not byte-level (its pre_tokenizer must be ByteLevel)")
        if doc.get("normalizer") is not None or doc.get("added_tokens") not in (None, []):
            raise bad("has a normalizer or added tokens, which tinygpt does not use")
        vocab, merges = model.get("vocab"), model.get("merges")
        if not isinstance(vocab, dict) or not isinstance(merges, list):
            raise bad("lacks its vocabulary or merges")
        check_bpe_size(len(vocab), CheckpointError, "tokenizer.json has")
        if sorted(v for v in vocab.values() if type(v) is int) != list(range(len(vocab))):
            raise bad(f"ids are not 0 to {len(vocab) - 1}, each once")
        for s in vocab:
            if not s or len(s) > MAX_TOKEN_BYTES or any(c not in SYMBOL_BYTE for c in s):
                raise bad(f"has a token that is not a run of byte symbols: {s[:40]!r}")
        missing = [c for c in SYMBOL_BYTE if c not in vocab]
        if missing:
            raise bad(f"lacks {len(missing)} of the 256 bytes as tokens (every byte must be one)")
        if len(merges) > len(vocab):
            raise bad("has more merges than tokens")
        pairs = []
        for m in merges:
            pair = m.split(" ") if isinstance(m, str) else m
            if (not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(x, str) and x in vocab for x in pair)
                    or pair[0] + pair[1] not in vocab):
                raise bad(f"has a merge that is not of two tokens into a third: {str(m)[:40]!r}")
            pairs.append((pair[0], pair[1]))
        return cls(dict(vocab), pairs)


def check_bpe_size(n, error=SettingsError, what: str = "--vocab-size is") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not BPE_MIN <= n <= BPE_MAX:
        raise error(f"{what} {str(n)[:20]} tokens: a byte-level BPE has {BPE_MIN} (the bytes) to {BPE_MAX:,}")
    return n


def tokenizer_from_json(name: str, text: str) -> Tokenizer:
    """The tokenizer saved in a model folder under ``name`` (vocab.json or tokenizer.json)."""
    return CharTokenizer.from_json(text) if name == CharTokenizer.FILE else BpeTokenizer.from_json(text)


def printable(text: str) -> str:
    """Text safe to show in a terminal: newlines and tabs are kept, every other control or format
    character (escape sequences included) becomes a Unicode control picture or a \\u.. escape, so
    nothing from a corpus, a prompt or a vocabulary can drive the terminal. A byte that was not UTF-8
    in a file name or an argument (Python's surrogate escape) is shown as the byte, \\xff."""
    out = []
    for ch in text:
        if ch in "\n\t\u200d":  # ZWJ joins emoji; harmless
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            o = ord(ch)
            if o < 0x20:
                out.append(chr(0x2400 + o))  # ␛ for ESC, ␀ for NUL, ...
            elif o == 0x7F:
                out.append("\u2421")
            elif 0xDC80 <= o <= 0xDCFF:
                out.append(f"\\x{o - 0xDC00:02x}")
            else:
                out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


def one_line(text) -> str:
    """``printable`` on one line: a name, a path or a message from a file or a user (a folder may be named with a
    newline), its newline shown as \\n and its tab as \\t."""
    text = str(text)  # (isprintable: none that printable changes, at C's speed: the runs table weighs each name against all)
    return text if text.isprintable() else printable(text).replace("\n", "\\n").replace("\t", "\\t")


def shell_word(text) -> str:
    """``text`` as one shell word that a shell reads back as ``text`` (a command printed to be pasted), shown inert on
    one line: shlex's quoting ('~', 'my model'), or where ``one_line`` would change it (a newline, an escape, a
    bidi override, a byte that was not UTF-8), bash's and zsh's $'...' with those characters escaped as their UTF-8
    bytes, \xe2\x80\xa8 (bash reads \u2028 only from 4.2 on and in a UTF-8 locale: macOS's bash 3.2, LC_ALL=C)."""
    import shlex

    text = str(text)
    if one_line(text) == text:
        return shlex.quote(text)
    out = []
    for ch in text:
        o = ord(ch)
        if ch in "\\'":
            out.append("\\" + ch)
        elif one_line(ch) == ch:
            out.append(ch)
        elif ch in "\n\t":
            out.append({"\n": "\\n", "\t": "\\t"}[ch])
        else:  # (a byte that was not UTF-8, Python's surrogate escape: the byte itself)
            out += [f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape" if 0xDC80 <= o <= 0xDCFF else "surrogatepass")]
    return "$'" + "".join(out) + "'"
