"""The command line as a user meets it: real subprocesses, one-line errors with exit code 2."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tinygpt(*args, env=None, cwd=None, timeout=240):
    e = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "tinygpt_tui.cli.main", *map(str, args)], capture_output=True, text=True,
                          env=e, cwd=cwd or ROOT, timeout=timeout)


class _Result:
    def __init__(self, returncode, stdout, stderr, output=""):  # (output: both, in the order written)
        self.returncode, self.stdout, self.stderr, self.output = returncode, stdout, stderr, output


def tinygpt_inproc(*args, env=None):
    """The same command through typer's CliRunner: no new interpreter (and no torch import) per call. sys.argv is
    the command's, as in its own process (a model card records the command as typed)."""
    from typer.testing import CliRunner

    from tinygpt_tui.cli.main import app

    argv = list(map(str, args))
    saved, sys.argv = sys.argv, ["tinygpt", *argv]
    try:
        r = CliRunner().invoke(app, argv, env={"COLUMNS": "200", **(env or {})})
    finally:
        sys.argv = saved
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return _Result(r.exit_code, r.stdout, r.stderr, r.output)


def run_events(stdout: str) -> list[dict]:
    """The run's events `tinygpt train --jsonl` printed, its corpus's preparation ("prepare" records, first) left out."""
    return [e for e in map(json.loads, stdout.splitlines()) if e["event"] != "prepare"]


def assert_one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_corpus):
    """A tiny model trained through `tinygpt train` (the real command, --jsonl events; in this process: a new one
    spends more on its imports than on the training, and test_train_py_is_tinygpt_train starts one)."""
    models = tmp_path_factory.mktemp("cli_models")
    r = tinygpt_inproc("train", small_corpus, "--name", "tiny one", "--models-dir", models, "--preset", "tiny", "--block-size", "32",
                "--max-steps", "40", "--eval-interval", "20", "--eval-iters", "2", "--threads", "1", "--jsonl")
    assert r.returncode == 0, r.stderr
    events = run_events(r.stdout)
    assert events[0]["event"] == "start" and events[-1]["event"] == "finish"
    return models, events


def test_train_writes_a_model_folder(trained):
    models, events = trained
    folder = models / "tiny one"
    assert (folder / "model.safetensors").exists() and (folder / "metrics.jsonl").exists()
    doc = json.loads((folder / "config.json").read_text())
    assert "--max-steps 40" in doc["command"] and doc["command"].startswith("tinygpt train")
    assert doc["figures"]["step"] == 40


def test_models_table(trained):
    models, _ = trained
    r = tinygpt_inproc("models", "--models-dir", models)
    assert r.returncode == 0 and "tiny one" in r.stdout and "0.10M" in r.stdout


def test_generate_streams_and_is_reproducible(trained):
    models, _ = trained
    a = tinygpt("generate", "tiny one", "--prompt", "ROMEO:", "--max-new", "80", "--seed", "3", "--models-dir", models)
    b = tinygpt_inproc("generate", models / "tiny one", "--prompt", "ROMEO:", "--max-new", "80", "--seed", "3")  # (a process of tests)
    assert a.returncode == 0 and a.stdout == b.stdout and a.stdout.startswith("ROMEO:")
    assert len(a.stdout) == len("ROMEO:") + 80 + 1


def test_generate_from_corpus_windows(trained, small_corpus):
    models, _ = trained
    r = tinygpt_inproc("generate", "tiny one", "--corpus", small_corpus, "--split", "val", "--num-samples", "3", "--max-new", "20",
                       "--seed", "1", "--models-dir", models)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("sample") == 3 and len(r.stdout.splitlines()) >= 3


def test_generate_reports_unknown_prompt_chars(trained):
    models, _ = trained
    r = tinygpt_inproc("generate", "tiny one", "--prompt", "héllo €", "--max-new", "5", "--models-dir", models)
    assert r.returncode == 0 and "does not know" in r.stderr and "€" in r.stderr
    # before the text, on stderr (a newcomer's terminal, stdout and stderr in one, must see it first; stdout stays the text)
    first, *_ = r.output.splitlines()
    assert first.startswith("note: the model does not know") and "€" in first and r.stdout.startswith("h"), r.output
    # one prompt for three samples: said once, not before each
    r = tinygpt_inproc("generate", "tiny one", "--prompt", "héllo €", "--max-new", "5", "--num-samples", "3", "--models-dir", models)
    assert r.returncode == 0 and r.stderr.count("does not know") == 1 and r.stderr.count("--- sample") == 3, r.stderr


def test_eval_reproduces_the_card(trained, small_corpus):
    models, events = trained
    r = tinygpt_inproc("eval", "tiny one", "--corpus", small_corpus, "--models-dir", models)
    assert r.returncode == 0, r.stderr
    final = events[-1]["val_loss"]
    assert f"{final:.4f}" in r.stdout and "bits/char" in r.stdout


@pytest.mark.slow
def test_train_says_why_the_probe_chose_its_precision_and_threads(tmp_path, small_corpus, cache, measured, monkeypatch):
    """The header said "on CPU (1 thread), bf16" and not why. Where the machine probe chose them it says so now, in a
    few words beside them (--jsonl: in the start record's "probe"); what the user gave is shown as it was, no more."""
    from tests.conftest import probe_doc
    from tinygpt_tui.engine import probe

    probe.save(probe_doc(measured, fp32_ms=30, bf16_ms=10, one_thread_ms=30, two_threads_ms=15))
    monkeypatch.setattr(probe, "free_cores", lambda: 1)  # two threads were measured faster; one core is free now
    tiny = (small_corpus, "--preset", "tiny", "--block-size", "32", "--max-steps", "2", "--eval-iters", "1", "--models-dir", tmp_path)
    r = tinygpt_inproc("train", *tiny, "--name", "chosen")
    assert r.returncode == 0, r.stderr
    assert f"on CPU (1 thread: 1 of {probe.cores()} cores free), bf16 (measured faster here), " in r.stdout, r.stdout
    r = tinygpt_inproc("train", *tiny, "--name", "given", "--threads", "1", "--dtype", "bf16")
    assert r.returncode == 0 and "on CPU (1 thread), bf16, " in r.stdout, r.stdout + r.stderr
    r = tinygpt_inproc("train", *tiny, "--name", "json", "--jsonl")
    assert r.returncode == 0, r.stderr
    events = run_events(r.stdout)  # (every line JSON)
    assert events[0]["event"] == "start" and events[0]["probe"] == {
        "threads": {"chose": 1, "why": f"1 of {probe.cores()} cores free"}, "dtype": {"chose": "bf16", "why": "measured faster here"}}
    r = tinygpt_inproc("train", *tiny, "--name", "json-given", "--jsonl", "--threads", "1", "--dtype", "fp32")
    assert r.returncode == 0 and "probe" not in run_events(r.stdout)[0], r.stderr


