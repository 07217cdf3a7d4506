"""How long an experiment (engine/experiment.py) will take, said before it starts: each member's budget,
or its steps times a step time measured here, plus its evaluations (their samples too) and its final
validation pass, and the start once (reading the corpus; the trainer's imports and the decoder's
first load where this process has them still to do).

    est = estimate(plan)     # Estimate(total_s, member_s, step_s, sample_s, prepare_s, done): seconds; done: steps trained
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field

from tinygpt_tui.engine.presets import MODEL_KEYS, TrainConfig
from tinygpt_tui.errors import SettingsError


@dataclass
class Estimate:
    total_s: float
    member_s: list  # each member's
    step_s: list  # each member's seconds per training step, measured here
    sample_s: list  # each member's seconds for one evaluation's sample (0 for none), measured here
    prepare_s: list = field(default_factory=list)  # each member's corpus preparation for its BPE (0 where none is to do)
    done: list = field(default_factory=list)  # each member's steps trained already (one to resume: its checkpoint's), 0 for one to start


def estimate(plan, steps: int = 2, own_threads: bool = False) -> Estimate:
    """How long the experiment will take: each member's budget (minutes), or its steps times the step time
    measured here on the CPU (a warm-up step, then ``steps`` timed), plus its evaluations and the final pass
    over the whole validation split, each sample's tokens at the decoder's measured rate, and the start
    once (the first member's: the corpus read; where the steps were timed in a child, the trainer's imports,
    its first optimizer's and the decoder's first load, if this process has not done them). Nothing is
    written, and torch's process-wide thread count is left alone (the app estimates while it may be
    training): steps are timed with the members' thread count in this process when it already runs with
    that many, else in a child process that does. ``own_threads``: the caller trains in this process next, on the
    members' thread count (the CLI): set to it here, and the steps timed in this process (a child's start, its torch
    and trainer imports and its decoder's load cost seconds more than the whole estimate)."""
    import sys

    import torch

    configs = [m.config.resolved() for m in plan.members]
    shapes = list(dict.fromkeys(_shape(c) for c in configs))
    # each shape timed once, with a member that samples where one does (the sampler is timed only then)
    first = {s: max((c for c in configs if _shape(c) == s), key=lambda c: bool(c.sample_chars)) for s in shapes}
    threads = next((c.threads for c in configs if c.threads), None) or plan.spec.threads
    job = {"source": plan.source, "chars": plan.spec.corpus_chars, "steps": steps, "configs": [asdict(first[s]) for s in shapes]}
    if own_threads and threads:
        torch.set_num_threads(threads)
    in_child = bool(threads and threads != torch.get_num_threads())
    firsts, timings = _measure_in_child(job, threads) if in_child else _measure_all(job)
    # once: the corpus read; and where the child timed the steps (the CLI's way), what this process has still
    # to do once when it trains: import the trainer and build its first torch optimizer (which imports torch's
    # compiler: seconds), and load the compiled decoder for the first sample
    start_s = firsts["read_s"]
    if in_child:
        start_s += firsts["imports_s"] if "tinygpt_tui.engine.train" not in sys.modules else 0.0
        start_s += firsts.get("decoder_s", 0.0) if "tinygpt_tui.fast.decode" not in sys.modules else 0.0
    measured = dict(zip(shapes, timings))
    out, steps_s, samples_s, done = [], [], [], []
    for m, cfg in zip(plan.members, configs):
        step_s, fwd_s, final_s, build_s, token_s = measured[_shape(cfg)]
        sample_s = build_s + cfg.sample_chars * token_s if cfg.sample_chars else 0.0
        steps_s.append(step_s)
        samples_s.append(sample_s)
        # an evaluation every eval_interval steps and one at the end (train.py evaluates the last step, a multiple or not): a
        # time budget holds the first, not the last; 3 members of 20 steps at eval_interval 200 were estimated at half their time
        # a member to resume goes on from its checkpoint with what is left of its budget (a stopped member of 150 steps resumed
        # at step 70 was estimated at 00:59 and took 00:33)
        step, trained_s = trained(plan.folder / m.name)
        eval_s = 2 * cfg.eval_iters * fwd_s + sample_s
        if cfg.time_budget:
            member = max(0.0, cfg.time_budget - trained_s) + eval_s + final_s + MEMBER_S
        else:
            evals = max(0, -(-cfg.max_steps // cfg.eval_interval) - step // cfg.eval_interval)  # (rounded up: the last step's)
            member = max(0, cfg.max_steps - step) * step_s + evals * eval_s + final_s + MEMBER_S
        out.append(member)
        done.append(step)
    if out:
        out[0] += start_s
    prep = [0.0] * len(configs)
    for i, cfg in enumerate(configs):  # the first member of each BPE size prepares it (learns it, encodes); the rest reuse it
        if cfg.tokenizer == "bpe" and cfg.vocab_size and all(c.tokenizer != "bpe" or c.vocab_size != cfg.vocab_size for c in configs[:i]):
            prep[i] = bpe_preparation_s(plan.corpus, cfg.vocab_size)
            out[i] += prep[i]
    return Estimate(sum(out), out, steps_s, samples_s, prep, done)


def trained(folder) -> tuple[int, float]:
    """(steps, seconds) a member's folder has trained, where it holds a checkpoint to resume (as experiment.run resumes
    it); (0, 0.0) where it is to start (no folder, or one that died before its first checkpoint)."""
    from tinygpt_tui.engine import folder as ckpt

    if not ((folder / ckpt.STATE_TENSORS).is_file() and (folder / ckpt.CONFIG).is_file()):
        return 0, 0.0
    info = ckpt.read_info(folder)
    figures = info.doc.get("figures") if info.ok and isinstance(info.doc.get("figures"), dict) else {}
    seconds = figures.get("train_time_s")
    return (info.step, float(seconds) if isinstance(seconds, (int, float)) else 0.0) if info.ok else (0, 0.0)


SLICE_BYTES, SLICE_PIECES = 1 << 19, 16  # a BPE's preparation is timed on this much of the corpus, in pieces spread over it
_PREP_TIMED: dict = {}  # (corpus, size, mtime, vocabulary size) -> seconds: timed once while the user types


def bpe_preparation_s(corpus: str, vocab_size: int) -> float:
    """Seconds to prepare ``corpus`` for a BPE of ``vocab_size`` tokens (learn it from the training split, then encode
    the corpus), or 0 where it is prepared already (its BPE kept and its token files written, as engine/prepare.py
    leaves them). Timed here on a slice (SLICE_BYTES in SLICE_PIECES pieces spread over the text, so a book of
    several languages is sampled as a whole), scaled by the corpus's size: reading, counting and encoding grow with
    it; the merges grow less (with the distinct words), so a big corpus's figure errs long, not short. Nothing written."""
    from tinygpt_tui.engine import sources
    from tinygpt_tui.engine.lineage import bpe_path, kept_bpe
    from tinygpt_tui.engine.prepare import tokenizer_id
    from tinygpt_tui.errors import TinyGPTError
    from tinygpt_tui.tokenizer import BpeTokenizer

    paths = sources.source_files(corpus)
    stats = [p.stat() for p in paths]
    folder = sources.cache_folder(corpus)
    seen = sources.scanned(folder)
    files = [seen[str(p)] for p, st in zip(paths, stats) if str(p) in seen and seen[str(p)].same_stat(st)]
    if len(files) == len(paths):  # scanned as the files are now: is its BPE kept, and the corpus encoded with it?
        tok = kept_bpe(bpe_path(sources.Source(corpus, files, folder), vocab_size), vocab_size)
        if tok is not None and (folder / f"{tokenizer_id(tok)}.json").is_file():
            return 0.0
    key = (str(corpus), tuple((str(p), st.st_size, st.st_mtime_ns) for p, st in zip(paths, stats)), vocab_size)
    if key in _PREP_TIMED:
        return _PREP_TIMED[key]
    size = sum(st.st_size for st in stats)
    pieces = []
    for p, st in zip(paths, stats):  # (each file's share of the pieces, by its size)
        n = max(1, round(SLICE_PIECES * st.st_size / max(size, 1)))
        with p.open("rb") as f:
            pieces += [_piece(f, i * (st.st_size // n), min(SLICE_BYTES // SLICE_PIECES, st.st_size // n or st.st_size)) for i in range(n)]
    raw = b"".join(pieces)
    text = "".join(p.decode("utf-8", errors="ignore") for p in pieces)
    t = time.perf_counter()
    try:
        tok = BpeTokenizer.train(text, vocab_size)
    except TinyGPTError:  # a slice too small for this many tokens: timed at fewer (the merges are the lesser part)
        try:
            tok = BpeTokenizer.train(text, 512)
        except TinyGPTError:
            return 0.0  # (too little text for a BPE: the run says so, at once)
    learn = time.perf_counter() - t
    t = time.perf_counter()
    tok.encode_array(text)
    scale = size / max(len(raw), 1)
    _PREP_TIMED[key] = (learn + time.perf_counter() - t) * max(scale, 1.0)
    return _PREP_TIMED[key]


def _piece(f, at: int, n: int) -> bytes:
    f.seek(at)
    return f.read(n)


# a member's folder, its checkpoints and its model card, beside what is timed (a few hundred ms)
MEMBER_S = 0.3


def _shape(cfg: TrainConfig) -> tuple:
    """What a step's time depends on: members alike in these are timed once."""
    return tuple(getattr(cfg, k) for k in MODEL_KEYS + ("batch_size", "grad_accum", "optimizer", "muon_ns_steps", "dtype", "tokenizer", "vocab_size"))


def _measure_all(job: dict) -> tuple[dict, list[tuple[float, float, float, float, float]]]:
    """(what the first member does once, in seconds: imports_s, read_s, decoder_s; each config's timings
    (_measure)), on the corpus (or its first ``chars`` characters)."""
    from tinygpt_tui.data import Corpus
    from tinygpt_tui.engine.corpora import read_corpus
    from tinygpt_tui.tokenizer import CharTokenizer

    import torch

    t = time.perf_counter()
    import tinygpt_tui.engine.train  # noqa: F401

    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)  # (a process's first optimizer imports torch's compiler)
    firsts = {"imports_s": time.perf_counter() - t}
    t = time.perf_counter()
    corpus = read_corpus(job["source"])
    if job["chars"]:
        corpus = Corpus(corpus.path, corpus.text[: job["chars"]], "")
    tok = CharTokenizer.from_text(corpus.text)
    firsts["read_s"] = time.perf_counter() - t
    timings = []
    for c in job["configs"]:
        cfg = TrainConfig(**c)
        try:
            timings.append(_measure(cfg, corpus, tok, job["steps"], firsts))
        except (RuntimeError, MemoryError) as e:  # (torch's own words: "[enforce fail at alloc_cpu.cpp:127] ... 68719476736 bytes")
            asked = re.search(r"allocate (\d+) bytes", str(e))
            if not (isinstance(e, MemoryError) or asked or "out of memory" in str(e)):
                raise
            size = f" ({int(asked.group(1)) / 2**30:,.1f} GB for one tensor)" if asked else ""
            raise SettingsError(f"member {cfg.name}: its step needs more memory than this machine has{size}; "
                                "try a smaller batch_size, block_size or model") from None
    return firsts, timings


def _measure_in_child(job: dict, threads: int) -> tuple[dict, list[tuple[float, float, float, float, float]]]:
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
        firsts, timings = json.loads((done.stdout.strip().splitlines() or [""])[-1])
        return firsts, [tuple(t) for t in timings]
    except ValueError:
        raise SettingsError("could not time the members' steps: the timing process printed no result") from None


def _measure(cfg: TrainConfig, corpus, tok, steps: int, firsts: dict) -> tuple[float, float, float, float, float]:
    """Seconds per training step, per forward pass of a batch, for the final pass over the validation
    split, to build an evaluation's sampler and per token of its sample, measured on this machine as train.py runs them (its
    step, its dtype, the fast kernels when on; the sampler's decoder), on batches drawn from the corpus.
    The decoder's first build in the process goes into ``firsts["decoder_s"]``."""
    import torch

    from tinygpt_tui.data import Dataset
    from tinygpt_tui.engine.device import pick_dtype
    from tinygpt_tui.engine.probe import StepTimer

    cpu = torch.device("cpu")
    data = Dataset(corpus, tok, cfg.block_size)
    gen = torch.Generator().manual_seed(0)
    vocab = cfg.vocab_size if cfg.tokenizer == "bpe" and cfg.vocab_size else tok.vocab_size
    settings = {k: getattr(cfg, k) for k in MODEL_KEYS + ("batch_size", "grad_accum", "optimizer", "lr", "muon_lr", "muon_ns_steps")}
    # (the corpus's characters as a BPE member's ids: a step's time depends on the shapes, not on which ids, and a
    # text of more characters than the BPE's size, Chinese say, gives ids past its vocabulary: folded into it)
    timer = StepTimer(settings, pick_dtype(cpu, cfg.dtype, cfg.n_embd), vocab=vocab,
                      batches=lambda: tuple(t % vocab for t in data.batch("train", cfg.batch_size, gen, cpu)))
    times = []
    for _ in range(steps + 1):  # the first warms up
        t = time.perf_counter()
        timer.step()
        times.append(time.perf_counter() - t)
    fwd = timer.forward_s()
    val_batches = max(1, len(data.val) // (32 * cfg.block_size))
    build_s, token_s = _sample_s(timer.model, firsts) if cfg.sample_chars else (0.0, 0.0)
    return min(times[1:]), fwd, fwd * 32 / cfg.batch_size * val_batches, build_s, token_s


def _sample_s(model, firsts: dict, n: int = 24) -> tuple[float, float]:
    """(seconds to build the sampler's decoder, as each evaluation builds it anew; seconds per token of its
    sample, over ``n`` tokens)."""
    import numpy as np

    from tinygpt_tui.sampler import decoder

    n = max(1, min(n, model.cfg.block_size - 1))  # (inside the window: no restart)
    model.eval()
    try:
        t = time.perf_counter()
        decoder(model).feed([0])  # the first build in a process loads the compiled step: once, not each evaluation's
        firsts.setdefault("decoder_s", time.perf_counter() - t)
        t = time.perf_counter()
        run = decoder(model)
        run.feed([0])
        built = time.perf_counter() - t
        t = time.perf_counter()
        run.sample(n, np.random.default_rng(0).random(n), 0.8, 0, 1.0)
        return built, (time.perf_counter() - t) / n
    finally:
        model.train()
