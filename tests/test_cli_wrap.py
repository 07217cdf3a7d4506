"""The command line's prose on a terminal: wrapped between words at its width, where the terminal's own wrap
cut words in two at 80 columns ("n|othing"); a command printed to be copied stays one line; a pipe gets
every line whole. A terminal is what rich takes for one (TTY_COMPATIBLE=1, as a pty would be)."""

from __future__ import annotations

import re
import shutil

import pytest
from rich.cells import cell_len

from tests.conftest import make_model, make_tiny_model
from tests.test_cli import tinygpt_inproc
from tinygpt_tui.engine import probe

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def lines_of(text: str) -> list[str]:
    """What the screen shows, line by line: escapes (colours, a progress bar's cursor moves) left out."""
    return [ln.rstrip() for ln in re.split(r"[\r\n]", ESCAPES.sub("", text))]


def run_both(*args, columns: int = 80, env: dict | None = None, between=None) -> tuple[list[str], list[str]]:
    """The same command on a terminal `columns` wide and into a pipe: (terminal lines, pipe lines), stdout then
    stderr; ``between``: called between the two (to clear what the first wrote)."""
    out = {}
    for where, tty in (("terminal", "1"), ("pipe", "0")):
        if where == "pipe" and between:
            between()
        r = tinygpt_inproc(*args, env={**(env or {}), "COLUMNS": str(columns), "TTY_COMPATIBLE": tty})
        assert r.returncode == 0, (r.stdout, r.stderr)
        out[where] = lines_of(r.stdout) + lines_of(r.stderr)
    return out["terminal"], out["pipe"]


