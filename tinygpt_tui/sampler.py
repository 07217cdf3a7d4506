"""Streaming generation: one character at a time, KV-cached, over a sliding window.

    for ch in generate(model, tokenizer, "ROMEO:", SamplingSettings(temperature=0.8)):
        print(ch, end="", flush=True)

The window is the model's context (block_size, 128 by default). With a
relative position encoding (rope, alibi, none) the cache slides one token at a
time, so every character sees the full window at the cost of one token's
forward pass (the streaming form: keys keep what their tokens saw when they
were computed, so text differs slightly from re-running the window). With an absolute encoding (learned, sinusoidal) positions are
tied to the window, so when it fills the cache is rebuilt from the last 3/4
of the window (one prefill every block_size/4 characters).

On a CPU each character runs through ``fastdecode.Decoder`` (int8 weights by
default, ``precision="fp32"`` for the exact model; one compiled step per
character, see jitstep.py); on a GPU through the model itself with its ``KVCache``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from tinygpt_tui.config import RELATIVE
from tinygpt_tui.errors import SettingsError
from tinygpt_tui.tokenizer import CharTokenizer


@dataclass
class SamplingSettings:
    max_new_tokens: int = 500
    temperature: float = 0.8  # 0 means greedy
    top_k: int | None = None  # keep the k most likely characters
    top_p: float | None = None  # nucleus: keep the smallest set with this much probability
    seed: int | None = None
    # CPU decoding (see fastdecode.py): "auto" and "int8" use int8 weights, "fp32" the
    # model's own; on a GPU the model runs as it is.
    precision: str = "auto"

    def validate(self) -> SamplingSettings:
        t = self.temperature
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t) or t < 0:
            raise SettingsError(f"temperature must be 0 or more, got {t!r}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1):
            raise SettingsError(f"top-k must be at least 1, got {self.top_k!r}")
        if self.top_p is not None and (not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1):
            raise SettingsError(f"top-p must be in (0, 1], got {self.top_p!r}")
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 0:
            raise SettingsError(f"length must be 0 or more, got {self.max_new_tokens!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or not 0 <= self.seed < 2**63):
            raise SettingsError(f"seed must be a whole number from 0 to 2**63-1, got {self.seed!r}")
        if self.precision not in ("auto", "int8", "fp32"):
            raise SettingsError(f"precision must be auto, int8 or fp32, got {self.precision!r}")
        return self


class _ModelStepper:
    """The model's own forward pass with a KVCache, behind the same feed/reset/pos as fastdecode.Decoder."""

    def __init__(self, model, device):
        self.model, self.device = model, device
        self.reset()

    def reset(self):
        self.cache = self.model.new_cache()

    @property
    def pos(self) -> int:
        return self.cache.pos

    def feed(self, ids):
        import torch

        logits, _ = self.model(torch.tensor([ids], device=self.device), cache=self.cache)
        return logits[0, -1]


BACKENDS = ("auto", "numba", "torch")  # the CPU decoder's; auto: numba when it is installed