def test_train_py_is_tinygpt_train(tmp_path, small_corpus, monkeypatch, capsys):
    """The script run as `python train.py ...` runs it (in this process: test_help_fits_80_columns_with_flags_shown_as_flags
    starts train.py in a process of its own)."""
    import runpy

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["train.py", *map(str, (small_corpus, "--name", "viascript", "--models-dir", tmp_path,
                        "--preset", "tiny", "--block-size", "16", "--max-steps", "5", "--eval-interval", "5", "--eval-iters", "1",
                        "--threads", "1", "--jsonl"))])
    with pytest.raises(SystemExit) as end:
        runpy.run_path("train.py", run_name="__main__")
    assert end.value.code in (0, None), capsys.readouterr().err
    assert [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()][-1] == "finish"
    doc = json.loads((tmp_path / "viascript" / "config.json").read_text())
    assert doc["command"].startswith("python train.py")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "/nonexistent/book.txt", "--name", "x"], "not found"),
        (["train", "{empty}", "--name", "x"], "empty"),
        (["train", "{binary}", "--name", "x"], "binary"),
        (["train", "{latin1}", "--name", "x"], "UTF-8"),
        (["train", "{short}", "--name", "x"], "too short"),
        (["train", "{small}", "--name", "x", "--n-embd", "30", "--n-head", "4"], "divisible"),
        (["train", "{small}", "--name", "x", "--block-size", "0"], "block"),
        (["train", "{small}", "--name", "x", "--lr", "-0.1"], "lr"),
        (["generate", "nope-model"], "model not found"),
        (["generate", "{model}", "--temperature", "-1"], "temperature"),
        (["generate", "{model}", "--top-k", "0"], "top-k"),
        (["eval", "{broken}"], "config.json"),
        (["corpus", "fetch", "nosuchcorpus"], "unknown corpus"),
        (["corpus", "fetch", "shakespeare", "--from", "{small}"], "sha256"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, small_corpus, trained, args, needle):
    models, _ = trained
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 50)
    (tmp_path / "latin1.txt").write_bytes("déjà vu ".encode("latin-1") * 200)
    (tmp_path / "short.txt").write_text("To be or not to be. " * 20)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{oops")
    subs = {"{empty}": tmp_path / "empty.txt", "{binary}": tmp_path / "binary.txt", "{latin1}": tmp_path / "latin1.txt",
            "{short}": tmp_path / "short.txt", "{small}": small_corpus, "{model}": models / "tiny one", "{broken}": broken}
    argv = [str(subs.get(a, a)) for a in args]
    r = tinygpt_inproc(*argv, "--models-dir", tmp_path / "m") if argv[0] in ("train",) else tinygpt_inproc(*argv)
    assert_one_line_error(r, needle)


def test_corpus_fetch_from_local_copy(tmp_path):
    from tinygpt_tui.engine.corpora import catalog

    from tests.conftest import shakespeare_path

    env = {"TINYGPT_CORPORA_DIR": str(tmp_path)}
    r = tinygpt_inproc("corpus", "fetch", "shakespeare", "--from", shakespeare_path(), env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / catalog()["shakespeare"].file).read_bytes() == shakespeare_path().read_bytes()
    listing = tinygpt_inproc("corpus", "list", env=env)
    assert "ready" in listing.stdout


def test_a_catalog_corpus_not_fetched_says_how_to_fetch_it_not_train_from(tmp_path):
    """`--from` on `train` continues a model: the hint names the command `--from FILE` belongs to."""
    env = {"TINYGPT_CORPORA_DIR": str(tmp_path / "corpora"), "TINYGPT_MODELS_DIR": str(tmp_path / "models")}
    r = tinygpt_inproc("train", "shakespeare", "--name", "x", "--max-steps", "1", env=env)
    assert_one_line_error(r, "not fetched yet", "`tinygpt corpus fetch shakespeare` downloads it", "add `--from FILE`")
    assert not (tmp_path / "models" / "x").exists()


def test_eval_when_the_recorded_corpus_is_gone(trained, tmp_path):
    """A folder from another machine: its corpus path does not exist here; eval says what to do."""
    import shutil

    models, _ = trained
    moved = tmp_path / "moved"
    shutil.copytree(models / "tiny one", moved)
    doc = json.loads((moved / "config.json").read_text())
    doc["corpus"]["path"] = "/elsewhere/small.txt"
    (moved / "config.json").write_text(json.dumps(doc))
    assert_one_line_error(tinygpt_inproc("eval", moved), "not on this machine", "--corpus")


# ------------------------------------------------------------------ issue 16: what a newcomer meets
def test_every_command_a_model_card_prints_runs_as_printed(tmp_path, small_corpus):
    """Cards of models trained on an added corpus, a file path, "my novel.md", a folder and a glob: every
    `tinygpt ...` command in them runs (the train command again, once the folder is gone). Read as a shell
    reads them (shlex) and run in this process (a process each, torch imported each time, took 142 s on a busy
    Zen 3); the command a card records from a process of its own: test_a_resumed_run_s_card_keeps_the_command_that_started_it."""
    import re
    import shlex
    import shutil

    env = {"TINYGPT_MODELS_DIR": str(tmp_path / "models"), "TINYGPT_CORPORA_DIR": str(tmp_path / "corpora")}
    assert tinygpt_inproc("corpus", "add", small_corpus, "--name", "mybook", env=env).returncode == 0
    tiny = ["--preset", "tiny", "--block-size", "16", "--max-steps", "4", "--eval-interval", "4", "--eval-iters", "1", "--threads", "1"]
    (tmp_path / "books").mkdir()
    spaced, _ = shutil.copy(small_corpus, tmp_path / "my novel.md"), shutil.copy(small_corpus, tmp_path / "books" / "a.txt")
    for corpus, name in (("mybook", "added"), (small_corpus, "bypath"), (spaced, "spaced"), (tmp_path / "books", "folder"),
                         (str(tmp_path / "books" / "*.txt"), "glob")):
        r = tinygpt_inproc("train", corpus, "--name", name, *tiny, "--jsonl", env=env)
        assert r.returncode == 0, r.stderr
        card = (tmp_path / "models" / name / "README.md").read_text(encoding="utf-8")
        commands = re.findall(r"^(tinygpt .+)$", card, re.M) + re.findall(r"`(tinygpt [^`]+)`", card)
        assert any(c.startswith("tinygpt train") for c in commands) and any(c.startswith("tinygpt eval") for c in commands)
        shutil.rmtree(tmp_path / "models" / name)  # the train command makes the folder again
        for command in sorted(commands, key=lambda c: not c.startswith("tinygpt train")):
            r = tinygpt_inproc(*shlex.split(command)[1:], env=env)
            assert r.returncode == 0, (command, r.stderr)


def test_a_run_on_a_folder_or_a_glob_says_which_files_it_reads(tmp_path, small_corpus):
    """A newcomer's folder: `tinygpt train FOLDER` named none of its files, and left out notes.md without a word.
    One line on stderr (stdout stays the --jsonl events); a glob's matches are all read, whatever their names."""
    books = tmp_path / "books"
    books.mkdir()
    text = small_corpus.read_text(encoding="utf-8")[:20_000]
    for name in ("a.txt", "b.txt", "notes.md", "c.text"):
        (books / name).write_text(text, encoding="utf-8")
    tiny = ["--preset", "tiny", "--block-size", "16", "--max-steps", "1", "--eval-iters", "1", "--threads", "1", "--sample-chars", "0"]
    r = tinygpt_inproc("train", books, "--name", "f", "--models-dir", tmp_path / "m", *tiny, "--jsonl")
    assert r.returncode == 0, r.stderr
    assert f"corpus {books}: reads 2 .txt file(s); left out, not .txt: c.text, notes.md" in r.stderr, r.stderr
    assert run_events(r.stdout)[0]["event"] == "start"
    r = tinygpt_inproc("train", books / "*", "--name", "g", "--models-dir", tmp_path / "m", *tiny, "--jsonl")
    assert r.returncode == 0 and f"corpus {books / '*'}: reads 4 file(s) that match" in r.stderr, r.stderr
    r = tinygpt_inproc("train", books / "a.txt", "--name", "h", "--models-dir", tmp_path / "m", *tiny, "--jsonl")
    assert r.returncode == 0 and "reads" not in r.stderr, r.stderr  # (one file: nothing to say)


def test_the_card_s_command_keeps_options_typed_before_train(tmp_path, small_corpus):
    """`tinygpt --models-dir DIR train ...` (as the README's --models-dir reads): the card's command is that
    one, not `tinygpt train --models-dir DIR train ...`, and it runs as printed into the same folder."""
    import re
    import shlex

    models = tmp_path / "elsewhere"
    tiny = ["--preset", "tiny", "--block-size", "16", "--max-steps", "2", "--eval-iters", "1", "--threads", "1", "--sample-chars", "0"]
    r = tinygpt_inproc("--models-dir", models, "train", small_corpus, "--name", "mine", *tiny, "--jsonl")
    assert r.returncode == 0, r.stderr
    command = re.search(r"^(tinygpt .+ train .+)$", (models / "mine" / "README.md").read_text(encoding="utf-8"), re.M)[1]
    assert shlex.split(command)[:4] == ["tinygpt", "--models-dir", str(models), "train"]
    shutil.rmtree(models / "mine")
    r = tinygpt_inproc(*shlex.split(command)[1:])
    assert r.returncode == 0, (command, r.stderr)
    assert json.loads((models / "mine" / "config.json").read_text())["figures"]["step"] == 2
    # and the card's eval line finds the model there too (it named the model alone: "model not found" in ./models)
    command = re.search(r"`(tinygpt eval [^`]+)`", (models / "mine" / "README.md").read_text(encoding="utf-8"))[1]
    assert tinygpt_inproc(*shlex.split(command)[1:]).returncode == 0, command


def test_a_card_s_commands_find_the_model_where_it_was_written(tmp_path, small_corpus, monkeypatch):
    """A model trained into --models-dir D: its card said `tinygpt eval mine --corpus ...`, which looked in ./models."""
    import re
    import shlex

    monkeypatch.chdir(tmp_path)  # (./models is not D)
    monkeypatch.delenv("TINYGPT_MODELS_DIR", raising=False)  # (and back as it was after: the global --models-dir sets it)
    models = tmp_path / "else where"
    tiny = ["--preset", "tiny", "--block-size", "16", "--max-steps", "2", "--eval-iters", "1", "--threads", "1", "--sample-chars", "0"]
    r = tinygpt_inproc("--models-dir", models, "train", small_corpus, "--name", "mine", *tiny, "--jsonl")
    assert r.returncode == 0, r.stderr
    commands = [c for c in re.findall(r"`(tinygpt [^`]+)`", (models / "mine" / "README.md").read_text(encoding="utf-8"))]
    assert any(c.startswith("tinygpt eval") for c in commands), commands
    for command in commands:  # as a new shell runs them: no $TINYGPT_MODELS_DIR
        r = tinygpt_inproc(*shlex.split(command)[1:], env={"TINYGPT_MODELS_DIR": None})
        assert r.returncode == 0, (command, r.stderr)


CHOICES = {  # an option of fixed choices, the command that takes it, and its choices as the error must list them
    "--to": (["export", "shakespeare", "OUT"], "hf, gguf"),
    "--dtype": (["train", "CORPUS", "--name", "m"], "auto, fp32, bf16, fp16"),
    "--device": (["train", "CORPUS", "--name", "m"], "auto, cpu, cuda, mps"),
    "--preset": (["train", "CORPUS", "--name", "m"], "auto, 1min, 5min, tiny, small, medium, large, nanogpt"),
    "--pos": (["train", "CORPUS", "--name", "m"], "learned, sinusoidal, rope, alibi, none"),
    "--tokenizer": (["train", "CORPUS", "--name", "m"], "char, bpe"),
    "--optimizer": (["train", "CORPUS", "--name", "m"], "muon, adamw"),
    "--schedule": (["train", "CORPUS", "--name", "m"], "cosine, wsd"),
    "--ffn": (["train", "CORPUS", "--name", "m"], "gelu, swiglu"),
    "--norm": (["train", "CORPUS", "--name", "m"], "layernorm, rmsnorm"),
}


@pytest.mark.parametrize("option", list(CHOICES))
def test_a_bad_choice_is_one_error_line_naming_the_option_and_its_choices(option, small_corpus, tmp_path):
    """`tinygpt export M OUT --to bogus` said "Invalid value for '--to': Value error, 'bogus' is not one of 'hf', 'gguf'.
    (see ... --help)"; --device, --dtype and --preset said "unknown device 'bogus'; choose one of ...", naming no option."""
    args, choices = CHOICES[option]
    args = [{"CORPUS": small_corpus, "OUT": tmp_path / "out"}.get(a, a) for a in args]
    r = tinygpt_inproc(*args, option, "bogus", "--max-steps", "1", "--models-dir", ROOT / "models") if args[0] == "train" else \
        tinygpt_inproc(*args, option, "bogus", "--models-dir", ROOT / "models")
    assert_one_line_error(r)
    assert r.stderr.strip() == f"error: {option} must be one of {choices}, got 'bogus'", r.stderr
    assert not (tmp_path / "out").exists()
    for command in (["generate", "-n", "1"], ["eval", "--corpus", small_corpus], ["inspect", "-p", "the"]) if option == "--device" else ():
        r = tinygpt_inproc(command[0], "shakespeare", *command[1:], "--device", "bogus", "--models-dir", ROOT / "models")
        assert r.returncode == 2 and r.stderr.strip() == "error: --device must be one of auto, cpu, cuda, mps, got 'bogus'", (command, r.stderr)


def test_corpus_not_found_lists_the_added_corpora(tmp_path, small_corpus):
    env = {"TINYGPT_CORPORA_DIR": str(tmp_path)}
    assert tinygpt_inproc("corpus", "add", small_corpus, "--name", "mybook", env=env).returncode == 0
    r = tinygpt_inproc("train", "nosuchbook", "--name", "x", "--models-dir", tmp_path / "m", env=env)
    assert_one_line_error(r, "corpus not found", "mybook", "shakespeare")
    assert r.stdout == ""  # a refused run writes nothing to stdout, not even a blank line


def test_the_command_corpus_add_prints_trains_on_the_added_corpus(tmp_path, small_corpus):
    """A book named with a space or a glob's brackets: the printed `tinygpt train` runs as printed. (A leading dash,
    once printed after --, is refused now, as for a model's name: test_cli_hostile's test of names a command misreads.)"""
    import re
    import shlex

    env = {"TINYGPT_CORPORA_DIR": str(tmp_path / "corpora"), "TINYGPT_MODELS_DIR": str(tmp_path / "models")}
    tiny = ["--preset", "tiny", "--block-size", "16", "--max-steps", "1", "--eval-iters", "1", "--threads", "1", "--sample-chars", "0"]
    for i, name in enumerate(("my book", "book [draft]")):
        r = tinygpt_inproc("corpus", "add", small_corpus, "--name", name, env=env)
        assert r.returncode == 0, r.stderr
        command = shlex.split(re.search(r"`(tinygpt train [^`]+)`", r.stdout)[1].replace("NAME", f"m{i}"))
        r = tinygpt_inproc(command[1], *tiny, *command[2:], env=env)
        assert r.returncode == 0, (command, r.stderr)
        assert json.loads((tmp_path / "models" / f"m{i}" / "config.json").read_text())["corpus"]["name"] == name


@pytest.mark.parametrize("bad", [["missing.txt"], ["small.txt", "--seed", str(2**70)]])
def test_a_refused_train_writes_nothing_to_stdout(tmp_path, small_corpus, bad):
    shutil.copy(small_corpus, tmp_path / "small.txt")
    r = tinygpt("train", tmp_path / bad[0], *bad[1:], "--name", "x", "--models-dir", tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""  # not even a blank line


@pytest.mark.slow
def test_the_last_progress_line_is_the_end_of_the_run(tmp_path, small_corpus):
    r = tinygpt("train", small_corpus, "--name", "p", "--models-dir", tmp_path, "--preset", "tiny", "--block-size", "16",
                "--max-steps", "25", "--eval-interval", "10", "--eval-iters", "1", "--threads", "1")
    assert r.returncode == 0, r.stderr
    final = json.loads((tmp_path / "p" / "config.json").read_text())["figures"]
    bar = [ln for ln in r.stdout.splitlines() if "━" in ln]
    assert bar and "step 25 " in bar[-1] and f"val {final['val_loss']:.4f}" in bar[-1], bar


@pytest.mark.parametrize("args", [["generate", "m", "--promt", "x"], ["--modles-dir", "x"], ["corpus", "add"], ["inspect", "m", "-p"]])
def test_a_mistyped_command_line_is_one_error_line(args):
    r = tinygpt(*args)
    assert_one_line_error(r)
    assert "╭" not in r.stderr and "Usage" not in r.stderr


def test_a_missing_choice_option_reads_as_one_sentence():
    """click's message lists the choices one a line; the error line reads them as words, not \\n\\t."""
    r = tinygpt_inproc("export", "m", "out")
    assert_one_line_error(r, "--to", "hf, gguf")
    assert "\\n" not in r.stderr and "\\t" not in r.stderr


@pytest.mark.parametrize("command", ["models", "runs"])
def test_a_listing_of_a_models_dir_that_is_missing_or_a_file_says_so(tmp_path, command):
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(tinygpt_inproc(command, "--models-dir", tmp_path / "afile"), "not a folder")
    assert_one_line_error(tinygpt_inproc(command, "--models-dir", tmp_path / "nope"), "no such folder")
    (tmp_path / "empty").mkdir()
    if command == "models":  # the app, opened on a file for its models: said before it opens
        assert_one_line_error(tinygpt_inproc("--models-dir", tmp_path / "afile"), "not a folder")
    r = tinygpt_inproc(command, "--models-dir", tmp_path / "empty")
    assert r.returncode == 0 and "no " in r.stdout  # a folder with nothing in it yet is not a mistake


@pytest.mark.parametrize("how", ["option", "option=", "env"])
def test_the_app_on_a_models_dir_that_is_a_file_is_refused_by_the_real_entry_point(tmp_path, how):
    """`tinygpt --models-dir FILE` opens the app without the command line (its fast path), which skipped the
    check: the app opened saying "No models yet in FILE". Refused as the command line refuses it elsewhere."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    args = {"option": ["--models-dir", str(afile)], "option=": [f"--models-dir={afile}"], "env": []}[how]
    env = dict(os.environ, COLUMNS="200", **({"TINYGPT_MODELS_DIR": str(afile)} if how == "env" else {}))
    r = subprocess.run([sys.executable, "-m", "tinygpt_tui", *args], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert_one_line_error(r, "not a folder", str(afile))
    assert afile.read_text() == "x"
    # a folder under that file: the app said "No models yet" until a run failed to write there
    under = str(afile / "models")
    args = {"option": ["--models-dir", under], "option=": [f"--models-dir={under}"], "env": []}[how]
    env = dict(env, **({"TINYGPT_MODELS_DIR": under} if how == "env" else {}))
    r = subprocess.run([sys.executable, "-m", "tinygpt_tui", *args], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert_one_line_error(r, "not a folder", f"{afile} is a file")


def test_help_fits_80_columns_with_flags_shown_as_flags():
    for args in ([], ["train"], ["generate"], ["eval"], ["inspect"], ["convert"], ["models"], ["corpus"], ["corpus", "add"],
                 ["export"], ["import"]):
        r = tinygpt_inproc(*args, "-h", env={"COLUMNS": "80"})
        assert r.returncode == 0 and r.stdout.startswith("Usage:"), (args, r.stderr)
        assert "<bool>" not in r.stdout and "…" not in r.stdout, args
        assert not any(line.endswith("...") for line in r.stdout.split("Commands:")[-1].splitlines()), args
        assert max(len(line) for line in r.stdout.splitlines()) <= 80, args
    assert "--checkpoint-activations " in tinygpt_inproc("train", "--help", env={"COLUMNS": "80"}).stdout
    r = subprocess.run([sys.executable, "train.py", "--help"], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "80"})
    assert r.returncode == 0 and r.stdout.startswith("Usage: train.py [OPTIONS]")



def test_a_command_group_alone_shows_its_help_not_one_squashed_error_line():
    """`tinygpt corpus` was 'error: Usage: tinygpt corpus [OPTIONS] COMMAND [ARGS]... List, fetch ... Commands: list
    The catalog, ...' on one line, exit 2: a learner asking what it offers now gets the help, as -h shows it."""
    r = tinygpt_inproc("corpus", env={"COLUMNS": "80"})
    assert r.returncode == 0 and "error" not in r.stderr, (r.stdout, r.stderr)
    assert r.stdout == tinygpt_inproc("corpus", "-h", env={"COLUMNS": "80"}).stdout
    assert "\n  fetch " in r.stdout and "\n  add " in r.stdout

def test_flags_mean_the_same_everywhere():
    for command in ("generate", "inspect"):
        assert "-k, --top-k" in tinygpt_inproc(command, "--help").stdout
    for command in ("train", "generate", "eval", "inspect"):
        help_text = " ".join(tinygpt_inproc(command, "--help").stdout.split())
        assert "--device <str>" in help_text and "[default: auto]" in help_text.split("--device <str>")[1].split("--")[0], command


def test_generate_refuses_a_negative_prompt_length(trained, small_corpus):
    models, _ = trained
    r = tinygpt_inproc("generate", "tiny one", "--corpus", small_corpus, "--prompt-chars", "-5", "--models-dir", models)
    assert_one_line_error(r, "--prompt-chars")


def test_a_folder_name_with_a_newline_is_one_escaped_line(tmp_path, small_corpus):
    from conftest import make_tiny_model

    make_tiny_model(tmp_path / "two\nlines", small_corpus.read_text(encoding="utf-8"))
    r = tinygpt_inproc("models", "--models-dir", tmp_path)
    assert r.returncode == 0 and "two\\nlines" in r.stdout
    assert not any(line.strip("│ ").startswith("lines") for line in r.stdout.splitlines())


def test_inspect_bars_have_a_space_and_a_percent_sign(trained):
    import re

    models, _ = trained
    r = tinygpt_inproc("inspect", "tiny one", "-p", "ROMEO:", "-t", "0.8", "-k", "3", "--models-dir", models)
    assert r.returncode == 0, r.stderr
    bars = [ln for ln in r.stdout.splitlines() if "T=1" in ln]
    assert len(bars) == 3 and all(re.search(r"[█▉▊▋▌▍▎▏ ] +\d+\.\d\d%  T=1 +\d+\.\d%$", ln) for ln in bars), bars


def test_inspect_quotes_the_query_character_in_its_first_line(trained):
    """After "ROMEO " the first line read "position 5 · · temperature 1": the space, drawn as ·, looked like
    one more separator. It is quoted as it is, as the app's inspector title does."""
    models, _ = trained
    r = tinygpt_inproc("inspect", "tiny one", "-p", "ROMEO ", "-k", "3", "--models-dir", models)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].endswith('· position 5: " " · temperature 1'), r.stdout.splitlines()[0]
    r = tinygpt_inproc("inspect", "tiny one", "-p", "ROMEO\n", "-k", "3", "--models-dir", models)
    assert r.stdout.splitlines()[0].endswith("· position 5: ⏎ · temperature 1"), r.stdout.splitlines()[0]
    # and so is a ranked one ("asked about: · ranks #25" read as a separator too)
    r = tinygpt_inproc("inspect", "tiny one", "-p", "ROMEO ", "--rank-of", " ", "--position", "4", "--models-dir", models)
    lines = r.stdout.splitlines()
    assert any(ln.startswith('next in the context: " " ranks #') for ln in lines), r.stdout
    assert any(ln.startswith('asked about: " " ranks #') for ln in lines), r.stdout


def test_inspect_heads_on_a_corpus_not_found_does_not_ask_for_the_option_given(trained):
    """README's `tinygpt inspect shakespeare --heads --corpus FILE`, typed as is, ended its error with
    "(give --corpus FILE)", though --corpus FILE was given."""
    models, _ = trained
    r = tinygpt_inproc("inspect", "tiny one", "--heads", "--corpus", "FILE", "--models-dir", models)
    assert_one_line_error(r, "corpus not found: FILE")
    assert "give --corpus" not in r.stderr, r.stderr


def test_inspect_json_escapes_terminal_controls(trained):
    import unicodedata

    models, _ = trained
    r = tinygpt_inproc("inspect", "tiny one", "-p", "ROM\x9b2J\u202eEO\x7f", "--json", "--models-dir", models)
    assert r.returncode == 0, r.stderr
    assert not [c for c in r.stdout.rstrip("\n") if unicodedata.category(c) in ("Cc", "Cf")]
    assert {"\x9b", "\u202e", "\x7f"} <= set(json.loads(r.stdout)["dropped"])


def test_git_ignores_trained_models_but_not_the_shipped_ones():
    paths = ["models/mine/config.json", "models/mine/model.safetensors", "models/shakespeare/config.json",
             "models/hongloumeng/model.safetensors", "models/shakespeare/train_state.safetensors"]
    r = subprocess.run(["git", "check-ignore", "--no-index", *paths], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.split() == ["models/mine/config.json", "models/mine/model.safetensors", "models/shakespeare/train_state.safetensors"]


def test_the_top_level_models_dir_applies_to_every_command(trained, tmp_path, monkeypatch):
    models, _ = trained
    monkeypatch.delenv("TINYGPT_MODELS_DIR", raising=False)  # (restored after: the command sets it for its subcommand)
    monkeypatch.chdir(tmp_path)  # no ./models here
    r = tinygpt_inproc("--models-dir", models, "models")
    assert r.returncode == 0 and "tiny one" in r.stdout, r.stdout
    r = tinygpt_inproc("--models-dir", models, "generate", "tiny one", "--prompt", "RO", "--max-new", "5")
    assert r.returncode == 0, r.stderr
    r = tinygpt_inproc("--models-dir", tmp_path / "elsewhere", "models", "--models-dir", models)  # the subcommand's own wins
    assert "tiny one" in r.stdout


def test_corpus_add_refuses_what_it_cannot_keep_or_train(tmp_path, small_corpus):
    """A catalog name (or its file's) is not shadowed, an added corpus is replaced only with --force, and a
    text train would refuse (one distinct character) is refused at add."""
    env = {"TINYGPT_CORPORA_DIR": str(tmp_path / "c")}
    other = tmp_path / "other.txt"
    other.write_text("some other text\n" * 50)
    for name in ("shakespeare", "tinyshakespeare"):
        assert_one_line_error(tinygpt_inproc("corpus", "add", small_corpus, "--name", name, env=env), "catalog")
    assert tinygpt_inproc("corpus", "add", small_corpus, "--name", "mine", env=env).returncode == 0
    assert_one_line_error(tinygpt_inproc("corpus", "add", other, "--name", "mine", env=env), "--force")
    assert (tmp_path / "c" / "mine.txt").read_bytes() == small_corpus.read_bytes()
    assert tinygpt_inproc("corpus", "add", other, "--name", "mine", "--force", env=env).returncode == 0
    assert (tmp_path / "c" / "mine.txt").read_bytes() == other.read_bytes()
    (tmp_path / "a.txt").write_text("a" * 5000)
    assert_one_line_error(tinygpt_inproc("corpus", "add", tmp_path / "a.txt", env=env), "one distinct character")
    assert not (tmp_path / "c" / "a.txt").exists() and not (tmp_path / "c" / "shakespeare.txt").exists()


def test_corpus_add_leaves_out_project_gutenbergs_header_and_licence(tmp_path, small_corpus):
    """A book from Project Gutenberg was added whole: its header and its licence (legal English, 20,000 characters in
    a real one) were trained on as part of the book. Added, it is the book alone, said with what was left out; --whole
    keeps the file as it is; a text without the project's lines is copied byte for byte; adding it again is no clash."""
    env = {"TINYGPT_CORPORA_DIR": str(tmp_path / "c")}
    book = small_corpus.read_text(encoding="utf-8")[:20_000]
    pg = tmp_path / "pg1513.txt"
    pg.write_bytes(("\ufeffThe Project Gutenberg eBook of Romeo and Juliet\r\n\r\nThis ebook is for the use of anyone.\r\n"
                    "*** START OF THE PROJECT GUTENBERG EBOOK ROMEO AND JULIET ***\r\n\r\n" + book.replace("\n", "\r\n")
                    + "\r\n\r\n*** END OF THE PROJECT GUTENBERG EBOOK ROMEO AND JULIET ***\r\n"
                    + "Section 1. General Terms of Use and Redistributing Project Gutenberg electronic works\r\n" * 40).encode("utf-8"))
    for _ in range(2):
        r = tinygpt_inproc("corpus", "add", pg, env=env)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "c" / "pg1513.txt").read_text(encoding="utf-8") == book.strip("\n") + "\n"
        assert "left out Project Gutenberg's header and licence" in r.stdout and "--whole" in r.stdout
    r = tinygpt_inproc("corpus", "add", pg, "--name", "whole", "--whole", env=env)
    assert r.returncode == 0 and "left out" not in r.stdout and (tmp_path / "c" / "whole.txt").read_bytes() == pg.read_bytes()
    r = tinygpt_inproc("corpus", "add", small_corpus, "--name", "plain", env=env)
    assert "left out" not in r.stdout and (tmp_path / "c" / "plain.txt").read_bytes() == small_corpus.read_bytes()
    # trained on where it is, as downloaded: said, with the command that adds the book alone (and not for the book added)
    tiny = ["--preset", "tiny", "--block-size", "16", "--max-steps", "1", "--eval-iters", "1", "--sample-chars", "0", "--threads", "1"]
    r = tinygpt_inproc("train", pg, "--name", "asis", "--models-dir", tmp_path / "m", *tiny, env=env)
    assert r.returncode == 0 and f"pg1513.txt holds Project Gutenberg's header and licence" in r.stderr, r.stderr
    assert f"tinygpt corpus add {pg}" in r.stderr
    r = tinygpt_inproc("train", "pg1513", "--name", "added", "--models-dir", tmp_path / "m", *tiny, env=env)
    assert r.returncode == 0 and "Gutenberg" not in r.stderr, r.stderr


@pytest.mark.parametrize("start,end", [
    # the licence's END line quoted in the header before START: the first END was before START, so the book kept the licence
    ("*** END OF THE PROJECT GUTENBERG EBOOK X ***\n(header)\n*** START OF THE PROJECT GUTENBERG EBOOK X ***",
     "*** END OF THE PROJECT GUTENBERG EBOOK X ***"),
    ("***  START  OF THE PROJECT GUTENBERG EBOOK X  ***", "***  END OF  THE PROJECT GUTENBERG EBOOK X ***"),  # doubled spaces
    ("  *** Start of the Project Gutenberg eBook X ***", "  *** End of the Project Gutenberg eBook X ***"),  # indented, odd case
    ("*** START OF THIS PROJECT GUTENBERG ETEXT X ***", "*** END OF THIS PROJECT GUTENBERG ETEXT X ***"),  # an older book's
    # an older book's last line before END: "End of the Project Gutenberg EBook of X" was kept as the book's last line
    ("*** START OF THIS PROJECT GUTENBERG EBOOK X ***", "End of the Project Gutenberg EBook of X, by Y\n\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***"),
], ids=["end-before-start", "spaces", "indented", "etext", "end-of-line"])
def test_a_project_gutenberg_book_is_found_between_its_lines_as_real_files_write_them(start, end):
    from tinygpt_tui.engine.corpora import gutenberg_book

    text = f"The Project Gutenberg eBook of X\n\n{start}\n\nThe book.\nIts end.\n\n{end}\nSection 1. The licence.\n"
    assert gutenberg_book(text) == "The book.\nIts end.\n"


def test_an_html_page_saved_as_txt_is_said_to_be_one_when_added_and_trained_on(tmp_path, small_corpus):
    """A web page saved as book.txt was trained on, tags and all, without a word (a newcomer audit): it is still a
    corpus, but `corpus add` and `train` say what it is and how to get its text alone; a plain text says nothing."""
    env = {"TINYGPT_CORPORA_DIR": str(tmp_path / "c")}
    page = tmp_path / "book.txt"
    page.write_text("\ufeff<!-- saved from url=(0022)http://example.org/ -->\n<!DOCTYPE html>\n<html><body>\n"
                    + "".join(f"<p>{line}</p>\n" for line in small_corpus.read_text(encoding="utf-8")[:20_000].splitlines())
                    + "</body></html>\n", encoding="utf-8")
    r = tinygpt_inproc("corpus", "add", page, env=env)
    assert r.returncode == 0 and "note: book.txt is an HTML page: its tags are trained on with its text" in r.stdout, r.stdout
    tiny = ["--preset", "tiny", "--block-size", "16", "--max-steps", "1", "--eval-iters", "1", "--sample-chars", "0", "--threads", "1"]
    for name, corpus in (("here", page), ("added", "book")):  # (where it is, and added: the tags are in both)
        r = tinygpt_inproc("train", corpus, "--name", name, "--models-dir", tmp_path / "m", *tiny, env=env)
        assert r.returncode == 0 and "is an HTML page" in r.stderr, r.stderr
    r = tinygpt_inproc("corpus", "add", small_corpus, "--name", "plain", env=env)
    assert "HTML" not in r.stdout
    r = tinygpt_inproc("train", small_corpus, "--name", "plain", "--models-dir", tmp_path / "m", *tiny, env=env)
    assert r.returncode == 0 and "HTML" not in r.stderr and "Gutenberg" not in r.stderr


def test_corpus_add_on_a_full_disk_names_the_file_and_keeps_the_one_there(tmp_path, small_corpus):
    """Writes past a file-size limit fail as a full disk would: the error named no file ("error: File
    too large"); a corpus added before stays whole, and one added is readable as any new file."""
    import resource
    import signal

    env = {"TINYGPT_CORPORA_DIR": str(tmp_path / "c")}
    small = tmp_path / "small.txt"
    small.write_bytes(small_corpus.read_bytes()[:5000])
    assert tinygpt_inproc("corpus", "add", small, "--name", "mine", env=env).returncode == 0
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "c" / "mine.txt").stat().st_mode & 0o777 == 0o666 & ~mask  # (not mkstemp's 0600)

    def limit():  # in the child: a write past 20 kB fails with EFBIG instead of killing it with SIGXFSZ
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    r = subprocess.run([sys.executable, "-m", "tinygpt_tui.cli.main", "corpus", "add", str(small_corpus), "--name", "mine",
                        "--force"], capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT, preexec_fn=limit,
                       timeout=120)
    assert_one_line_error(r, f"cannot write {tmp_path / 'c' / 'mine.txt'}")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["mine.txt"]  # no temporary file left
    assert (tmp_path / "c" / "mine.txt").read_bytes() == small.read_bytes()


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc/self/mem (a read there is EIO)")
@pytest.mark.parametrize("args", [("corpus", "add", "/proc/self/mem"),
                                  ("corpus", "fetch", "shakespeare", "--from", "/proc/self/mem")])
