"""What a training run says as it goes (engine/train.py yields them; each is one record of metrics.jsonl, and of
`tinygpt train --jsonl`; docs/distributed.md lists them): Started, Step, Eval, Overfitting, Saved, Stopping,
Measuring, Finished."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Event:
    kind = "event"

    def record(self) -> dict:
        return {"event": self.kind, **asdict(self)}


@dataclass
class Started(Event):
    kind = "start"
    step: int
    max_steps: int | None
    time_budget: float | None
    params: int
    device: str
    dtype: str
    tokens_per_step: int
    world_size: int
    model: dict = field(default_factory=dict)
    corpus: str = ""
    tokenizer: str = ""  # "char", "bpe 512"
    resumed: bool = False
    dropped_chars: list = field(default_factory=list)
    micro_batch: int = 0  # sequences per forward pass ...
    accum: int = 1  # ... and passes per step (their product is this process's share of the batch)
    activation_mb: float | None = None  # kept for the backward pass per micro-batch (measured), when a memory budget applies


@dataclass
class Step(Event):
    kind = "step"
    step: int
    loss: float
    lr: float
    tokens_per_s: float
    elapsed_s: float
    progress: float  # 0..1 of the run (steps or time budget, whichever is nearer its end)
    eta_s: float
    tokens_seen: int


@dataclass
class Eval(Event):
    kind = "eval"
    step: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    elapsed_s: float
    sample: str = ""
    bpc: float | None = None  # val_loss as bits per character of the validation text (per byte: bpb)
    bpb: float | None = None


@dataclass
class Overfitting(Event):  # after the Eval where validation loss has risen while training loss kept falling (engine/runs.py's
    kind = "overfitting"   # test, as the progress line says it); once, and again only if it stopped meanwhile
    step: int
    best_step: int  # the evaluation with the lowest validation loss (the folder keeps its weights)
    best_val_loss: float
    val_loss: float
    train_loss: float
    message: str  # the sentence the progress line prints


@dataclass
class Saved(Event):
    kind = "saved"
    step: int
    path: str
    elapsed_s: float


@dataclass
class Stopping(Event):  # a stop was seen after ``step``; the run saves that step before Finished
    kind = "stopping"
    step: int
    waiting_for: str  # "saving"


@dataclass
class Measuring(Event):  # the last step is done; the loss over the whole validation split is being measured (seconds,
    kind = "measuring"   # a minute for a big corpus) before the last save and Finished. A stopped run skips it
    step: int
    scope: str  # "whole validation split", or past MAX_EVAL_TOKENS the evenly spread sample it is measured on
    tokens: int  # the validation tokens it goes over (once, or twice when the last step's weights are compared too)


def measuring_words(scope, tokens) -> str:
    """What a progress line says while Measuring: "measuring the whole validation split (111,540 tokens) …"."""
    if scope == "whole validation split":
        return f"measuring the whole validation split ({tokens:,} tokens) …" if isinstance(tokens, int) else f"measuring the {scope} …"
    return f"measuring {scope} …"  # ("262,144 tokens evenly spread over the validation split")


@dataclass
class Finished(Event):
    kind = "finish"
    step: int
    reason: str  # "done" | "stopped" | "budget"
    val_loss: float | None  # of the weights kept, over the whole validation split (what `tinygpt eval` reports); None when stopped
    best_val_loss: float | None
    elapsed_s: float
    path: str
    rank_digests: list = field(default_factory=list)  # a checksum of each rank's weights: they must agree
    bpc: float | None = None  # val_loss as bits per character (and per byte) of the validation text
    bpb: float | None = None
    val_scope: str = "whole validation split"  # or, past MAX_EVAL_TOKENS, the evenly spread sample it was measured on
