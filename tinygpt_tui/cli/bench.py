"""`tinygpt bench`: what this machine was measured to run fastest (engine/probe.py), and how close each
preset's training step comes to the machine's matmul rate. `--probe` measures the machine again.

The step and the matmuls are timed side by side, taking turns (a busy machine slows both alike), on the
threads `tinygpt train` would use; on one thread the clock is this process's CPU time (the time it
ran, not the time it waited for a core), on more the wall clock. The full benchmark against nanoGPT
lives in the checkout's bench/ (`python -m bench.bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tinygpt_tui.cli.common import console as new_console, fail, friendly, one_line, prose

O = typer.Option
DEFAULT_PRESETS = ("tiny", "1min", "5min", "small")


@friendly
def bench(
    probe_again: bool = O(False, "--probe", help="Measure this machine again (about 10 s) and cache the result."),
    presets: str = O(",".join(DEFAULT_PRESETS), "--presets", help="Presets whose training step to measure, comma-separated, or all, or none."),
    seconds: float = O(3.0, "--seconds", help="Seconds of measuring per preset (at least 2 steps each)."),
    threads: Optional[int] = O(None, "--threads", help="CPU threads (default: the probe's choice)."),
    json_path: Optional[str] = O(None, "--json", help="Also write the figures to this JSON file."),
):
    """This machine's measured choices (precision, threads, preset sizes) and each preset's step as a
    fraction of its matmul rate."""
    import json

    from rich.text import Text

    from tinygpt_tui.cli.train import note  # (a dim line on stderr)
    from tinygpt_tui.engine import probe
    from tinygpt_tui.engine.presets import PRESETS, budget_preset, check_threads
    from tinygpt_tui.errors import TinyGPTError

    names = list(PRESETS) if presets.strip() == "all" else [] if presets.strip() == "none" else [p.strip() for p in presets.split(",") if p.strip()]
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        fail(f"unknown preset {unknown[0]!r} in --presets; choose from {', '.join(PRESETS)}, all or none")
    if not (0 < seconds <= 600):
        fail(f"--seconds must be above 0 and at most 600, got {seconds}")
    if threads is not None:
        check_threads(threads)
    where = Path(json_path).expanduser() if json_path else None
    if where is not None and (where.is_dir() or not where.parent.is_dir()):  # (said before the measuring, not after)
        fail(f"cannot write {one_line(where)}: " + ("it is a folder" if where.is_dir() else f"the folder {one_line(where.parent)} does not exist"))
    out = new_console()

    import torch

    if probe_again:
        note("measuring this machine (under 10 s on a free core) ...")
        doc = probe.run()
        try:
            note(f"cached in {probe.save(doc)}")
        except TinyGPTError as e:
            note(f"note: not cached ({one_line(str(e))[:160]})")
    else:
        doc = probe.current(note)
    if doc is None:
        fail("no probe of this machine (TINYGPT_PROBE=0, or it could not run); `tinygpt bench --probe` measures it")
    if not threads:
        doc = probe.retime_threads(doc, note)
    m, load = doc["machine"], doc.get("load_avg")  # (None: unreadable where it was probed)
    prose(out, Text(f"machine: {m['cpu']}, {m['cores']} cores, torch {doc['torch']}; probed {doc['created']} "
                    f"in {doc['seconds']:.1f} s (load average {'unknown' if load is None else load})"))
    prose(out, summary(doc))
    n = threads or probe.choose_threads(doc)
    dtypes = {name: probe.choose_dtype(doc, PRESETS[name].get("n_embd", 256)) for name in names}
    prose(out, Text(f"chosen here: {n} thread{'s' if n > 1 else ''} (of {probe.cores()}, {probe.free_cores()} free now); "
                    f"bf16 {'measured faster' if probe.bf16_wins(doc) else 'not faster'} than fp32; "
                    + "; ".join(f"--minutes {m:g}: preset {budget_preset(m * 60, doc['step_ms'])}" for m in (1, 5, 10))))
    rows = efficiency(names, dtypes, n, seconds) if names else []
    if rows:
        clock = "CPU time, 1 thread" if n == 1 else f"wall clock, {n} threads"
        out.print(efficiency_table(rows, clock))
        prose(out, Text("tokens and GFLOP per step; GFLOP/s of the model's FLOPs and of an N x N matmul in the same precision (N 1024). Model FLOPs only: 6 per matmul weight per token (blocks and output layer) + 12 x layers x context x width "
                        "per token for attention; + Muon: its Newton-Schulz iterations' FLOPs counted too", style="dim"))
    if json_path:
        from tinygpt_tui.engine.files import atomic_write

        atomic_write(where, json.dumps({"probe": doc, "threads": n, "torch_threads": torch.get_num_threads(),
                                                  "efficiency": rows}, indent=1) + "\n")
        prose(out, Text(f"figures written to {one_line(json_path)}"))


def summary(doc: dict) -> str:
    """The probe's figures in a line (a cache that passed probe.check: its presets and thread timings bounded)."""
    r, th = doc["matmul_gflops"], {int(k): v for k, v in doc["threads_ms"].items()}
    rates = ", ".join(f"{d} {v:,.0f}" for d, v in r.items())
    steps = "; ".join(f"{k} " + ", ".join(f"{d} {v:,.0f} ms" for d, v in s.items()) for k, s in doc["step_ms"].items())
    threads = ", ".join(f"{k} thread{'s' if k > 1 else ''} {v:,.0f} ms" for k, v in sorted(th.items()))
    return (f"probe ({doc['seconds']:.1f} s): matmul GFLOP/s per core {rates}; training step, CPU time: {steps}; "
            f"{doc['threads_preset']} step, wall clock: {threads}")


