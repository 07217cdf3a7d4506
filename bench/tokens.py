"""`python -m bench.tokens` (from a checkout): characters against byte-level BPE, in bits per character.

A tool of the project, not of the product. For each book, one `tinygpt train BOOK --minutes M`
with characters and one with `--tokenizer bpe --vocab-size N` (the same preset and settings
otherwise), run one after the other in one process; then each kept model's loss over every
window of the validation split (the last 10% of the characters), turned into bits per character
of that text: nats summed over the predicted tokens / the characters they hold / ln 2 (a BPE
target holds as many characters as UTF-8 lead bytes among its bytes, so a window cut inside a
character counts it once). Also: BPE preparation throughput (learning the merges, encoding).

    python -m bench.tokens --minutes 5 --json docs/tokens.json
    python -m bench.tokens --steps 400 --json docs/tokens.json     # equal work on a busy machine
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BOOKS = {"tinyshakespeare": 512, "hongloumeng": 4096}  # the BPE vocabulary for each (see docs/tokens.md)


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "?"


def bits_per_char(folder: Path, text: str) -> dict:
    """The kept model over every non-overlapping window of the validation split."""
    import torch

    from tinygpt_tui.data import split_text
    from tinygpt_tui.engine.folder import load_model

    loaded = load_model(folder)
    model, tok = loaded.model, loaded.tokenizer
    val = split_text(text)[1]
    ids = torch.tensor(tok.encode(val).ids)
    T = model.cfg.block_size
    n = (len(ids) - 1) // T
    nats, chars, targets = 0.0, 0, 0
    with torch.inference_mode():
        for i in range(0, n, 32):
            starts = torch.arange(i, min(i + 32, n)) * T
            xy = ids[starts[:, None] + torch.arange(T + 1)]
            logits, _ = model(xy[:, :-1])
            y = xy[:, 1:].reshape(-1)
            nats += float(torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y, reduction="sum"))
            targets += y.numel()
            if tok.kind == "char":
                chars += y.numel()
            else:  # characters = UTF-8 lead bytes among the targets' bytes
                chars += sum(sum(1 for b in tok.token_bytes[t] if b & 0xC0 != 0x80) for t in y.tolist())
    return {"val_loss_per_token": nats / targets, "bits_per_char": nats / chars / math.log(2), "val_chars": len(val),
            "val_tokens": len(ids), "chars_per_token": len(val) / len(ids)}


def prep_throughput(text: str, vocab: int) -> dict:
    from tinygpt_tui.tokenizer import BpeTokenizer

    t0 = time.perf_counter()
    tok = BpeTokenizer.train(text, vocab)
    t1 = time.perf_counter()
    arr, _ = tok.encode_array(text)
    t2 = time.perf_counter()
    mb = len(text.encode("utf-8")) / 1e6
    return {"vocab": vocab, "mb": round(mb, 2), "learn_s": round(t1 - t0, 2), "encode_s": round(t2 - t1, 2),
            "encode_mb_per_s": round(mb / (t2 - t1), 2), "tokens": int(len(arr))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=None, help="an equal number of steps instead (the 5min preset's shape): "
                    "fair on a busy machine, where minutes buy each run a different amount of work")
    ap.add_argument("--corpora", default=str(Path(__file__).resolve().parents[1] / "corpora"), help="where BOOK.txt are")
    ap.add_argument("--preset", default="5min", help="with --steps: the shape (5min is what --minutes 5 picks)")
    ap.add_argument("--books", default=",".join(BOOKS))
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=None, help="each run's threads (default: the probe's choice)")
    a = ap.parse_args(argv)
    from tinygpt_tui.engine.corpora import read_corpus
    from tinygpt_tui.engine.presets import TrainConfig
    from tinygpt_tui.engine.train import Finished, Started, train

    out = {"cpu": cpu_name(), "minutes": None if a.steps else a.minutes, "steps": a.steps, "preset": a.preset if a.steps else "auto",
           "runs": [], "prep": []}
    budget = f"--preset {a.preset} --max-steps {a.steps}" if a.steps else f"--minutes {a.minutes:g}"
    with tempfile.TemporaryDirectory() as models:
        for book in a.books.split(","):
            path = Path(a.corpora) / f"{book}.txt"
            text = read_corpus(path).text
            out["prep"].append({"book": book, **prep_throughput(text, BOOKS[book])})
            print(json.dumps(out["prep"][-1]), flush=True)
            for kind in ("char", "bpe"):
                name = f"{book}-{kind}"
                length = dict(preset=a.preset, max_steps=a.steps) if a.steps else dict(time_budget=a.minutes * 60)
                cfg = TrainConfig(corpus=str(path), name=name, models_dir=models, sample_chars=0, **length,
                                  threads=a.threads, tokenizer=kind, vocab_size=BOOKS[book] if kind == "bpe" else None,
                                  command=f"tinygpt train {book}.txt {budget}"
                                  + (f" --tokenizer bpe --vocab-size {BOOKS[book]}" if kind == "bpe" else ""))
                t0 = time.perf_counter()
                for ev in train(cfg):
                    if isinstance(ev, Started):
                        started = ev
                    if isinstance(ev, Finished):
                        fin = ev
                row = {"book": book, "tokenizer": started.tokenizer, "steps": fin.step, "wall_s": round(time.perf_counter() - t0, 1),
                       "train_s": round(fin.elapsed_s, 1),
                       "params": started.params, "tokens_per_step": started.tokens_per_step, "val_loss": fin.val_loss,
                       **bits_per_char(Path(models) / name, text), "command": cfg.command}
                out["runs"].append(row)
                print(json.dumps(row), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