def test_a_corpus_file_that_fails_to_read_is_named_as_the_file_not_read(tmp_path, args):
    """A read error (EIO here: /proc/self/mem at offset 0) names the source file, not corpora/ as unwritable."""
    r = tinygpt_inproc(*args, env={"TINYGPT_CORPORA_DIR": str(tmp_path / "c")})
    assert_one_line_error(r, "cannot read", "/proc/self/mem")
    assert "cannot write" not in r.stderr
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_a_corpus_added_with_a_name_ending_in_txt_is_found_by_that_name(tmp_path, small_corpus):
    env = {"TINYGPT_CORPORA_DIR": str(tmp_path / "c")}
    assert tinygpt_inproc("corpus", "add", small_corpus, "--name", "mine.txt", env=env).returncode == 0
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["mine.txt"]
    for name in ("mine.txt", "mine"):
        r = tinygpt_inproc("corpus", "prepare", name, env=env)
        assert r.returncode == 0 and "mine: 1 file(s)" in r.stdout, r.stderr
    for blank in ("   ", ".txt"):  # (a model's name may not be blank either)
        assert_one_line_error(tinygpt_inproc("corpus", "add", small_corpus, "--name", blank, env=env), "bad corpus name")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["mine.txt"]


def test_models_shows_a_run_status_as_its_own_and_every_row_on_one_line(trained, tmp_path):
    from tinygpt_tui.engine import folder as ckpt

    models = tmp_path / "m"
    shutil.copytree(trained[0] / "tiny one", models / "ok")
    shutil.copytree(trained[0] / "tiny one", models / "bad")
    (models / "bad" / "config.json").write_text((models / "bad" / "config.json").read_text().replace('"n_embd": ', '"n_embd": 1'))
    (models / "dead").mkdir()
    (models / "dead" / ".lock").write_text("123")
    lock = ckpt.FolderLock(models / "live")
    try:
        r = tinygpt_inproc("models", "--models-dir", models, env={"COLUMNS": "80"})
    finally:
        lock.release()
    rows = {ln.split("│")[1].strip(): ln for ln in r.stdout.splitlines() if ln.count("│") > 2}
    assert set(rows) == {"ok", "bad", "dead", "live"}, r.stdout  # one line each: no row continues on another
    assert "training…" in rows["live"] and "no checkpoint" in rows["dead"] and "broken" in rows["bad"]
    assert "broken" not in rows["live"] + rows["dead"] and "…" in rows["bad"] and "tinygpt eval NAME" in r.stdout
    assert max(len(ln) for ln in r.stdout.splitlines() if not ln.startswith("models in ")) <= 80, r.stdout  # (the path: its own line)


