"""A run's tokenizer, and continuing a model on a new book: `tinygpt train NEWBOOK --name B --from A`.

B starts from A's weights, so it keeps A's architecture (the shapes must match; dropout, which
shapes nothing, may change: a smaller book often wants more) and A's tokenizer:
- a BPE tokenizer is kept as it is: any text encodes with it;
- a character vocabulary grows: the new book's characters A never saw are appended (A's ids keep
  their meaning) and get fresh embedding rows, drawn as a new model's are; every other tensor,
  and A's rows, start as A's. The output head is the embedding (tied) or grows the same way.
The training settings (steps, minutes, learning rate...) come from the command line as for a new
run; the optimizer starts fresh. B's config.json and card record the lineage: A's name, its corpus
and sha256, the step its weights are from.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path

from tinygpt_tui.config import GPTConfig
from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.engine.files import atomic_write, read_text
from tinygpt_tui.engine.presets import MODEL_KEYS, TrainConfig
from tinygpt_tui.errors import CheckpointError, CorpusError, SettingsError, TinyGPTError
from tinygpt_tui.tokenizer import BpeTokenizer, CharTokenizer, Tokenizer


@dataclass
class Parent:
    name: str
    folder: Path
    cfg: GPTConfig
    tokenizer: Tokenizer
    state: dict  # A's weights (fp32 torch tensors, a tied head once)
    doc: dict

    def lineage(self) -> dict:
        """What B's config.json keeps of A (its "lineage" section)."""
        corpus, figures = self.doc.get("corpus", {}), self.doc.get("figures", {})
        return {"from": self.name, "path": str(self.folder), "corpus": str(corpus.get("name", "")),
                "sha256": str(corpus.get("sha256", "")), "step": int(figures.get("weights_step", figures.get("step", 0))),
                "tokenizer": self.tokenizer.describe()}


def read_parent(cfg: TrainConfig) -> Parent:
    """A, the model --from names: checked as a folder from a stranger is, its weights read."""
    if cfg.resume:
        raise SettingsError("--from starts a new model from another one; --resume continues this one: give one of them")
    try:
        folder = ckpt.resolve_model(cfg.init_from, cfg.models_dir)
        doc, model_cfg = ckpt.check_folder(folder)
    except CheckpointError as e:
        raise CheckpointError(f"--from {cfg.init_from}: {e}") from None
    state = ckpt.check_finite(ckpt.read_tensors(folder / ckpt.WEIGHTS), ckpt.WEIGHTS)
    return Parent(folder.name, folder, model_cfg, ckpt.read_vocab(folder), state, doc)


def child_config(given: TrainConfig, parent: Parent) -> TrainConfig:
    """B's settings: A's architecture and tokenizer (asking for others is refused), the rest as given."""
    kept = [k for k in MODEL_KEYS if k != "dropout"]
    for k in kept:
        v = getattr(given, k)
        if v is not None and v != getattr(parent.cfg, k):
            raise SettingsError(f"--from {parent.name} keeps its architecture ({k.replace('_', '-')} {getattr(parent.cfg, k)}); "
                                f"leave out --{k.replace('_', '-')}")
    kind = parent.tokenizer.kind
    if given.tokenizer not in (None, kind) or given.vocab_size is not None:
        raise SettingsError(f"--from {parent.name} keeps its tokenizer ({parent.tokenizer.describe()}); "
                            "leave out --tokenizer and --vocab-size")
    vocab = parent.cfg.vocab_size if kind == "bpe" else None
    dropout = parent.cfg.dropout if given.dropout is None else given.dropout
    return replace(given, **{k: getattr(parent.cfg, k) for k in kept}, dropout=dropout, tokenizer=kind, vocab_size=vocab)


def run_tokenizer(cfg: TrainConfig, parent: Parent | None) -> tuple:
    """A new run's tokenizer, as engine/prepare.py takes it (a tokenizer, or a function of the scanned
    corpus that makes one, or a generator of its progress that returns one), and its lineage. From A:
    A's tokenizer (a character vocabulary with the new book's characters appended). Else learned from
    the corpus: its characters, or a BPE learned from the training split alone (the validation text
    stays unseen, as it does for the weights)."""
    if parent is not None:
        tok = parent.tokenizer
        return (tok if tok.kind == "bpe" else lambda source: tok.grown(source.charset)), parent.lineage()
    if cfg.tokenizer == "bpe":
        return (lambda source: learning_bpe(source, cfg.vocab_size, cfg.block_size)), None
    return (lambda source: CharTokenizer(source.charset)), None


LEARNED: dict = {}  # (corpus sha256, vocabulary size) -> BPE: `tinygpt train` prepares the corpus, then the run does
BPE_FILE = "bpe{vocab}-{sha}.v1.tokenizer.json"  # a learned BPE, kept in the prepared corpus's folder


