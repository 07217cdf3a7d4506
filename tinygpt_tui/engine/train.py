"""The one training loop, shared by `tinygpt train`, `python train.py`, the app and torchrun.

    for event in train(TrainConfig(corpus="input.txt", name="mine", max_steps=2000), stop_event):
        print(event)

It yields events (engine/events.py: Started, Step, Eval, Overfitting, Saved, Stopping, Measuring, Finished), appending
each to metrics.jsonl so anyone can follow a run; with preparation=True, first the corpus's preparation
(engine/sources.py's Progress, kept nowhere). A set ``stop_event`` ends the step under way, then one save (set before the first step, in one
process: the run ends there, nothing saved). The folder keeps the best evaluation's weights (at the end: the
better of those and the last step's over the whole validation split) and the last step's training state.
Distributed, only rank 0 writes and all ranks agree each step on stopping. The batches and dropout of step s on
rank r come from generators seeded with (seed, r, s): a resumed run draws what the uninterrupted one would have.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import threading
import time
from pathlib import Path

from tinygpt_tui.data import Dataset
from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.engine.lineage import child_config, load_parent_weights, read_parent, run_tokenizer
from tinygpt_tui.engine.device import activation_bytes_per_sequence, autocast, check_fits, memory_budget_bytes, micro_batch_split
from tinygpt_tui.engine.distributed import DistInfo, agree_on_failure, agree_on_stop, dist_device, rank_digests
from tinygpt_tui.engine.evaluate import MAX_EVAL_TOKENS, estimate_loss, evaluate_split
from tinygpt_tui.engine.events import Eval, Finished, Measuring, Overfitting, Saved, Started, Step, Stopping  # noqa: F401 (also taken from here)
from tinygpt_tui.engine.metrics import MetricsLog, truncate_metrics
from tinygpt_tui.engine.prepare import prepare, until_prepared
from tinygpt_tui.engine.runs import EvalPoint, overfitting
from tinygpt_tui.engine.presets import NameTaken, NothingToTrain, TrainConfig, build_optimizer, check_name, lr_at, resume_config
from tinygpt_tui.errors import CheckpointError, CorpusError, SettingsError, TinyGPTError


# ----------------------------------------------------------------- steps
def diverged(loss: float, step: int) -> float:
    if not math.isfinite(loss):  # a NaN or infinite loss stops the run before it is saved as a figure
        raise TinyGPTError(f"training diverged at step {step} (loss is {loss}); try a lower --lr")
    return loss


def step_seed(seed: int, rank: int, step: int, micro: int = 0) -> int:
    return (seed * 1_000_003 + rank * 7_919 + step * 31 + micro) % (2**63 - 1)


# ----------------------------------------------------------------- the run
class Run:
    """Everything one training run holds; ``events()`` runs it."""

    def __init__(self, cfg: TrainConfig, stop_event: threading.Event | None = None, dist: DistInfo | None = None, preparation=False):
        self.cfg, self.stop_event, self.dist, self.lock, self.preparation = cfg, stop_event or threading.Event(), dist or DistInfo(), None, preparation
        self.created, self.corpus = False, None  # whether this run made its folder (removed again if refused before it starts)

    def _settings(self):
        """The settings, corpus and vocabulary of the run, and the training state to resume from."""
        cfg = self.cfg
        check_name(cfg.name, new=not cfg.resume)
        models_dir = Path(cfg.models_dir) if cfg.models_dir else ckpt.default_models_dir()
        self.folder = models_dir / cfg.name
        self.start_step, self.elapsed_before, self.tokens_before = 0, 0.0, 0
        self.best_val = self.best_step = self.best_train = self.best_weights = None
        self.last_est = (None, None, None)  # (step, val, train) of the last evaluation
        self.evals, self.overfit = [], False  # this session's evaluations (EvalPoints), and whether they said overfitting
        self.parent = read_parent(cfg) if cfg.init_from else None  # --from A (engine/lineage.py)
        if not cfg.resume:
            cfg = (child_config(cfg, self.parent) if self.parent else cfg).resolved()
            if (self.folder / ckpt.CONFIG).exists():
                raise NameTaken(cfg.name, models_dir)
            tokenizer, self.lineage = run_tokenizer(cfg, self.parent)  # (a function of the scanned corpus, or A's)
            return cfg, None, tokenizer, None
        if why := ckpt.nothing_to_resume(self.folder):
            raise CheckpointError(why)
        doc, model_cfg = ckpt.check_folder(self.folder)
        tensors, meta = ckpt.load_train_state(self.folder)
        cfg = resume_config(cfg, doc.get("training", {}), model_cfg, doc.get("corpus", {}).get("path", ""), doc.get("command"))
        self.lineage = doc.get("lineage")
        self.start_step, self.elapsed_before, self.tokens_before = meta["step"], meta.get("elapsed_s", 0.0), meta.get("tokens_seen", 0)
        if cfg.max_steps is not None and not cfg.time_budget and self.start_step >= cfg.max_steps:
            raise NothingToTrain(cfg.name, self.start_step, cfg.max_steps)
        self._resume_best(meta, doc, tensors)
        return cfg, doc.get("corpus", {}).get("sha256"), ckpt.read_vocab(self.folder), (tensors, meta)

    def _open_corpus(self, want_sha):
        """The corpus prepared into token files (engine/prepare.py: once, then reused; ranks take turns), its Progress yielded,
        with the run's tokenizer; False if stopped meanwhile (alone: ranks stop together, at step 0). The CLI prepares it first."""
        corpus = yield from until_prepared(prepare(self.cfg.corpus, self.tokenizer), self.stop_event if self.dist.world_size == 1 else None)
        if corpus is None:
            return False
        if want_sha and want_sha != corpus.sha256:
            raise CorpusError(f"{self.cfg.corpus} is not the corpus {self.cfg.name} was trained on (sha256 differs); resume with the same file")
        if corpus.tokenizer.vocab_size < 2:
            raise CorpusError(f"the corpus {corpus.name} holds one distinct character: there is nothing to learn")
        self.corpus, self.tokenizer = corpus, corpus.tokenizer
        return True

    def _resume_best(self, meta, doc, tensors):
        """The best evaluation's weights: the state's own (the last step was the best), or the weights file's
        when it holds the step the state names (a kill between two renames may leave it a save behind)."""
        best_step = meta.get("best_step")  # None: a state from before the best was kept
        if best_step == meta["step"]:
            weights = ckpt.state_weights(tensors)
        elif best_step is not None and ckpt.weights_step(self.folder, of=True) == best_step:
            try:
                weights = ckpt.check_finite(ckpt.read_tensors(self.folder / ckpt.WEIGHTS), ckpt.WEIGHTS)
            except CheckpointError:
                return
        else:
            return
        figures = doc.get("figures") if isinstance(doc.get("figures"), dict) else {}
        self.best_weights = {k: v.float().clone() for k, v in weights.items()}
        self.best_val, self.best_step, self.best_train = meta.get("best_val_loss"), best_step, figures.get("train_loss")

    def _prepare(self):
        import torch

        from tinygpt_tui.engine.device import describe, pick_device, pick_dtype
        from tinygpt_tui import fast, model
        from tinygpt_tui.fast.kernels import accelerate

        cfg, want_sha, self.tokenizer, state = self._settings()
        self.cfg = cfg
        if not (yield from self._open_corpus(want_sha)):
            return
        self.data = Dataset(self.corpus, self.tokenizer, cfg.block_size)
        if self.dist.is_main:  # one run per model folder: a second one is refused, never interleaved
            self.created = not self.folder.exists()
            self.lock = ckpt.FolderLock(self.folder)
            if not cfg.resume and (self.folder / ckpt.CONFIG).exists():
                raise NameTaken(cfg.name, self.folder.parent)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = dist_device(cfg.device, self.dist) if self.dist.world_size > 1 else pick_device(cfg.device)
        self.model_cfg = cfg.model_config(self.tokenizer.vocab_size)
        self.dtype = pick_dtype(self.device, cfg.dtype, self.model_cfg.n_embd)
        self.device_name = describe(self.device)

        # gradient accumulation: the global batch is batch_size * grad_accum whatever the world size
        W = self.dist.world_size
        if cfg.grad_accum % W == 0:
            self.micro_batch, self.accum = cfg.batch_size, cfg.grad_accum // W
        elif cfg.batch_size % W == 0 and cfg.grad_accum == 1:
            self.micro_batch, self.accum = cfg.batch_size // W, 1
        else:
            raise SettingsError(f"the global batch ({cfg.batch_size} x {cfg.grad_accum} accumulation steps) can't be shared "
                                f"by {W} processes; make --grad-accum or --batch-size divisible by {W}")
        self.tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.block_size

        budget = memory_budget_bytes(cfg.memory_budget, self.device)
        check_fits(self.model_cfg, self.micro_batch, self.device, budget)  # before the model exists
        torch.manual_seed(cfg.seed)
        self.model = model.GPT(self.model_cfg).to(self.device)
        load_parent_weights(self.model, self.parent)  # --from A: A's weights, fresh rows for new characters
        if fast.enabled():
            accelerate(self.model)  # fast/kernels.py: the same function, faster on a CPU (no-op elsewhere)
        self.model.checkpointing = bool(cfg.checkpoint_activations)
        self.activation_mb = None  # what a micro-batch keeps for the backward pass (measured when a budget applies)
        if budget:
            per_seq = activation_bytes_per_sequence(self.model, self.model_cfg.block_size, self.device, self.dtype)
            k = micro_batch_split(self.micro_batch, per_seq, budget)
            self.micro_batch, self.accum = self.micro_batch // k, self.accum * k
            self.activation_mb = per_seq * self.micro_batch / 1e6
        self.optimizer = build_optimizer(self.model, cfg, self.dtype)
        if state is not None:
            weights = ckpt.state_weights(state[0])  # its own copy: the weights file may be a save behind
            if self.model_cfg.tie_weights and "tok_emb.weight" in weights:
                weights["head.weight"] = weights["tok_emb.weight"]
            try:
                self.model.load_state_dict(weights)
            except RuntimeError as e:
                raise CheckpointError(f"the weights in the training state do not fit the model: {str(e).splitlines()[-1].strip()[:160]}") from None
            self.optimizer.load_tensors(*state, self.device)
        self.ddp_model = self.model
        if W > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp_model = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.dtype == "fp16" else None

    def save(self, step, elapsed, tokens, final_val=None, heads=None) -> Saved:
        """A checkpoint: the best evaluation's weights (the last step's before any), the last step's training state."""
        import torch

        from tinygpt_tui import __version__

        cfg = self.cfg
        doc = {
            "name": cfg.name, "model": self.model_cfg.to_dict(), "training": cfg.training_dict(),
            "corpus": {"name": self.corpus.name, "path": os.path.abspath(os.path.expanduser(self.corpus.path)),  # (found from any folder)
                       "sha256": self.corpus.sha256, "chars": self.corpus.chars},
            "figures": {
                "step": step, "tokens_seen": tokens, "train_time_s": round(elapsed, 2), "params": self.model_cfg.param_count(),
                "weights_step": step if self.best_step is None else self.best_step, "train_loss": self.best_train,
                "best_val_loss": self.best_val, "val_loss": self.best_val if final_val is None else final_val,
                "val_loss_is": "estimate" if final_val is None else self._val_scope("full validation split"),
                **self._bits(self.best_val if final_val is None else final_val),
            },
            "device": self.device_name, "dtype": self.dtype, "world_size": self.dist.world_size, "command": cfg.command,
            "versions": {"tinygpt": __version__, "torch": torch.__version__.split("+")[0]},
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **({"heads": heads} if heads else {}), **({"lineage": self.lineage} if self.lineage else {}),
        }
        tensors, meta = self.optimizer.to_tensors()
        meta.update(elapsed_s=elapsed, tokens_seen=tokens, best_val_loss=self.best_val, best_step=self.best_step, seed=cfg.seed)
        ckpt.save_model(self.folder, self.model, self.tokenizer, doc, card=ckpt.render_card(doc, self.folder), train_state=(tensors, meta),
                        weights=self.best_weights)
        return Saved(step=step, path=str(self.folder), elapsed_s=elapsed)

    def _bits(self, val_loss) -> dict:
        """A validation loss as bits per character and per byte of the validation text (None: none yet)."""
        bpc, bpb = (None, None) if val_loss is None else self.data.bits(val_loss, "val")
        return {"val_bpc": bpc, "val_bpb": bpb}

    def _train_step(self, step: int, lr: float):
        """One step: forward and backward over its micro-batches, then the update; their mean loss (a tensor: read when logged)."""
        import torch

        cfg, dist = self.cfg, self.dist
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        step_loss = 0.0
        for micro in range(self.accum):
            self.gen.manual_seed(step_seed(cfg.seed, dist.rank, step, micro))  # the batch's windows
            torch.manual_seed(step_seed(cfg.seed, dist.rank, step, micro + 500))  # its dropout masks
            x, y = self.data.batch("train", self.micro_batch, self.gen, self.device)
            last = micro == self.accum - 1
            # DDP averages the gradients across ranks once per step: on the last micro-batch
            with self.ddp_model.no_sync() if (dist.world_size > 1 and not last) else contextlib.nullcontext():
                with autocast(self.device, self.dtype):
                    _, loss = self.ddp_model(x, y)
                loss = loss / self.accum
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            step_loss += loss.detach()
        if self.scaler:
            for o in self.optimizer.parts:
                self.scaler.unscale_(o)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        if self.scaler:
            for o in self.optimizer.parts:
                self.scaler.step(o)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return step_loss

    def _evaluate(self, step, elapsed):
        """An evaluation's Eval, and an Overfitting when its validation loss is the one that shows the run overfitting."""
        ev = self._eval(step, elapsed)
        yield self.emit(ev)
        self.evals.append(EvalPoint(step, 0, 0.0, ev.train_loss, ev.val_loss))
        said, note = self.overfit, overfitting(self.evals)
        self.overfit = note is not None
        if note and not said:
            best = min(self.evals, key=lambda e: e.val_loss)
            yield self.emit(Overfitting(step=step, best_step=best.step, best_val_loss=best.val_loss, val_loss=ev.val_loss,
                                        train_loss=ev.train_loss, message=note))

    def emit(self, ev):
        if self.dist.is_main:  # (a step's record waits for the others of its second; any other is written at once)
            self.log.add({**ev.record(), "time": round(time.time(), 3)}, now=not isinstance(ev, Step))
        return ev

    def _eval(self, step, elapsed) -> Eval:
        from tinygpt_tui.sampler import Generation, SamplingSettings

        cfg = self.cfg
        # the same batches whatever the world size (each rank takes its share): figures compare across runs
        es = step_seed(cfg.seed, 0, step, 999)
        args = (cfg.eval_iters, cfg.batch_size, self.device, self.dtype)
        train_est = diverged(estimate_loss(self.model, self.data, "train", *args, es, self.dist), step)
        val_est = diverged(estimate_loss(self.model, self.data, "val", *args, es + 1, self.dist), step)
        self.last_est = (step, val_est, train_est)
        if self.best_val is None or val_est < self.best_val:
            self.best_val, self.best_train, self.best_step = val_est, train_est, step
            self.best_weights = ckpt.model_weights(self.model, copy=True)
        sample = ""
        if self.dist.is_main and cfg.sample_chars and not self.stop_event.is_set():  # a stop waits for no sample
            s = SamplingSettings(max_new_tokens=cfg.sample_chars, temperature=0.8, seed=(cfg.seed + step) % 2**63)
            sample = "".join(Generation(self.model, self.tokenizer, "\n", s))
            self.model.train()
        bpc, bpb = self.data.bits(val_est, "val")
        return Eval(step=step, train_loss=train_est, val_loss=val_est, best_val_loss=self.best_val, elapsed_s=elapsed, sample=sample,
                    bpc=bpc, bpb=bpb)

    def _progress(self, step, elapsed) -> float:
        cfg = self.cfg
        return max(step / cfg.max_steps if cfg.max_steps else 0.0, elapsed / cfg.time_budget if cfg.time_budget else 0.0)

    def events(self):
        import torch
        import torch.distributed as torch_dist

        try:
            yield from (ev for ev in self._prepare() if self.preparation)  # (its Progress, passed on when asked for)
            failed = agree_on_failure(None, self.dist)
        except TinyGPTError as e:
            failed = agree_on_failure(e, self.dist)
        if failed is not None:
            raise failed
        if self.corpus is None or self.stop_event.is_set() and self.dist.world_size == 1:  # stopped before it started (while
            return  # its corpus was prepared, or its model built): nothing trained, nothing saved (ranks agree on a stop at step 0)
        cfg, model, dist, main = self.cfg, self.model, self.dist, self.dist.is_main
        if main:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                if cfg.resume:  # a resumed run rewrites what came after its checkpoint
                    truncate_metrics(self.folder, self.start_step)
                elif not (self.folder / ckpt.METRICS).is_symlink():  # (a link is refused by the first append)
                    truncate_metrics(self.folder, -1)  # a new run: drop what a run that died before saving left
            except OSError as e:
                raise CheckpointError(f"cannot write to {self.folder}: {e.strerror or e}") from None

        log = self.log = MetricsLog(self.folder)
        self.created = False  # started: from here its folder keeps the run's records, as a killed run's would
        emit = self.emit
        yield emit(Started(
            step=self.start_step, max_steps=cfg.max_steps, time_budget=cfg.time_budget, params=self.model_cfg.param_count(),
            device=self.device_name, dtype=self.dtype, tokens_per_step=self.tokens_per_step, world_size=dist.world_size,
            model=self.model_cfg.to_dict(), corpus=self.corpus.name, tokenizer=self.tokenizer.describe(), resumed=cfg.resume, dropped_chars=self.data.dropped[:50],
            micro_batch=self.micro_batch, accum=self.accum, activation_mb=None if self.activation_mb is None else round(self.activation_mb, 1),
        ))

        step, tokens = self.start_step, self.tokens_before
        t0 = time.perf_counter()
        last_log_t, last_log_step = t0, step
        self.gen = torch.Generator()
        model.train()
        progress_start = self._progress(step, self.elapsed_before)
        while True:
            elapsed = self.elapsed_before + (time.perf_counter() - t0)
            stop, progress, elapsed = agree_on_stop(self.stop_event.is_set(), self._progress(step, elapsed), elapsed, dist, self.device)
            if stop or progress >= 1.0:
                # every step taken: done, whatever came with the last (stopped there, an experiment's member failed on resume)
                reason = "done" if (cfg.max_steps and step >= cfg.max_steps) else "stopped" if stop else "budget"
                break
            lr = lr_at(cfg, step, progress)
            step_loss = self._train_step(step, lr)
            step += 1
            tokens += self.tokens_per_step
            log.tick()  # (rank 0 alone has records to write)

            if step % cfg.log_interval == 0 or step == 1:
                if dist.world_size > 1:
                    torch_dist.all_reduce(step_loss)  # the loss of the global batch, not rank 0's share
                    step_loss = step_loss / dist.world_size
                now = time.perf_counter()
                loss = diverged(float(step_loss), step)
                tps = (step - last_log_step) * self.tokens_per_step / max(now - last_log_t, 1e-9)
                last_log_t, last_log_step = now, step
                elapsed = self.elapsed_before + (now - t0)
                progress = self._progress(step, elapsed)
                done = progress - progress_start  # this session's pace (a resumed run's earlier time not counted)
                eta = max(0.0, (elapsed - self.elapsed_before) * (1 - progress) / done) if done > 0 else float("inf")
                yield emit(Step(step=step, loss=loss, lr=lr, tokens_per_s=tps, elapsed_s=elapsed, progress=min(progress, 1.0),
                                eta_s=eta, tokens_seen=tokens))

            if step % cfg.eval_interval == 0:
                elapsed = self.elapsed_before + (time.perf_counter() - t0)
                yield from self._evaluate(step, elapsed)
                if main:
                    yield emit(self.save(step, elapsed, tokens))
                last_log_t = time.perf_counter()

        elapsed = self.elapsed_before + (time.perf_counter() - t0)
        must_save = main and (step > self.start_step or not cfg.resume)
        saved_step = step if step % cfg.eval_interval == 0 and step > self.start_step else None
        final_val = None
        if reason == "stopped":
            # a stop waits for the step under way and one save: no evaluation, no sample
            if must_save and saved_step != step:
                yield emit(Stopping(step=step, waiting_for="saving"))
                yield emit(self.save(step, elapsed, tokens))
        else:
            if step > self.start_step and saved_step != step:
                yield from self._evaluate(step, elapsed)
            # the loss of the weights the folder keeps over the whole split (every rank takes a share): said first, as the
            # progress bar sits at its end meanwhile (seconds; a minute for a big corpus)
            scope, measured = self._val_scope("whole validation split"), min(len(self.data.val), MAX_EVAL_TOKENS)
            yield emit(Measuring(step=step, scope=scope, tokens=measured))
            from tinygpt_tui.engine.lens import head_hints
            kept = self._kept_model(step)
            final_val = diverged(evaluate_split(kept, self.data, "val", self.device, dist=dist), step)
            if kept is not self.model and self.last_est[0] == step:
                # a few batches' estimate chose an earlier step; the whole split decides between it and the last (in
                # the speedrun's 1,776 steps the estimates kept step 1,600 three times in three, each 0.005-0.02 worse)
                last_val = diverged(evaluate_split(self.model, self.data, "val", self.device, dist=dist), step)
                if last_val <= final_val:
                    _, self.best_val, self.best_train = self.last_est
                    self.best_step, self.best_weights, kept, final_val = step, None, self.model, last_val
            if must_save:  # the card also tells what each head looks at (engine/lens.py; about a second)
                saved = self.save(step, elapsed, tokens, final_val=final_val, heads=head_hints(kept, self.tokenizer, self.data.val))
                if saved_step != step:
                    yield emit(saved)
        digests = rank_digests(model, dist)
        if dist.world_size > 1:
            if len(set(digests)) > 1 and main:
                print(f"warning: the {dist.world_size} processes ended with different weights; rank 0's were saved", file=sys.stderr)
            torch_dist.barrier()  # no rank leaves before rank 0 has saved
        yield emit(Finished(step=step, reason=reason, val_loss=final_val, best_val_loss=self.best_val, elapsed_s=elapsed,
                            path=str(self.folder), rank_digests=digests, **dict(zip(("bpc", "bpb"), self._bits(final_val).values())),
                            val_scope=self._val_scope("whole validation split")))
        log.flush()

    def _val_scope(self, whole: str) -> str:
        """What the final validation loss is measured on: the whole split, or past MAX_EVAL_TOKENS a spread sample."""
        return whole if len(self.data.val) <= MAX_EVAL_TOKENS else f"{MAX_EVAL_TOKENS:,} tokens evenly spread over the validation split"

    def _kept_model(self, step):
        """The model with the weights the folder keeps: the best evaluation's (a copy), or the last step's."""
        if self.best_step is None or self.best_step == step:
            return self.model
        kept = copy.deepcopy(self.model)
        kept.load_state_dict(self.best_weights, strict=False)  # (a tied head follows its embedding)
        return kept


def train(cfg: TrainConfig, stop_event: threading.Event | None = None, dist: DistInfo | None = None, preparation: bool = False):
    """Run training; yields events. See the module docstring."""
    run = Run(cfg, stop_event, dist, preparation)
    try:
        yield from run.events()
    finally:
        if run.lock is not None:
            run.lock.release()
            if run.created and ckpt.is_dead_run(run.folder):  # refused or failed before its first save
                with contextlib.suppress(TinyGPTError):
                    ckpt.remove_dead_run(run.folder)