def test_output_to_a_pipe_is_never_hard_wrapped(tmp_path, small_corpus):
    """Not a terminal: each note and final line whole, however narrow COLUMNS is (the reader wraps, not rich)."""
    r = tinygpt_inproc("train", small_corpus, "--name", "w", "--models-dir", tmp_path, "--preset", "tiny", "--block-size", "16",
                       "--max-steps", "3", "--eval-iters", "1", "--threads", "1", env={"COLUMNS": "40"})
    assert r.returncode == 0, r.stderr
    assert any(ln.startswith("finished at step 3") and f"saved to {tmp_path}" in ln for ln in r.stdout.splitlines()), r.stdout
    # what to do next, as a command that runs as printed (the end said where the model was, and nothing of using it)
    tried = next(ln for ln in r.stdout.splitlines() if ln.startswith("try it: ")).removeprefix("try it: ")
    assert shlex.split(tried)[:3] == ["tinygpt", "generate", "w"], tried
    assert tinygpt_inproc(*shlex.split(tried)[1:], "-n", "3").returncode == 0
    r = tinygpt_inproc("generate", tmp_path / "w", "--prompt", "\u6ee1\u7eb8 hello", "-n", "3", env={"COLUMNS": "40"})
    assert any(ln.startswith("note: the model does not know") and ln.rstrip().endswith("\u7eb8") for ln in r.stderr.splitlines()), r.stderr


