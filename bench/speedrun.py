"""`python -m bench.speedrun`: the time per training step behind docs/speedrun.md's records, side by side.

A speedrun record is a loss at a step count (deterministic: `tinygpt train --max-steps N --seed S`
gives the same loss on any machine and any load) times the time per step. This measures the time
per step of each record's settings and of nanoGPT's CPU recipe (its model from bench/bench.py: fp32
eager AdamW, and with bf16 autocast, its best setting on a CPU with bf16), taking turns on one
thread and counting this process's CPU time (a shared machine's waits for a core are not counted),
or with `--threads 2` on both cores and the wall clock (fair only on a machine at rest).

    python -m bench.speedrun                     # the presets against nanoGPT's recipe
    python -m bench.speedrun --seconds 60        # longer: steadier medians
    python -m bench.speedrun --threads 2         # both cores, on the wall clock (a machine at rest only)
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import typer

from tinygpt_tui.cli.common import HELP, Command

# nanoGPT's README CPU recipe: 4 layers, 4 heads, 128 dims, context 64, batch 12, dropout 0, lr 1e-3, AdamW
NANOGPT_RECIPE = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12)


def nanogpt_step(dtype: str):
    """nanoGPT's CPU recipe's training step (its model, AdamW, gradient clipping), fp32 or bf16 autocast."""
    import contextlib

    import torch

    from bench.bench import Shape, reference_model

    torch.manual_seed(0)
    s = NANOGPT_RECIPE
    model = reference_model(Shape("nanoGPT", s["n_layer"], s["n_head"], s["n_embd"], s["block_size"], s["batch_size"]))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(1)
    x, y = (torch.randint(0, 65, (s["batch_size"], s["block_size"]), generator=g) for _ in range(2))
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bf16" else contextlib.nullcontext

    def step():
        with ctx():
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def run(settings: dict[str, dict], seconds: float, threads: int = 1) -> dict:
    """ms per step (median of turns) of nanoGPT's recipe (fp32, and bf16 autocast on a CPU with native bf16) and
    each named setting (a preset dict with optional "dtype"; default: the precision `tinygpt train --dtype auto`
    picks on this machine). One thread counts this process's CPU time; more count the wall clock (CPU time would
    add up every thread's), which is only fair on a machine whose cores are free."""
    import torch

    from tinygpt_tui.engine import probe
    from tinygpt_tui.engine.presets import PRESETS

    from tinygpt_tui.engine.device import cpu_has_fast_bf16, pick_dtype

    torch.set_num_threads(threads)
    doc = probe.current()  # what `tinygpt train` chooses here; bf16 rows only where this CPU has it natively
    native_bf16 = probe.bf16_wins(doc) if doc else cpu_has_fast_bf16()
    fns = {"nanoGPT CPU recipe, fp32": nanogpt_step("fp32")}
    if native_bf16:
        fns["nanoGPT CPU recipe, bf16 autocast"] = nanogpt_step("bf16")
    tokens = {k: NANOGPT_RECIPE["batch_size"] * NANOGPT_RECIPE["block_size"] for k in fns}
    for name, s in settings.items():
        preset = {**PRESETS.get(s.get("preset", ""), {}), **{k: v for k, v in s.items() if k not in ("preset", "dtype")}}
        dtype = s.get("dtype") or pick_dtype(torch.device("cpu"), "auto", preset.get("n_embd", 0))
        t = probe.StepTimer(preset, dtype)
        name = f"{name}, {dtype}"
        fns[name], tokens[name] = t.step, t.tokens
    clock = time.process_time if threads == 1 else time.perf_counter
    times = probe.interleaved(fns, seconds, clock=clock, min_reps=5)
    try:
        import os

        load = os.getloadavg()[0]
    except OSError:
        load = None
    base = times["nanoGPT CPU recipe, fp32"]
    return {"cpu": probe.cpu_identity()["cpu"], "torch": probe.torch_version(), "load_avg": load, "threads": threads,
            "clock": "CPU time, 1 thread" if threads == 1 else f"wall clock, {threads} threads",
            "rows": [{"setting": k, "ms_per_step": round(v * 1e3, 2), "tokens_per_step": tokens[k],
                      "step_vs_nanogpt": round(v / base, 3)} for k, v in times.items()]}


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


@app.command(cls=Command, context_settings=HELP)
def speedrun(
    seconds: float = typer.Option(30.0, "--seconds", help="Seconds of measuring in all."),
    settings: str = typer.Option("", "--settings", help='JSON: {"name": {"preset": "1min", "batch_size": 32, ...}} (default: the budget presets).'),
    threads: int = typer.Option(1, "--threads", min=1, help="Threads for every setting: 1 counts CPU time, more the wall clock (use them on free cores only)."),
    json_path: str = typer.Option("", "--json", help="Also write the figures here."),
):
    """Time per step of the speedrun's settings against nanoGPT's CPU recipe (docs/speedrun.md)."""
    chosen = json.loads(settings) if settings else {"tinygpt 1min preset": {"preset": "1min"}, "tinygpt 5min preset": {"preset": "5min"}}
    result = run(chosen, seconds, threads)
    print(f"{result['cpu']}, torch {result['torch']}, {result['clock']}, load average {result['load_avg']}")
    for r in result["rows"]:
        print(f"{r['setting']:<40} {r['ms_per_step']:>9.2f} ms/step  {r['tokens_per_step']:>6} tokens  {r['step_vs_nanogpt']:.2f}x nanoGPT's step")
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    sys.exit(typer.main.get_command(app).main(sys.argv[1:], prog_name="python -m bench.speedrun", standalone_mode=False) or 0)
