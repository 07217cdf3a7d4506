"""A corpus as text: split it 90/10, encode it once, draw batches (engine/corpora.py reads the file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinygpt_tui.errors import CorpusError
from tinygpt_tui.tokenizer import BOM, CharTokenizer

TRAIN_FRACTION = 0.9


@dataclass
class Corpus:
    path: str
    text: str
    sha256: str  # of the file's bytes, as in the catalog

    @property
    def name(self) -> str:
        return Path(self.path).stem


def normalize_text(text: str) -> str:
    """Strip a leading byte-order mark and turn \\r\\n and \\r into \\n."""
    return text.removeprefix(BOM).replace("\r\n", "\n").replace("\r", "\n")


def min_corpus_chars(block_size: int) -> int:
    """The smallest corpus whose 10% validation split still holds one full window."""
    return int(np.ceil((block_size + 2) / (1 - TRAIN_FRACTION))) + 1


def split_text(text: str) -> tuple[str, str]:
    n = int(len(text) * TRAIN_FRACTION)
    return text[:n], text[n:]


def check_length(text: str, block_size: int) -> None:
    """A CorpusError if the text is too short to train a model of this context length on."""
    n, need = len(text), min_corpus_chars(block_size)
    if n < need:
        raise CorpusError(
            f"corpus is too short: {n:,} characters, but context length {block_size} with a 90/10 split "
            f"needs at least {need:,}; use a longer text or a smaller --block-size"
        )


class Dataset:
    """A corpus encoded once into numpy arrays, split into train (first 90%) and val (last 10%)."""

    def __init__(self, corpus: Corpus, tokenizer: CharTokenizer, block_size: int):
        check_length(corpus.text, block_size)
        self.corpus, self.tokenizer, self.block_size = corpus, tokenizer, block_size
        train_text, val_text = split_text(corpus.text)
        self.train, dropped_t = tokenizer.encode_array(train_text)
        self.val, dropped_v = tokenizer.encode_array(val_text)
        self.dropped = list(dict.fromkeys(dropped_t + dropped_v))
        for split, arr in (("train", self.train), ("validation", self.val)):
            if len(arr) < block_size + 2:
                raise CorpusError(
                    f"the {split} split holds {len(arr)} known characters; context length {block_size} needs {block_size + 2}"
                )
        self._torch = {}

    def split(self, name: str) -> np.ndarray:
        if name not in ("train", "val"):
            raise ValueError(name)
        return self.train if name == "train" else self.val

    def tensor(self, name: str):
        import torch

        if name not in self._torch:
            self._torch[name] = torch.from_numpy(self.split(name).astype(np.int64))
        return self._torch[name]

    def batch(self, name: str, batch_size: int, generator, device):
        """Random windows: x (B, T) and y (B, T), y shifted by one."""
        import torch

        data = self.tensor(name)
        ix = torch.randint(len(data) - self.block_size - 1, (batch_size,), generator=generator)
        xy = data[ix[:, None] + torch.arange(self.block_size + 1)]
        x, y = xy[:, :-1], xy[:, 1:]
        if device.type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x.to(device), y.to(device)

    def windows(self, name: str, batch_size: int, device):
        """Every non-overlapping window of the split, in order: for a deterministic full evaluation."""
        import torch

        data, T = self.tensor(name), self.block_size
        starts = torch.arange((len(data) - 1) // T) * T
        for i in range(0, len(starts), batch_size):
            xy = data[starts[i : i + batch_size, None] + torch.arange(T + 1)]
            yield xy[:, :-1].to(device), xy[:, 1:].to(device)
