"""What good looks like on a shipped book: the validation loss at which a model on it passes each stage
(``STAGES``), the stage a loss has reached (``stage``), and a real run's sample near each (``milestones``).

No torch and no textual (engine/runs.py re-exports these names, where they were first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinygpt_tui.engine import folder as ckpt


@dataclass
class Milestone:
    loss: float  # validation loss (nats per token) at which a model on this book shows ...
    label: str  # ... this
    sample: str = ""  # a sample from a real run near that loss ("" when none was near)
    sample_loss: float | None = None
    sample_step: int | None = None
    source: str = ""  # the run the sample comes from


# Roughly where models on the shipped books pass each stage (validation loss, nats per character),
# read from their training logs' samples (docs/experiments.md).
STAGES: dict[str, list[tuple[float, str]]] = {
    "tinyshakespeare": [(2.5, "letters in plausible frequencies"), (2.0, "words and names"),
                        (1.7, "dialogue structure: speakers, turns, verse lines"), (1.5, "style: Shakespeare's words and rhythm")],
    "hongloumeng": [(5.0, "common characters in plausible frequencies"), (4.3, "names and the marks of speech (道：“…”)"),
                    (3.9, "phrases and turns of dialogue"), (3.6, "the novel's narrative style")],
}
SAMPLE_NEAR = 0.15  # a sample stands for a milestone when its validation loss is at most this far from it


def book_of(corpus: str) -> str | None:
    """The shipped book a corpus name stands for (\"tinyshakespeare\", \"hongloumeng\"), or None."""
    c = (corpus or "").lower()
    return next((b for b in STAGES if b in c), None)


def shipped_models_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "models"


SHIPPED = ("hongloumeng", "shakespeare")  # the models tracked in git (.gitignore); the rest of models/ was trained here


def shipped_models(models_dir: Path | None = None) -> list[Path]:
    """The shipped model folders: in a checkout, models/ also holds every run trained there (``mine``, a
    lesson's 10-step members), which are not what good looks like."""
    d = Path(models_dir) if models_dir else shipped_models_dir()
    return [d / name for name in SHIPPED if (d / name / "config.json").is_file()]


EARLY_RUNS = Path(__file__).resolve().parents[1] / "lessons" / "early"  # short runs' logs: the first stages' samples


def milestones(corpus: str, sources: list | None = None) -> list[Milestone]:
    """The stages of a shipped book (none for another corpus), each with the sample of a real run whose
    validation loss was nearest (from the shipped models' logs and the early runs' unless ``sources`` are given)."""
    book = book_of(corpus)
    if book is None:
        return []
    if sources is None:
        sources = shipped_models() + ckpt.model_folders(EARLY_RUNS)
    from tinygpt_tui.engine.runs import Curves

    evals = []
    for f in sources:
        c = f if isinstance(f, Curves) else Curves(f)
        if c.corpus and book_of(c.corpus) != book:
            continue  # a run on another book
        evals += [(e, c.folder.name if c.folder else "") for e in c.evals if e.sample.strip()]
    out = []
    for loss, label in STAGES[book]:
        m = Milestone(loss, label)
        near = min(evals, key=lambda es: abs(es[0].val_loss - loss), default=None)
        if near and abs(near[0].val_loss - loss) <= SAMPLE_NEAR:
            m.sample, m.sample_loss, m.sample_step, m.source = near[0].sample, near[0].val_loss, near[0].step, near[1]
        out.append(m)
    return out


def stage(corpus: str, loss: float | None) -> tuple[float, str] | None:
    """The last stage a model on this book has reached at this validation loss: (loss, label), or None
    (another corpus, or not yet the first stage)."""
    book = book_of(corpus)
    if book is None or loss is None:
        return None
    reached = [s for s in STAGES[book] if loss <= s[0]]
    return reached[-1] if reached else None
