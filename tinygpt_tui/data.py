"""A corpus as tokens: split it 90/10, encode it once, draw batches.

A small corpus is text in memory (engine/corpora.py reads the file); any corpus, however big, can
be prepared once into memory-mapped token files (engine/prepare.py). The Dataset reads both the
same way: two arrays of token ids, windows drawn from them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinygpt_tui.errors import CorpusError
from tinygpt_tui.tokenizer import BOM

TRAIN_FRACTION = 0.9


@dataclass
class Corpus:
    path: str
    text: str
    sha256: str  # of the file's bytes, as in the catalog

    @property
    def name(self) -> str:
        return Path(self.path).stem

    @property
    def chars(self) -> int:
        return len(self.text)

    def tokens(self, tokenizer) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The train and validation splits encoded, and the characters the vocabulary lacks."""
        train_text, val_text = split_text(self.text)
        train, dropped_t = tokenizer.encode_array(train_text)
        val, dropped_v = tokenizer.encode_array(val_text)
        return train, val, list(dict.fromkeys(dropped_t + dropped_v))

    def split_size(self, name: str) -> tuple[int, int]:
        """Characters and UTF-8 bytes of a split's text: what bits per character (or byte) divide by."""
        text = split_text(self.text)[0 if name == "train" else 1]
        return len(text), len(text.encode("utf-8"))


def normalize_text(text: str) -> str:
    """Strip a leading byte-order mark and turn \\r\\n and \\r into \\n."""
    return text.removeprefix(BOM).replace("\r\n", "\n").replace("\r", "\n")


def min_corpus_chars(block_size: int) -> int:
    """The smallest corpus whose 10% validation split still holds one full window."""
    return int(np.ceil((block_size + 2) / (1 - TRAIN_FRACTION))) + 1


def split_text(text: str) -> tuple[str, str]:
    n = int(len(text) * TRAIN_FRACTION)
    return text[:n], text[n:]


def check_length(text: str | int, block_size: int) -> None:
    """A CorpusError if the text (or this many characters) is too short to train a model of this context length on."""
    n, need = text if isinstance(text, int) else len(text), min_corpus_chars(block_size)
    if n < need:
        raise CorpusError(
            f"corpus is too short: {n:,} character{'' if n == 1 else 's'}, but context length {block_size} with a 90/10 split "
            f"needs at least {need:,}; use a longer text or a smaller --block-size"
        )


class Dataset:
    """A corpus's tokens, train (first 90%) and val (last 10%): numpy arrays, or memory maps of a
    prepared corpus (engine/prepare.py), which the operating system pages in as windows are read."""

    def __init__(self, corpus, tokenizer, block_size: int):
        check_length(corpus.chars, block_size)
        self.corpus, self.tokenizer, self.block_size = corpus, tokenizer, block_size
        self.train, self.val, self.dropped = corpus.tokens(tokenizer)
        for split, arr in (("train", self.train), ("validation", self.val)):
            if len(arr) < block_size + 2:
                raise CorpusError(
                    f"the {split} split holds {len(arr)} tokens{' of known characters' if tokenizer.kind == 'char' else ''}; "
                    f"context length {block_size} needs {block_size + 2}: use a longer text or a smaller --block-size"
                )

    def bits(self, loss: float, name: str = "val") -> tuple[float, float]:
        """Bits per character and per byte of the split's text for a mean loss per token (in nats):
        the same scale whatever the tokenizer (a character model's bits per character is loss / ln 2)."""
        chars, nbytes = self.corpus.split_size(name)
        nats = loss * len(self.split(name))  # the whole split's nats, at this loss per token
        return nats / math.log(2) / max(chars, 1), nats / math.log(2) / max(nbytes, 1)

    def split(self, name: str) -> np.ndarray:
        if name not in ("train", "val"):
            raise ValueError(name)
        return self.train if name == "train" else self.val

    def rows(self, name: str, starts) -> tuple:
        """x and y (B, T) of int64 for windows starting at ``starts``, y shifted by one."""
        import torch

        data = self.split(name)  # (a memory map reads only the pages these windows touch)
        xy = torch.from_numpy(data[np.asarray(starts)[:, None] + np.arange(self.block_size + 1)].astype(np.int64))
        return xy[:, :-1], xy[:, 1:]

    def batch(self, name: str, batch_size: int, generator, device):
        """Random windows: x (B, T) and y (B, T), y shifted by one."""
        import torch

        ix = torch.randint(len(self.split(name)) - self.block_size - 1, (batch_size,), generator=generator)
        x, y = self.rows(name, ix.numpy())
        if device.type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x.to(device), y.to(device)

    def windows(self, name: str, batch_size: int, device, max_tokens: int | None = None):
        """Every non-overlapping window of the split, in order: for a deterministic full evaluation
        (past max_tokens, that many tokens' worth of them, evenly spread: a big corpus's sample)."""
        T = self.block_size
        starts = np.arange((len(self.split(name)) - 1) // T) * T
        if max_tokens and len(starts) * T > max_tokens:
            starts = starts[np.linspace(0, len(starts) - 1, max(1, max_tokens // T)).astype(np.int64)]
        for i in range(0, len(starts), batch_size):
            x, y = self.rows(name, starts[i : i + batch_size])
            yield x.to(device), y.to(device)