def efficiency(names: list[str], dtypes: dict, threads: int, seconds: float) -> list[dict]:
    """Each preset's training step (at its chosen precision) and the matmul rate in that precision, timed
    taking turns: the model's FLOPs per second as a fraction of the matmul's."""
    import time

    import torch

    from tinygpt_tui.engine import probe
    from tinygpt_tui.engine.presets import PRESETS

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    clock = time.process_time if threads == 1 else time.perf_counter
    try:
        timers = {name: probe.StepTimer(PRESETS[name], dtypes[name]) for name in names}
        fns = {f"mm-{d}": probe.matmul_fn(d) for d in sorted(set(dtypes.values()))}
        fns.update({name: t.step for name, t in timers.items()})
        times = probe.interleaved(fns, seconds * len(names), clock=clock)
    finally:
        torch.set_num_threads(before)
    rows = []
    for name, t in timers.items():
        mm = 2 * probe.MATMUL_N**3 / times[f"mm-{dtypes[name]}"]
        flops = probe.model_flops(t.model, t.tokens)
        rows.append({"preset": name, "params": t.cfg.param_count(), "tokens": t.tokens, "precision": dtypes[name],
                     "ms": times[name] * 1e3, "gflop": flops / 1e9, "gflops": flops / times[name] / 1e9,
                     "matmul_gflops": mm / 1e9, "fraction": flops / times[name] / mm,
                     "muon_gflop": probe.muon_flops(t.model, t.ns_steps) / 1e9,
                     "with_muon": (flops + probe.muon_flops(t.model, t.ns_steps)) / times[name] / mm})
    return rows


def efficiency_table(rows: list[dict], clock: str):
    """The efficiency rows as a table whose figures stay whole at 80 columns (the headers wrap instead)."""
    from rich import box
    from rich.table import Table

    fig = lambda v: f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"  # noqa: E731 (three figures)
    cells = [[r["preset"], f"{r['params'] / 1e6:.2f}M", f"{r['tokens']:,}", r["precision"], fig(r["ms"]), fig(r["gflop"]),
              f"{r['gflops']:,.0f}", f"{r['matmul_gflops']:,.0f}", f"{r['fraction']:.0%}", f"{r['with_muon']:.0%}"] for r in rows]
    t = Table(title=f"Training step against the matmul rate, side by side ({clock})", title_justify="left", box=box.SIMPLE,
              padding=(0, 0, 0, 1), pad_edge=False)
    for i, col in enumerate(("preset", "params", "tokens", "dtype", "ms a step", "GFLOP", "GFLOP/s", "matmul", "of matmul", "+ Muon")):
        t.add_column(col, justify="left" if col in ("preset", "dtype") else "right", min_width=max(len(c[i]) for c in cells))
    for c in cells:
        t.add_row(*c)
    return t