def stepper(model, precision: str = "auto", backend: str = "auto"):
    """What runs one stream of tokens through ``model``.

    On a CPU: the compiled step (jitstep.JitDecoder), prompt and all, so that a seed writes the
    same text whether the model came as a PyTorch module or as arrays from the file
    (`tinygpt generate`); ``backend="torch"``, or no numba: fastdecode.Decoder's PyTorch
    operations. On a GPU: the model itself with its KVCache."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if not hasattr(model, "parameters"):  # a jitstep.JitModel: no torch at all
        return model.decoder(precision)
    device = next(model.parameters()).device
    if device.type == "cpu":
        from tinygpt_tui.fast import decode as jitstep
        from tinygpt_tui.fast.torchdecode import Decoder, jit_model_for

        if backend == "numba" and not jitstep.available():
            raise ValueError("the numba backend needs numba (pip install numba)")
        if backend != "torch" and jitstep.available():
            return jit_model_for(model).decoder(precision)
        return Decoder(model, precision)
    return _ModelStepper(model, device)


def filter_logits(logits, temperature: float, top_k=None, top_p=None):
    """Scale by temperature and cut to top-k / top-p. logits: (B, V) -> (B, V) float."""
    import torch

    logits = logits.float() / max(temperature, 1e-8)
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # keep the first token that crosses top_p
        drop[..., 0] = False  # and always the most likely one (a top_p under float32's range is 0 here)
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


class Generation:
    """State of one streaming generation; iterate it for characters.

    ``dropped`` lists prompt characters the model does not know (left out).
    ``stop()`` (or setting the ``stop_event``) ends it between characters.
    """

    def __init__(self, model, tokenizer: CharTokenizer, prompt: str, settings: SamplingSettings, stop_event=None, context_ids=None,
                 backend: str = "auto"):
        self.model, self.tokenizer = model, tokenizer
        self.backend = backend  # the CPU decoder's (fastdecode.BACKENDS): the benchmark compares them
        self.settings = settings.validate()
        self.stop_event = stop_event or threading.Event()
        if context_ids is not None:
            self.dropped, ids = [], list(context_ids)
        else:
            enc = tokenizer.encode(prompt)
            self.dropped, ids = enc.dropped, enc.ids
        self.prompt_ids = ids
        self.generated = 0

    def stop(self):
        self.stop_event.set()

    def __iter__(self):
        return self._run()

    def _run(self):
        model, s = self.model, self.settings
        if not hasattr(model, "parameters"):  # a jitstep.JitModel: torch is not needed (nor imported)
            yield from self._steps(model.decoder(s.precision))
            return
        import torch

        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                yield from self._steps(stepper(model, s.precision, self.backend))
        finally:
            if was_training:
                model.train()

    def _steps(self, run):
        s = self.settings
        cfg = self.model.cfg
        uniform = Uniforms(s.seed)
        window = cfg.block_size
        relative = cfg.pos_encoding in RELATIVE
        # start from a newline when there is no prompt, so the model starts a fresh line
        ids = list(self.prompt_ids[-window:]) or [self.tokenizer.stoi.get("\n", 0)]
        history = list(ids)
        # the compiled decoder hands over numpy logits and samples in compiled code too
        pick = _pick_numpy if getattr(run, "backend", None) == "numba" else _pick_torch
        logits = run.feed(ids)  # (V,) after the last token
        for _ in range(s.max_new_tokens):
            if self.stop_event.is_set():
                return
            nxt = pick(logits, s, uniform)
            self.generated += 1
            yield self.tokenizer.chars[nxt]
            history.append(nxt)
            if not relative and run.pos >= window:
                # absolute positions: rebuild the cache from the last 3/4 of the window
                keep = history[-(window - window // 4) :]
                history = keep
                run.reset()
                feed = keep
            else:
                feed = [nxt]
            logits = run.feed(feed)
            if len(history) > 4 * window:
                history = history[-window:]


class Uniforms:
    """Uniform numbers in [0, 1) for drawing tokens, from a seeded numpy generator, 256 at a time.

    Every sampler (compiled or PyTorch, CPU or GPU) turns one of these into a token the same
    way (``draw``), so a seed gives the same text on every path, up to float rounding."""

    def __init__(self, seed: int | None):
        import numpy as np

        self.rng = np.random.default_rng(seed)  # (None: fresh entropy)
        self.batch: list[float] = []

    def __call__(self) -> float:
        if not self.batch:
            self.batch = self.rng.random(256).tolist()[::-1]
        return self.batch.pop()


def draw(logits, settings: SamplingSettings, u: float) -> int:
    """The next token from (V,) PyTorch logits: greedy at temperature 0, else the token where the
    running sum of the filtered probabilities first passes ``u`` of their total (as jitstep.sample)."""
    import torch

    if settings.temperature == 0:
        return int(torch.argmax(logits))
    probs = filter_logits(logits[None], settings.temperature, settings.top_k, settings.top_p).double().softmax(-1)[0]
    cdf = probs.cumsum(0)
    i = int(torch.searchsorted(cdf, (u * cdf[-1]).reshape(1), right=True))
    return min(i, int(torch.nonzero(probs).max()))  # (u * total rounding up past the last kept token)


def _pick_torch(logits, s: SamplingSettings, uniform: Uniforms) -> int:
    return draw(logits, s, 0.0 if s.temperature == 0 else uniform())


def _pick_numpy(logits, s: SamplingSettings, uniform: Uniforms) -> int:
    if s.temperature == 0:
        return int(logits.argmax())
    top_k = s.top_k if s.top_k is not None and s.top_k < logits.shape[0] else 0  # (any k past V: no cut, as in draw)
    return _jit_sample(logits, max(float(s.temperature), 1e-8), top_k, 1.0 if s.top_p is None else float(s.top_p), uniform())


def _jit_sample(*args) -> int:
    global _jit_sample
    from tinygpt_tui.fast.decode import sample  # (imported once, on the first compiled draw: numba is slow to import)

    _jit_sample = sample
    return sample(*args)


def chunked(chars, interval: float, clock=time.perf_counter):
    """Characters gathered into ``(text, when its first character came)`` chunks, at most one per
    ``interval`` seconds (the first character at once), for a screen that cannot take them one by
    one. What is gathered when the characters end, or fail, still comes out (then the error)."""
    buf: list[str] = []
    first, last = 0.0, -1e9
    it = iter(chars)
    while True:
        try:
            ch = next(it)
        except StopIteration:
            break
        except Exception:
            if buf:
                yield "".join(buf), first
            raise
        now = clock()
        if not buf:
            first = now
        buf.append(ch)
        if now - last >= interval:
            yield "".join(buf), first
            buf.clear()
            last = now
    if buf:
        yield "".join(buf), first


def generate(model, tokenizer, prompt: str = "", settings: SamplingSettings | None = None, stop_event=None):
    """Yield generated characters one at a time (see ``Generation``)."""
    return iter(Generation(model, tokenizer, prompt, settings or SamplingSettings(), stop_event))


def generate_nocache(model, tokenizer, prompt: str, settings: SamplingSettings):
    """The old way: recompute the whole window for every character (the benchmark's baseline)."""
    import torch

    settings.validate()
    device = next(model.parameters()).device
    uniform = Uniforms(settings.seed)
    ids = tokenizer.encode(prompt).ids or [0]
    model.eval()
    with torch.inference_mode():
        for _ in range(settings.max_new_tokens):
            ctx = torch.tensor([ids[-model.cfg.block_size :]], device=device)
            logits, _ = model(ctx)
            nxt = _pick_torch(logits[0, -1], settings, uniform)
            ids.append(nxt)
            yield tokenizer.chars[nxt]
