"""How long an experiment (engine/experiment.py) will take, said before it starts: each member's budget,
or its steps times a step time measured here, plus its evaluations and its final validation pass.

    est = estimate(plan)     # Estimate(total_s, member_s, step_s)
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass

from tinygpt_tui.engine.presets import MODEL_KEYS, TrainConfig
from tinygpt_tui.errors import SettingsError


@dataclass
class Estimate:
    total_s: float
    member_s: list  # each member's
    step_s: list  # each member's seconds per training step, measured here


def estimate(plan, steps: int = 2) -> Estimate:
    """How long the experiment will take: each member's budget (minutes), or its steps times the step time
    measured here on the CPU (a warm-up step, then ``steps`` timed), plus its evaluations and the final pass
    over the whole validation split. Nothing is written, and torch's process-wide thread count is left alone
    (the app estimates while it may be training): steps are timed with the members' thread count in this
    process when it already runs with that many, else in a child process that does."""
    import torch

    configs = [m.config.resolved() for m in plan.members]
    shapes = list(dict.fromkeys(_shape(c) for c in configs))
    first = {s: next(c for c in configs if _shape(c) == s) for s in shapes}
    threads = next((c.threads for c in configs if c.threads), None) or plan.spec.threads
    job = {"source": plan.source, "chars": plan.spec.corpus_chars, "steps": steps, "configs": [asdict(first[s]) for s in shapes]}
    timings = _measure_in_child(job, threads) if threads and threads != torch.get_num_threads() else _measure_all(job)
    measured = dict(zip(shapes, timings))
    out, steps_s = [], []
    for cfg in configs:
        step_s, fwd_s, final_s = measured[_shape(cfg)]
        steps_s.append(step_s)
        if cfg.time_budget:
            member = cfg.time_budget + final_s + 3.0
        else:
            evals = cfg.max_steps // cfg.eval_interval
            member = cfg.max_steps * step_s + evals * (2 * cfg.eval_iters * fwd_s + cfg.sample_chars * 0.002) + final_s + 3.0
        out.append(member)
    return Estimate(sum(out), out, steps_s)


def _shape(cfg: TrainConfig) -> tuple:
    """What a step's time depends on: members alike in these are timed once."""
    return tuple(getattr(cfg, k) for k in MODEL_KEYS + ("batch_size", "grad_accum", "optimizer", "muon_ns_steps", "dtype", "tokenizer", "vocab_size"))


def _measure_all(job: dict) -> list[tuple[float, float, float]]:
    """Each config's timings (_measure), on the corpus (or its first ``chars`` characters)."""
    from tinygpt_tui.data import Corpus
    from tinygpt_tui.engine.corpora import read_corpus
    from tinygpt_tui.tokenizer import CharTokenizer

    corpus = read_corpus(job["source"])
    if job["chars"]:
        corpus = Corpus(corpus.path, corpus.text[: job["chars"]], "")
    tok = CharTokenizer.from_text(corpus.text)
    return [_measure(TrainConfig(**c), corpus, tok, job["steps"]) for c in job["configs"]]


def _measure_in_child(job: dict, threads: int) -> list[tuple[float, float, float]]:
    """_measure_all in a child process running torch on ``threads`` threads."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    code = ("import json, sys, torch; from tinygpt_tui.engine.estimate import _measure_all; from tinygpt_tui.errors import TinyGPTError\n"
            f"torch.set_num_threads({int(threads)})\n"
            "try: print(json.dumps(_measure_all(json.load(sys.stdin))))\n"
            "except TinyGPTError as e: sys.exit(str(e))")  # (its message alone, as the parent reads it)
    try:
        done = subprocess.run([sys.executable, "-c", code], input=json.dumps(job), capture_output=True, text=True, env=env, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SettingsError(f"could not time the members' steps: {str(e)[:200]}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["it exited with status %d" % done.returncode])[-1]
        last = re.sub(r"^[\w.]*(Error|Exception): ", "", last)  # (torch's own errors come with their class's name)
        raise SettingsError(f"could not time the members' steps: {last[:200]}")
    try:
        return [tuple(t) for t in json.loads((done.stdout.strip().splitlines() or [""])[-1])]
    except ValueError:
        raise SettingsError("could not time the members' steps: the timing process printed no result") from None


def _measure(cfg: TrainConfig, corpus, tok, steps: int) -> tuple[float, float, float]:
    """Seconds per training step, per forward pass of a batch, and for the final pass over the validation
    split, measured on this machine as train.py runs them (its step, its dtype, the fast kernels when on),
    on batches drawn from the corpus."""
    import torch

    from tinygpt_tui.data import Dataset
    from tinygpt_tui.engine.device import pick_dtype
    from tinygpt_tui.engine.probe import StepTimer

    cpu = torch.device("cpu")
    data = Dataset(corpus, tok, cfg.block_size)
    gen = torch.Generator().manual_seed(0)
    vocab = cfg.vocab_size if cfg.tokenizer == "bpe" and cfg.vocab_size else tok.vocab_size
    settings = {k: getattr(cfg, k) for k in MODEL_KEYS + ("batch_size", "grad_accum", "optimizer", "lr", "muon_lr", "muon_ns_steps")}
    timer = StepTimer(settings, pick_dtype(cpu, cfg.dtype, cfg.n_embd), vocab=vocab,
                      batches=lambda: data.batch("train", cfg.batch_size, gen, cpu))
    times = []
    for _ in range(steps + 1):  # the first warms up
        t = time.perf_counter()
        timer.step()
        times.append(time.perf_counter() - t)
    fwd = timer.forward_s()
    val_batches = max(1, len(data.val) // (32 * cfg.block_size))
    return min(times[1:]), fwd, fwd * 32 / cfg.batch_size * val_batches