def learning_bpe(source, vocab_size: int, block_size: int | None = None):
    """learned_bpe with its progress, while a thread learns (Hugging Face's trainer lets go of the GIL): Progress
    ("learning", bytes read, of the training split's) as it reads and counts the words, then ("merging", 0, 0)
    while it works out the merges, which no figure measures (most of the time on a big corpus: 0.4 s of reading
    and 14 s of merges for 30 MB and 4,096 tokens), the last as they are done; then returns the BPE. One known
    already (kept by an earlier run) is returned at once. Stopped early (Ctrl+C), the thread stops at its next
    chunk (while it merges, it finishes, and keeps the BPE for the next run)."""
    import threading

    from tinygpt_tui.data import TRAIN_FRACTION
    from tinygpt_tui.engine.sources import Progress

    if (tok := known_bpe(source, vocab_size)) is not None:
        return tok
    done, out, stop, read = [0], {}, threading.Event(), threading.Event()

    def work():
        try:
            out["tok"] = learned_bpe(source, vocab_size, block_size, progress=done, stop=stop, read=read)
        except BaseException as e:  # (said by the caller's thread)
            out["error"] = e

    total, merging = max(1, int(source.size * TRAIN_FRACTION)), False
    worker = threading.Thread(target=work, name="tinygpt-learn-bpe", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.25)
            if read.is_set() and not merging:  # (the reading's end at 100%, then the merges)
                merging = True
                yield Progress("learning", total, total, source.spec)
            yield Progress("merging", 0, 0, source.spec) if merging else Progress("learning", min(done[0], total), total, source.spec)
    finally:
        stop.set()
    if "error" in out:
        raise out["error"]
    if not merging:
        yield Progress("learning", total, total, source.spec)
    yield Progress("merging", 0, 0, source.spec)  # (done: the next stage's pace is measured from here)
    return out["tok"]


def known_bpe(source, vocab_size: int) -> BpeTokenizer | None:
    """The BPE of this corpus and size learned already, in this process or kept by an earlier one."""
    key = (source.sha256, vocab_size)
    if key not in LEARNED and (tok := kept_bpe(bpe_path(source, vocab_size), vocab_size)) is not None:
        LEARNED.clear()
        LEARNED[key] = tok
    return LEARNED.get(key)


def bpe_path(source, vocab_size: int) -> Path:
    return Path(source.folder) / BPE_FILE.format(vocab=vocab_size, sha=source.sha256[:16])


def learned_bpe(source, vocab_size: int, block_size: int | None = None, progress: list | None = None,
                stop=None, read=None) -> BpeTokenizer:
    """A byte-level BPE learned from the training split of a scanned corpus (the first 90% of each
    file, as engine/prepare.py splits it), read in chunks: a corpus of any size. A corpus too short
    for the context length is refused first (else a vocabulary it cannot fill is, and then it).
    Learned once per corpus and size: kept beside the prepared token files (a damaged copy is
    learned again), as learning reads the whole training split, minutes for a big corpus.
    ``progress[0]`` counts the bytes read, ``read`` (an event) is set once all are; a set ``stop`` event ends
    it at the next chunk."""
    from tinygpt_tui.data import TRAIN_FRACTION, check_length
    from tinygpt_tui.engine.sources import read_chunks

    if block_size is not None:
        check_length(sum(f.chars for f in source.files), block_size)

    def train_texts():
        for f in source.files:
            left, start = int(f.chars * TRAIN_FRACTION), 0
            for _, text, end in read_chunks(f):
                if left <= 0:
                    break
                if stop is not None and stop.is_set():
                    raise CorpusError("stopped while learning the BPE tokenizer")
                yield text[:left]
                left -= len(text)
                if progress is not None:
                    progress[0] += end - start
                start = end
        if read is not None:  # (the trainer works out its merges next)
            read.set()

    if (tok := known_bpe(source, vocab_size)) is None:
        tok = BpeTokenizer.train(train_texts(), vocab_size)
        with contextlib.suppress(TinyGPTError):  # (a folder that cannot be written: the preparation says so)
            atomic_write(bpe_path(source, vocab_size), tok.to_json())
        LEARNED.clear()
        LEARNED[(source.sha256, vocab_size)] = tok
    return tok


def kept_bpe(path: Path, vocab_size: int) -> BpeTokenizer | None:
    """The BPE an earlier run learned and kept at path, checked as a model folder's is; None if there is
    none, or it is damaged or of another size."""
    if not path.is_file():
        return None
    try:
        tok = BpeTokenizer.from_json(read_text(path, "learned tokenizer", ckpt.VOCAB_LIMIT))
    except TinyGPTError:
        return None
    return tok if tok.vocab_size == vocab_size else None


def load_parent_weights(model, parent: Parent | None) -> None:
    """A's weights into B's freshly initialized model: every tensor as A's, except the rows of an
    embedding (or untied head) grown for new characters, which keep their fresh initialization."""
    import torch

    if parent is None:
        return
    state, own = parent.state, model.state_dict()
    with torch.no_grad():
        for k, v in state.items():
            if k not in own:
                raise CheckpointError(f"{ckpt.WEIGHTS} of the --from model has a tensor B does not: {k[:80]}")
            target = own[k]
            if k in ("tok_emb.weight", "head.weight") and v.shape[0] <= target.shape[0] and v.shape[1:] == target.shape[1:]:
                target[: v.shape[0]].copy_(v)  # (B, C): A's rows first, the new characters' after
            elif v.shape == target.shape:
                target.copy_(v)
            else:
                raise CheckpointError(f"{k} of the --from model has shape {list(v.shape)}, B's is {list(target.shape)}")