def test_models_keeps_long_names_whole_in_a_narrow_terminal(tmp_path):
    """Runs of one experiment share a long prefix: cut to 16 columns with an ellipsis, they all read alike."""
    from tests.conftest import make_model

    names = ["lesson-positions-10steps-pos_encoding=alibi", "lesson-positions-10steps-pos_encoding=learned"]
    d = tmp_path / ("a-folder-deep-down-" * 5)  # its path, above the table, is wider than the terminal too
    for n in names:
        make_model(d, n)
    r = tinygpt_inproc("models", "--models-dir", d, env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    cells = "".join(ln.split("│")[1].strip() for ln in r.stdout.splitlines() if ln.count("│") > 2)
    assert all(n in cells for n in names), r.stdout
    # and the table fits the 80 columns (it was 88 wide: a terminal wrapped every row in two, borders and all);
    # the folder's path above it is one line whatever its length (a terminal wraps it, a pipe gets it whole)
    assert max(len(ln) for ln in r.stdout.splitlines() if not ln.startswith("models in ")) <= 80, r.stdout


def test_a_mistyped_model_name_gets_the_one_meant(tmp_path):
    """After a lesson or two, 'model not found' listed a dozen runs; a typo now names the model it was near."""
    from tests.conftest import make_models_dir

    models = make_models_dir(tmp_path)
    assert_one_line_error(tinygpt_inproc("generate", "alpah", "-n", "5", "--models-dir", models), "model not found: alpah; did you mean 'alpha'?")
    r = tinygpt_inproc("generate", "zzz", "-n", "5", "--models-dir", models)
    assert_one_line_error(r, "model not found: zzz; models in")
    assert "did you mean" not in r.stderr and "alpha" in r.stderr


def test_a_pdf_or_a_docx_given_as_a_book_is_named_not_sent_to_iconv(tmp_path):
    """A PDF whose first bytes are not UTF-8 (and hold no NUL) was 'not UTF-8 text ... convert it first, e.g.
    iconv -f latin1', which turns it into garbage UTF-8: it is now said to be a PDF, and how to get its text."""
    import zipfile

    pdf = tmp_path / "book.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    docx = tmp_path / "book.docx"
    with zipfile.ZipFile(docx, "w") as z:
        z.writestr("word/document.xml", "<w:t>Once upon a time</w:t>" * 50)
    env = {"TINYGPT_CORPORA_DIR": str(tmp_path / "c")}
    for args in (["corpus", "add", pdf], ["train", pdf, "--name", "x", "--max-steps", "1", "--models-dir", tmp_path / "m"]):
        r = tinygpt_inproc(*args, env=env)
        assert_one_line_error(r, "PDF", "pdftotext")
        assert "iconv" not in r.stderr
    assert_one_line_error(tinygpt_inproc("train", docx, "--name", "x", "--max-steps", "1", "--models-dir", tmp_path / "m", env=env),
                          "ZIP archive", "plain text")
    assert not (tmp_path / "m" / "x").exists()


def test_a_stopped_run_ends_on_its_best_evaluation_not_on_n_a():
    """Ctrl+C mid-run ended with 'validation loss n/a (whole validation split)', a line above the evaluation
    that printed val 1.5988: a stopped run skips the whole-split pass, and now says so with the estimate it has."""
    from tinygpt_tui.cli.train import finish_line
    from tinygpt_tui.engine.train import Finished

    stopped = finish_line(Finished(step=50, reason="stopped", val_loss=None, best_val_loss=1.5988, elapsed_s=4.0, path="m/x"))
    assert "n/a" not in stopped and "1.5988" in stopped and stopped.startswith("stopped at step 50")
    done = finish_line(Finished(step=40, reason="done", val_loss=2.5, best_val_loss=2.6, elapsed_s=90.0, path="m/x", bpc=3.6, bpb=3.6))
    assert "validation loss 2.5000" in done and "whole validation split" in done
    assert "not evaluated" in finish_line(Finished(step=3, reason="stopped", val_loss=None, best_val_loss=None, elapsed_s=1.0, path="m/x"))


def test_the_ends_best_estimate_is_the_best_printed_above_it(tmp_path, small_corpus):
    """A resumed run printed "(best 1.6115)" on each evaluation line, then ended "the val figures above (best
    1.6626)": the whole split had kept the last step's weights, whose estimate (1.6626) the run then called its
    best. The end names the best the lines above it showed."""
    from tinygpt_tui.cli.train import estimate_line
    from tinygpt_tui.engine.train import Finished

    end = Finished(step=1700, reason="done", val_loss=1.6396, best_val_loss=1.6626, elapsed_s=65.0, path="m/x", bpc=2.4, bpb=2.4)
    line = estimate_line(end, best_shown=1.6115)
    assert "(best 1.6115)" in line and "1.6626" not in line, line
    assert "(best 1.6626)" in estimate_line(end)  # (no evaluation printed: the run's own word)


def test_an_overfit_runs_end_says_the_weights_kept_are_its_best_evaluations(tmp_path):
    """The last evaluation printed val 2.69 at step 600, then the end said 'validation loss 2.2022' with no word
    that the folder keeps step 200's weights (the card and the app's chart say it): the end line now names the step."""
    from tests.conftest import shakespeare_path

    corpus = tmp_path / "c.txt"
    corpus.write_bytes(shakespeare_path().read_bytes()[:2500])
    r = tinygpt_inproc("train", corpus, "--name", "t", "--models-dir", tmp_path / "m", "--preset", "tiny", "--block-size", 32,
                       "--max-steps", 100, "--eval-interval", 10, "--eval-iters", 4, "--sample-chars", 0, "--dropout", 0,
                       "--lr", "3e-3", "--min-lr-ratio", "1.0", "--dtype", "fp32", "--threads", 1)
    assert r.returncode == 0, r.stderr
    kept = json.loads((tmp_path / "m" / "t" / "config.json").read_text())["figures"]["weights_step"]
    assert kept < 100  # the premise: the run overfits, and the folder keeps an earlier evaluation's weights
    end = [ln for ln in r.stdout.splitlines() if ln.startswith("finished at step 100")]
    assert len(end) == 1 and f"the weights kept are step {kept}'s, its best evaluation" in end[0], r.stdout


def test_corpus_fetch_of_a_corpus_already_here_downloads_nothing(tmp_path):
    """The README's tour runs `tinygpt corpus fetch shakespeare` after the tests had it in place: it downloaded
    it again (offline: 'cannot download', exit 2). A copy with the catalog's sha256 is kept as it is."""
    from tests.conftest import shakespeare_path
    from tinygpt_tui.engine.corpora import catalog

    env = {"TINYGPT_CORPORA_DIR": str(tmp_path)}
    assert tinygpt_inproc("corpus", "fetch", "shakespeare", "--from", shakespeare_path(), env=env).returncode == 0
    here = tmp_path / catalog()["shakespeare"].file
    before = here.stat()
    r = tinygpt_inproc("corpus", "fetch", "shakespeare", env=env)
    assert r.returncode == 0, r.stderr
    assert "sha256 verified" in r.stdout and here.stat().st_ino == before.st_ino and here.stat().st_mtime_ns == before.st_mtime_ns


def test_the_compile_wait_is_explained_each_time_it_happens(tmp_path, monkeypatch):
    """The note was said once per machine (a marker in ~/.cache): a new checkout or venv, which compiles the
    decoder again, sat silent for 25 s after its text on a machine that had seen it."""
    from rich.console import Console

    from tinygpt_tui.cli.generate import compile_note

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for _ in range(2):
        err = Console(record=True, width=120)
        compile_note(err)
        assert "compiled decoder" in err.export_text()


def test_generate_explains_a_wait_for_the_compiler_and_not_a_load_from_its_cache(tmp_path, small_corpus, monkeypatch):
    """Every `generate --max-new 1` said 'finishing the compiled decoder for this install (once, about 20 s)': a
    run that ends before numba has loaded what an earlier run compiled (a second or two) waits for it too."""
    import threading

    from conftest import make_tiny_model

    from tinygpt_tui import sampler
    from tinygpt_tui.fast import decode

    make_tiny_model(tmp_path / "tiny", small_corpus.read_text(encoding="utf-8"))
    monkeypatch.setattr(decode, "WAIT_S", 0.0)  # the first character from numpy, as on a first run
    for ready_after, quiet_s, said in ((1.0, 10.0, False), (None, 0.2, True)):  # loaded from the cache; still compiling
        ready = threading.Event()
        if ready_after is not None:
            threading.Timer(ready_after, ready.set).start()
        monkeypatch.setattr(decode, "compiling", lambda types, *_: ready)
        monkeypatch.setattr(sampler, "COMPILE_QUIET_S", quiet_s)
        r = tinygpt_inproc("generate", "tiny", "--max-new", "1", "--prompt", "a", "--models-dir", tmp_path)
        assert r.returncode == 0, r.stderr
        assert ("compiled decoder" in r.stderr) == said, r.stderr


def test_eval_table_headers_are_whole_at_80_columns(tmp_path, small_corpus):
    """At 80 columns the table cut its headers to 'characte…' and 'perplexi…'."""
    from conftest import make_tiny_model

    make_tiny_model(tmp_path / "tiny", small_corpus.read_text(encoding="utf-8"))
    r = tinygpt_inproc("eval", "tiny", "--corpus", small_corpus, "--split", "all", "--models-dir", tmp_path, env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout, r.stdout
    for header in ("characters", "tokens", "nats/token", "bits/char", "bits/byte", "perplexity"):
        assert header in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80


def test_eval_says_what_it_measures_while_a_terminal_waits(tmp_path, small_corpus):
    """`tinygpt eval shakespeare` sat 10 s on an empty screen before its table; a log still gets the table alone."""
    from conftest import make_tiny_model

    make_tiny_model(tmp_path / "tiny", small_corpus.read_text(encoding="utf-8"))
    args = ("eval", "tiny", "--corpus", small_corpus, "--split", "all", "--models-dir", tmp_path)
    r = tinygpt_inproc(*args, env={"COLUMNS": "80", "TTY_COMPATIBLE": "1"})
    assert r.returncode == 0, r.stderr
    assert "measuring the training split (" in r.stderr and "measuring the validation split (6,000 tokens)" in r.stderr, r.stderr
    piped = tinygpt_inproc(*args, env={"COLUMNS": "80", "TTY_COMPATIBLE": "0"})
    assert "measuring" not in piped.stderr and "perplexity" in piped.stdout


def test_an_old_model_folder_named_with_a_leading_dash_is_reached_as_dot_slash(tmp_path):
    """New names can't start with -, but an old folder may: `tinygpt generate -old` was "No such option: -o",
    which said nothing of how to name it. The error says ./-old, and ./-old (or -- -old, last) generates."""
    from tests.conftest import make_model

    d = tmp_path / "models"
    make_model(d, "-old")
    r = tinygpt_inproc("generate", "-old", "-n", "5", "--models-dir", d)
    assert_one_line_error(r, "-old is read as an option", "write ./-old", "generate ./-old")
    for args in (["./-old", "-n", "5"], ["-n", "5", "--", "-old"]):
        r = tinygpt_inproc("generate", "--models-dir", d, "--seed", "1", "-p", "ab", *args)
        assert r.returncode == 0 and r.stdout.startswith("ab") and len(r.stdout) > 2, (args, r.stderr)
    r = tinygpt_inproc("generate", "-x", "--models-dir", d)  # an option mistyped, no folder of its name: click's words
    assert_one_line_error(r, "No such option: -x")


def test_the_way_to_an_old_dash_folder_is_a_command_that_runs_as_printed(tmp_path):
    """A folder "-my old" was answered "write ./-my old: tinygpt generate ./-my old", which the shell reads as two
    arguments, the second a model that does not exist. The way is quoted as the shell needs it, and runs."""
    import shlex

    from tests.conftest import make_model

    d = tmp_path / "models"
    make_model(d, "-my old")
    r = tinygpt_inproc("generate", "-my old", "--models-dir", d)
    assert_one_line_error(r, "write './-my old'")
    way = r.stderr.split(": ")[-1].strip()
    assert shlex.split(way)[1:] == ["generate", "./-my old"], way
    r = tinygpt_inproc(*shlex.split(way)[1:], "-n", "5", "-p", "ab", "--seed", "1", "--models-dir", d)
    assert r.returncode == 0 and r.stdout.startswith("ab"), r.stderr


def test_a_runs_end_says_it_measures_the_whole_validation_split_and_which_loss_is_which(tmp_path, small_corpus):
    """After the last step the bar sat at 100% with nothing said while the whole validation split was measured (30 s
    on a big corpus); then the end printed that split's loss under the evaluations' "(best ...)" with no word on why
    the two differ. The bar says what it waits for, and the end which figure is which, in a learner's words."""
    import re

    tiny = (small_corpus, "--models-dir", tmp_path, "--preset", "tiny", "--block-size", 32, "--max-steps", 4, "--eval-interval", 4,
            "--eval-iters", 1, "--sample-chars", 0, "--threads", 1)
    # (a terminal: the bar; a wide one, so that each line is one: tests/test_cli_wrap.py checks them wrapped)
    r = tinygpt_inproc("train", *tiny, "--name", "shown", env={"FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "400"})
    assert r.returncode == 0, r.stderr
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", r.stdout)
    measuring = out.find("measuring the whole validation split (")
    assert 0 < measuring < out.find("finished at step 4"), out
    lines = out.splitlines()
    end = next(i for i, ln in enumerate(lines) if ln.startswith("finished at step 4"))
    loss = re.search(r"validation loss (\d\.\d{4})", lines[end]).group(1)
    tokens = re.search(r"measuring the whole validation split \(([\d,]+) tokens\) …", out).group(1)
    assert lines[end + 1].startswith(f"{loss} is the loss over every window of the validation split ({tokens} tokens); "
                                     "the val figures above (best "), lines[end + 1]
    assert "were estimates from a few random batches, taken during training" in lines[end + 1]
    # --jsonl: a "measuring" record between the last evaluation and the finish, saying over how many tokens
    events = run_events(tinygpt_inproc("train", *tiny, "--name", "json", "--jsonl").stdout)
    kinds = [e["event"] for e in events if e["event"] != "step"]
    assert kinds[-3:] == ["saved", "measuring", "finish"], kinds
    assert events[-2] == {"event": "measuring", "step": 4, "scope": "whole validation split", "tokens": int(tokens.replace(",", ""))}


def test_jsonl_says_when_a_run_starts_overfitting_as_the_progress_line_does(tmp_path):
    """The progress line said "overfitting: validation loss rose ..." and --jsonl had no record of it: a script
    watching a run had to work it out again. An "overfitting" record follows the evaluation that shows it, once."""
    corpus = tmp_path / "ab.txt"
    corpus.write_text("ab" * 900 + "aabb" * 50, encoding="utf-8")  # (learning "ab" by heart makes "aabb" ever less likely)
    args = ("train", corpus, "--models-dir", tmp_path / "m", "--preset", "tiny", "--block-size", 32, "--max-steps", 40,
            "--eval-interval", 5, "--eval-iters", 2, "--sample-chars", 0, "--dropout", 0, "--dtype", "fp32", "--threads", 1)
    r = tinygpt_inproc(*args, "--name", "json", "--jsonl")
    assert r.returncode == 0, r.stderr
    events = [e for e in run_events(r.stdout) if e["event"] != "step"]
    over = [i for i, e in enumerate(events) if e["event"] == "overfitting"]
    assert len(over) == 1, [e["event"] for e in events]  # said when it starts, not at every evaluation after
    rec, before = events[over[0]], events[over[0] - 1]
    assert before["event"] == "eval" and before["step"] == rec["step"] and rec["val_loss"] == before["val_loss"]
    assert rec["best_step"] < rec["step"] and rec["val_loss"] > rec["best_val_loss"] and rec["message"].startswith("overfitting: ")
    logged = [json.loads(line) for line in (tmp_path / "m" / "json" / "metrics.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in x.items() if k != "time"} for x in logged if x["event"] == "overfitting"] == [rec]  # (followers too)
    # the progress line says it once too, in the same words
    text = tinygpt_inproc(*args, "--name", "text")
    assert text.returncode == 0 and text.stdout.count(rec["message"]) == 1, text.stdout


def in_a_terminal(*args) -> bytes:
    """What the command prints to a terminal (a pty), once it has ended (exit status 0)."""
    import pty
    import threading

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tinygpt_tui.cli.main", *map(str, args)], stdin=slave, stdout=slave, stderr=slave,
                            env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}, cwd=ROOT)
    os.close(slave)
    out = bytearray()

    def drain():  # the terminal reads what the command prints
        try:
            while chunk := os.read(master, 1 << 16):
                out.extend(chunk)
        except OSError:
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    assert proc.wait(timeout=240) == 0, bytes(out)[-2000:]
    reader.join(10)
    os.close(master)
    return bytes(out)


@pytest.mark.slow
def test_a_run_in_a_terminal_says_it_is_starting_and_a_pipe_gets_only_the_run(tmp_path, small_corpus):
    """A newcomer's first `tinygpt train` left the terminal blank for 5-6 s (torch's import, then its optimizer's,
    which imports torch's compiler), a lesson for 4 s: a spinner says what it is doing, erased once the run's header comes."""
    args = ["train", small_corpus, "--name", "t", "--preset", "tiny", "--max-steps", "2", "--eval-iters", "1", "--sample-chars", "0",
            "--threads", "1", "--models-dir", tmp_path / "m"]
    said = in_a_terminal(*args)
    assert b"starting: loading PyTorch" in said and b"starting: building the model" in said, said[:2000]
    assert said.index(b"starting: loading PyTorch") < said.index(b"starting: building the model") < said.index(b"training t:")
    piped = tinygpt(*args[:-2], "--models-dir", tmp_path / "p")
    assert piped.returncode == 0 and "starting:" not in piped.stdout + piped.stderr, piped.stderr
    said = in_a_terminal("lesson", "dropout", "--corpus", small_corpus, "--max-steps", "1", "--threads", "1", "--models-dir", tmp_path / "l")
    assert b"starting: loading PyTorch" in said and said.index(b"starting: loading PyTorch") < said.index(b"experiment lesson-dropout"), said[:2000]


def test_corpus_add_says_how_long_the_book_is_and_when_it_is_too_short_to_train_as_it_is(tmp_path):
    """A one-line book was 'added ...: train on it with `tinygpt train ...`', and that train then refused it as too
    short: the add now says the book's length, and that the default context needs more (or a smaller --block-size)."""
    env = {"TINYGPT_CORPORA_DIR": str(tmp_path / "c")}
    (tmp_path / "line.txt").write_text("It was a dark and stormy night.\n")
    (tmp_path / "book.txt").write_text("It was a dark and stormy night; the rain fell in torrents.\n" * 40)
    r = tinygpt_inproc("corpus", "add", tmp_path / "line.txt", env=env)
    assert r.returncode == 0 and "(32 characters)" in r.stdout and "too short" in r.stdout and "--block-size" in r.stdout
    r = tinygpt_inproc("corpus", "add", tmp_path / "book.txt", env=env)
    assert r.returncode == 0 and "(2,360 characters): train on it with `tinygpt train book --name NAME`" in r.stdout
    assert "too short" not in r.stdout