def same_words(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\d", "0", text)).strip()  # (a timing may differ between the two runs)


def assert_wrapped_between_words(terminal: list[str], pipe: list[str], columns: int, commands=("try it: ",)) -> int:
    """Every line fits the width (but a single word wider than it, kept whole); every long line of the pipe's
    is on the terminal, broken at spaces only (a word cut in two would read "fo ld"); a command line is whole.
    Returns how many long lines were checked."""
    for ln in terminal:
        assert cell_len(ln) <= columns or " " not in ln.strip() or ln.startswith(commands), (ln, terminal)
    shown = same_words(" ".join(terminal))
    long = [ln for ln in pipe if cell_len(ln) > columns]
    for ln in long:
        if ln.startswith(commands):
            assert ln in terminal, (ln, terminal)  # whole, on one line
        else:
            assert same_words(ln) in shown, (ln, terminal)
    return len(long)


@pytest.fixture
def probed(cache, measured):
    """This machine's probe, cached, with its threads timed on every core (never timed again: its notes and
    choices are the same in both runs)."""
    probe.save({**measured, "threads_free": probe.cores(), "threads_ms": {k: 30.0 / int(k) for k in measured["threads_ms"]}})
    return {"XDG_CACHE_HOME": str(cache.parents[1]), "TINYGPT_PROBE": "1"}


@pytest.mark.parametrize("columns", [80, 120])
def test_bench_notes_wrap_between_words(probed, columns):
    # (--threads: the probe's choice counts the cores free at each run, "1 thread" in one and "2 threads" in the other)
    terminal, pipe = run_both("bench", "--presets", "tiny", "--seconds", "0.2", "--threads", "1", columns=columns, env=probed)
    assert any(ln.startswith("tokens and GFLOP per step") for ln in pipe)  # (the table's note, whole in the pipe)
    assert assert_wrapped_between_words(terminal, pipe, columns) >= 2
    assert not [ln for ln in terminal if cell_len(ln) > columns]


def test_train_says_the_probes_choice_and_its_end_between_words(probed, small_corpus, tmp_path):
    terminal, pipe = run_both("train", small_corpus, "--name", "w", "--models-dir", tmp_path, "--preset", "tiny", "--block-size", "16",
                              "--max-steps", "3", "--eval-iters", "1", "--threads", "1", env=probed,
                              between=lambda: shutil.rmtree(tmp_path / "w"))
    header = next(ln for ln in pipe if ln.startswith("training w: "))
    assert re.search(r"(bf16|fp32) \([^)]* here\)", header), header  # (the probe's reason for the precision)
    assert assert_wrapped_between_words(terminal, pipe, 80) >= 2  # the header and the final line


def test_the_progress_bar_keeps_the_runs_name_and_bar_at_80_columns(probed, small_corpus, tmp_path):
    """At 80 columns the bar's figures took the whole line: "m…  … step 500  loss 1.7317  30,000 tok/s  ETA 00:39
    val 1.9705 (2.843 bits/ch…", the run's name and its bar squeezed to an ellipsis. Figures give way instead."""
    name = "my-shakespeare-run"
    r = tinygpt_inproc("train", small_corpus, "--name", name, "--models-dir", tmp_path, "--preset", "tiny", "--block-size", "16",
                       "--max-steps", "4", "--eval-interval", "2", "--eval-iters", "1", "--threads", "1",
                       env={**probed, "COLUMNS": "80", "TTY_COMPATIBLE": "1"})
    assert r.returncode == 0, r.stderr
    bars = [ln for ln in lines_of(r.stdout) if ln.startswith(name[:8])]  # (each frame of the bar)
    assert bars, r.stdout
    for ln in bars:
        cut = re.search(r"\S…", ln) and not ln.endswith("starting…")  # (a word cut by the ellipsis: "00:…")
        assert cell_len(ln) <= 80 and ln.startswith(f"{name} ━") and not cut, ln
    assert re.search(r"step 4 +val \d\.\d{4}", bars[-1]), bars[-1]


def test_compare_says_the_stage_reached_between_words(tmp_path):
    models = tmp_path / "models"
    make_model(models, "a-run-with-a-longer-name", val_loss=1.6, corpus="tinyshakespeare.txt")
    make_model(models, "b", val_loss=2.2, corpus="tinyshakespeare.txt")
    terminal, pipe = run_both("compare", "a-run-with-a-longer-name", "b", "--models-dir", models)
    assert any("a model on this book shows dialogue structure" in ln for ln in pipe)
    assert assert_wrapped_between_words(terminal, pipe, 80) >= 1


def test_export_wraps_its_note_and_keeps_the_command_to_copy_whole(tmp_path):
    pytest.importorskip("gguf")
    models = tmp_path / "models"
    make_tiny_model(models / "dream", "林黛玉听了, 宝玉笑道: “好妹妹; 你说什么?” 罢了—罢了、好。\n" * 100,
                    pos_encoding="rope", ffn="swiglu", norm="rmsnorm")
    terminal, pipe = run_both("export", "dream", tmp_path / "d.gguf", "--to", "gguf", "--force", "--models-dir", models)
    command = next(ln for ln in pipe if ln.startswith("try it: llama-completion"))
    assert cell_len(command) > 80 and command in terminal  # one line to copy, though wider than the terminal
    assert any(ln.startswith("note: llama.cpp stops at an end-of-text token") for ln in pipe)
    assert assert_wrapped_between_words(terminal, pipe, 80) >= 2


def test_an_indented_line_whose_first_word_is_wider_than_the_terminal_keeps_its_indent_and_no_blank_line():
    """An experiment's "  exp/member: finished, val loss ..." in a terminal narrower than the member's name printed
    an empty line, then the name at the left edge: the break went between the indent and the first word."""
    from io import StringIO

    from rich.console import Console

    from tinygpt_tui.cli.common import prose

    out = StringIO()
    terminal = Console(file=out, force_terminal=True, width=30, color_system=None, highlight=False, soft_wrap=True)
    prose(terminal, "  lesson-positions-10steps/pos_encoding=alibi: finished, val loss 1.234 (whole split)")
    assert out.getvalue().splitlines() == ["  lesson-positions-10steps/pos_encoding=alibi:", "finished, val loss 1.234",
                                           "(whole split)"], out.getvalue()


def test_inspect_s_lens_and_ablation_say_their_sentences_whole_into_a_pipe(tmp_path):
    """`inspect --lens` (and --ablate) printed through a console of its own, which cut every line at 80 columns into a
    pipe: "... if it stopped after each" and "layer" a line apart, where every other command's pipe gets them whole."""
    models = tmp_path / "models"
    make_model(models, "m")
    terminal, pipe = run_both("inspect", "m", "-p", "the honou", "--lens", "--ablate", "--models-dir", models)
    assert any(ln.startswith("Logit lens at position 8: ") and ln.endswith("if it stopped after each layer") for ln in pipe), pipe
    assert any(ln.startswith("What changes the answer: ") and ln.endswith("(-0.69: p halved)") for ln in pipe), pipe
    assert assert_wrapped_between_words(terminal, pipe, 80) >= 2
