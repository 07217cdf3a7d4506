"""Streaming generation: the model writes one token at a time, the text streams out.

    for ch in generate(model, tokenizer, "ROMEO:", SamplingSettings(temperature=0.8)):
        print(ch, end="", flush=True)

Each step a decoder turns the tokens so far into the logits of the next one, ``draw`` picks
it, and it is fed back (``sample``: a run of such steps). The tokenizer's streaming decoder turns
the ids into text, holding back the bytes of a character a BPE token left unfinished. One decoder per device (``decoder``):
on a CPU fast/decode.py's compiled step, elsewhere or without numba the model's own KVCache.
Past the window (block_size) a relative position encoding slides (config.Window); an absolute
one starts over from the last 3/4 of the window (Generation.chunks).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from tinygpt_tui.errors import SettingsError
from tinygpt_tui.tokenizer import Encoded, Tokenizer

# seconds of text a decoder call makes (the compiled one without holding the GIL): in the app
# one message, so fewer wakes of its UI thread; also how soon a stop is seen
CALL_S = 0.05


@dataclass
class SamplingSettings:
    max_new_tokens: int = 500
    temperature: float = 0.8  # 0 means greedy
    top_k: int | None = None  # keep the k most likely tokens
    top_p: float | None = None  # nucleus: keep the smallest set with this much probability
    seed: int | None = None
    precision: str = "auto"  # the compiled CPU step's weights: auto and int8 (int8), fp32 (the model's own)

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


def draw(logits, temperature: float, top_k: int, top_p: float, u: float) -> int:
    """The next token from (V,) numpy logits: the most likely one at temperature 0; else
    softmax(logits / temperature), cut to the ``top_k`` most likely (0: no cut; ties at the
    k-th value stay) and to the smallest set whose probability reaches ``top_p`` (1: no cut),
    then the token where the running sum of what is left first passes ``u`` (uniform in
    [0, 1)) of its total. Plain numpy that numba compiles as it is: the compiled decoder
    (fast/decode.py) runs this very function."""
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / max(temperature, 1e-8)
    if 0 < top_k < z.size:
        z[z < np.sort(z)[z.size - top_k]] = -np.inf
    p = np.exp(z - z.max())
    if top_p < 1.0:
        order = np.argsort(-p, kind="mergesort")
        above = np.cumsum(p[order]) - p[order]  # the probability of the tokens ranked above each
        p[order[above >= top_p * p.sum()]] = 0.0  # (the first is always kept: nothing is above it)
    cdf = np.cumsum(p)
    i = np.searchsorted(cdf, u * cdf[-1], side="right")
    return min(int(i), int(np.flatnonzero(p)[-1]))  # (u * total rounding up past the last kept token)


def sample(run, n: int, uniforms, temperature: float, top_k: int, top_p: float) -> list[int]:
    """Up to ``n`` tokens from a decoder's logits, each drawn (with the next of ``uniforms``) and
    fed back, all but the last (the caller feeds it, or starts over); fewer when the decoder's
    buffer is full (the caller makes room). The compiled decoder runs this very loop in one call."""
    toks = []
    for i in range(n):
        toks.append(draw(run.logits, temperature, top_k, top_p, uniforms[i]))
        if i == n - 1 or run.full:
            break
        run.feed(toks[-1:])
    return toks


class CachedModel:
    """The decoder off the CPU: the model's own forward pass with its KVCache."""

    def __init__(self, model):
        self.model, self.cache = model, model.new_cache()
        self.sliding, self.reset = self.cache.sliding, self.cache.reset

    pos = property(lambda self: self.cache.pos)
    full = property(lambda self: self.cache.full)

    def feed(self, ids: list[int]):
        """Run ``ids`` (at positions pos, pos + 1, ...); return the (V,) logits after the last.
        The model runs in eval mode (no dropout) and is left in the mode it was in."""
        import torch

        idx, training = torch.tensor([ids], device=next(self.model.parameters()).device), self.model.training
        with torch.inference_mode():
            self.logits = self.model.eval()(idx, cache=self.cache)[0][0, -1].float().cpu().numpy()
        self.model.train(training)
        return self.logits

    def sample(self, *args) -> list[int]:
        return sample(self, *args)


