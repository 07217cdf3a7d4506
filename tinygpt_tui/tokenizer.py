"""Character-level tokenizer: one id per distinct character of the corpus."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tinygpt_tui.errors import CheckpointError

if TYPE_CHECKING:
    import numpy as np

BOM = "\ufeff"
MAX_VOCAB = 2_000_000


@dataclass
class Encoded:
    ids: list[int]
    dropped: list[str] = field(default_factory=list)  # distinct characters not in the vocabulary, in order seen


class CharTokenizer:
    def __init__(self, chars: list[str]):
        if not chars:
            raise CheckpointError("vocabulary is empty")
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        if len(self.stoi) != len(self.chars):
            raise CheckpointError("vocabulary has repeated characters")
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


def printable(text: str) -> str:
    """Text safe to show in a terminal: newlines and tabs are kept, every other control or format
    character (escape sequences included) becomes a Unicode control picture or a \\u.. escape, so
    nothing from a corpus, a prompt or a vocabulary can drive the terminal."""
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
            else:
                out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)