def decoder(model, precision: str = "auto", backend: str = "auto"):
    """What runs a stream of tokens through ``model`` (a GPT, or a fast.decode.JitModel): the
    compiled step on a CPU; the model's own KVCache elsewhere, without numba, or if backend="torch"."""
    if backend not in ("auto", "torch"):
        raise ValueError(f"backend must be auto or torch, got {backend!r}")
    if not hasattr(model, "parameters"):  # a JitModel: the compiled step, torch not even imported
        return model.decoder(precision)
    if backend == "auto" and next(model.parameters()).device.type == "cpu":
        from tinygpt_tui.fast import decode

        if decode.available():
            return decode.JitModel.from_torch(model).decoder(precision)
    return CachedModel(model)


# a wait for the compiled decoder shorter than this is numba loading what an earlier run compiled (a second
# or two): nothing to say; longer, it is compiling (once per install, about 30 s) and the faces say why
COMPILE_QUIET_S = 3.0


class Generation:
    """One streaming generation; iterate it for characters, or ``chunks()`` for strings (one per
    decoder call, about CALL_S seconds of text; the first is the first token's text alone; a
    call whose bytes end inside a character yields nothing until the character is whole).
    ``dropped`` lists the prompt's characters the model does not know (left out); ``stop()`` (or
    ``stop_event``) ends it; ``compiling`` is True while the compiled decoder is still being built
    (the first run on a machine: the text comes from numpy meanwhile, slower)."""

    def __init__(self, model, tokenizer: Tokenizer, prompt: str, settings: SamplingSettings, stop_event=None, context_ids=None,
                 backend: str = "auto"):
        self.model, self.tokenizer, self.backend = model, tokenizer, backend
        self.settings = settings.validate()
        self.stop_event = stop_event or threading.Event()
        enc = tokenizer.encode(prompt) if context_ids is None else Encoded(list(context_ids))
        self.dropped, self.prompt_ids = enc.dropped, enc.ids
        self.generated = 0
        self.run = None  # the decoder, once started

    compiling = property(lambda self: self.run is not None and not getattr(self.run, "compiled", True))

    def stop(self):
        self.stop_event.set()

    def __iter__(self):
        for text in self.chunks():
            for ch in text:
                if self.stop_event.is_set():
                    return
                yield ch

    def chunks(self):
        s, window = self.settings, self.model.cfg.block_size
        run = self.run = decoder(self.model, s.precision, self.backend)
        rng, spare = np.random.default_rng(s.seed), np.empty(0)  # uniform numbers drawn, not used yet
        top_k = s.top_k if s.top_k is not None and s.top_k < self.model.cfg.vocab_size else 0  # (past V: no cut)
        top_p = 1.0 if s.top_p is None else float(s.top_p)
        # with no prompt, start from a newline: the model begins a fresh line
        history = list(self.prompt_ids[-window:]) or [self.tokenizer.start_id]
        text = self.tokenizer.stream()
        run.feed(history)
        n, left = 1, s.max_new_tokens
        while left > 0 and not self.stop_event.is_set():
            n = min(n, left)
            if s.temperature and len(spare) < n:
                spare = np.concatenate([spare, rng.random(n - len(spare))])
            t0 = time.perf_counter()
            toks = run.sample(n, spare if s.temperature else np.zeros(n), float(s.temperature), top_k, top_p)
            n = max(1, min(4096, int(len(toks) * CALL_S / max(time.perf_counter() - t0, 1e-6))))
            spare, left = spare[len(toks) :], left - len(toks)
            self.generated += len(toks)
            chunk = text.feed(toks) + (text.flush() if left == 0 else "")
            if chunk:
                yield chunk
            history += toks
            if left == 0:
                return
            if run.sliding or run.pos < window:
                run.feed(toks[-1:])
            else:  # absolute positions: start over from the last 3/4 of the window
                history = history[-(window - window // 4) :]
                run.reset()
                run.feed(history)
            if len(history) > 4 * window:
                history = history[-window:]


def generate(model, tokenizer, prompt: str = "", settings: SamplingSettings | None = None, stop_event=None):
    """Yield generated characters one at a time (see ``Generation``)."""
    return iter(Generation(model, tokenizer, prompt, settings or SamplingSettings(), stop_event))
