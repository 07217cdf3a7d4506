"""The command line against hostile input it met in the wild: each case one `error:` line, exit code 2,
no traceback, nothing saved lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_tiny_model

from tinygpt_tui.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


def assert_one_error(r, *needles) -> str:
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == 2, (r.exit_code, r.stdout[-500:], r.stderr[-1000:])
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]


@pytest.fixture
def good_model(tmp_path, small_corpus) -> Path:
    folder = tmp_path / "models" / "good"
    make_tiny_model(folder, small_corpus.read_text(encoding="utf-8"), seed=3)
    return folder


def tiny_train(corpus, models: Path, name: str, *extra):
    return cli("train", corpus, "--name", name, "--models-dir", models, "--preset", "tiny", "--n-layer", "1",
               "--n-embd", "32", "--block-size", "16", "--batch-size", "4", "--max-steps", "2", "--eval-iters", "1",
               "--sample-chars", "0", "--threads", "1", "--jsonl", *extra)


def test_a_model_name_of_bytes_that_are_not_utf8_is_refused_before_training(small_corpus, tmp_path):
    # `--name $'\xff\xfe'`: Python hands the bytes on as lone surrogates, which no JSON file can hold
    name = b"\xff\xfe".decode("utf-8", "surrogateescape")
    r = tiny_train(small_corpus, tmp_path / "models", name)
    assert_one_error(r, "not UTF-8")
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []


def test_a_corpus_whose_path_is_not_utf8_is_refused_with_one_line(small_corpus, tmp_path, good_model):
    # a file or folder named in another encoding (b"\xff\xfe"): legal on Linux, but its name cannot go
    # into the UTF-8 files that record a run's corpus
    odd = os.fsdecode(b"\xff\xfe")
    book = tmp_path / f"{odd}.txt"
    shutil.copy(small_corpus, book)
    folder = tmp_path / f"d{odd}"
    folder.mkdir()
    shutil.copy(small_corpus, folder / "a.txt")
    for corpus in (book, folder, folder / "*.txt"):
        assert_one_error(tiny_train(corpus, tmp_path / "models", "m"), "not UTF-8", "rename")
        assert_one_error(cli("eval", good_model, "--corpus", corpus), "not UTF-8")
    assert not (tmp_path / "models" / "m").exists()


# each command as cli() runs it, in a process whose file permissions bind: one process for them all (a process of
# its own each spent seconds importing torch for a line of error)
UNPRIVILEGED = """
import json, sys, traceback
from typer.testing import CliRunner
from tinygpt_tui.cli.main import app
done = []
for args in json.load(sys.stdin):
    sys.argv = ["tinygpt", *args]
    r = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    e = r.exception
    crash = "" if e is None or isinstance(e, SystemExit) else "".join(traceback.format_exception(e))
    done.append([r.exit_code, r.stdout, r.stderr + crash])
print(json.dumps(done))
"""


def run_unprivileged(*commands) -> list[subprocess.CompletedProcess]:
    """Each command (a list of `tinygpt` arguments) run in one real process that file permissions bind: as root
    (which ignores them), with the capabilities that let root read any file dropped."""
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search", "--"]
    cmd = [*(drop if os.geteuid() == 0 else []), sys.executable, "-c", UNPRIVILEGED]
    p = subprocess.run(cmd, input=json.dumps([[str(a) for a in c] for c in commands]), capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "250"}, cwd=ROOT, timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    return [subprocess.CompletedProcess(c, code, out, err) for c, (code, out, err) in zip(commands, json.loads(p.stdout.splitlines()[-1]))]


def assert_one_error_line(p, *needles) -> str:
    assert p.returncode == 2 and "Traceback" not in p.stderr, (p.returncode, p.stderr[-2000:])
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]


def test_a_model_folder_without_permissions_is_listed_as_broken_and_refused_by_name(good_model, tmp_path):
    models = good_model.parent
    shutil.copytree(good_model, models / "locked")
    os.chmod(models / "locked", 0)
    try:
        listed = [["models"], ["runs"]]  # the others are still listed; the locked one says why
        refused = [["generate", "locked", "-n", "3"], ["eval", "locked"], ["inspect", "locked"]]
        done = run_unprivileged(*(["--models-dir", models, *c] for c in [*listed, *refused, ["compare", "good", "locked"]]))
        for p in done[:len(listed)]:
            assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
            assert "good" in p.stdout and "locked" in p.stdout and "Permission denied" in p.stdout, p.stdout
        for p in done[len(listed):-1]:
            assert_one_error_line(p, "locked", "Permission denied")
        p = done[-1]
        assert p.returncode == 0 and "Traceback" not in p.stderr and "Permission denied" in p.stdout, p.stderr[-2000:]
    finally:
        os.chmod(models / "locked", 0o755)


def test_resuming_into_a_folder_it_may_not_write_is_refused_before_training(small_corpus, tmp_path):
    """A read-only model folder whose .lock (a file of the user's own) still opens for writing: the
    run used to train up to its first checkpoint, and only then fail to save it."""
    models = tmp_path / "models"
    assert tiny_train(small_corpus, models, "m").exit_code == 0
    folder = models / "m"
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != ".lock"}  # (.lock: the pid of the last run)
    os.chmod(folder, 0o555)
    try:
        [p] = run_unprivileged(["--models-dir", models, "train", "--name", "m", "--resume", "--max-steps", "6", "--threads", "1",
                                "--eval-iters", "1", "--sample-chars", "0"])
        assert_one_error_line(p, f"cannot write to {folder}", "Permission denied")
    finally:
        os.chmod(folder, 0o755)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != ".lock"} == before  # refused before a step: no log line


def test_resuming_a_run_killed_before_its_first_save_says_to_train_it_again(small_corpus, tmp_path):
    """`tinygpt runs` says of such a folder (its lock and log only) to run it again; --resume said
    'config.json is missing', which sent one looking for a file that was never written."""
    models = tmp_path / "models"
    dead = models / "dead"
    dead.mkdir(parents=True)
    (dead / ".lock").write_text("123")
    (dead / "metrics.jsonl").write_text('{"event": "start", "step": 0, "max_steps": 2}\n')
    assert_one_error(tiny_train(small_corpus, models, "dead", "--resume"), "holds no checkpoint", "without --resume")
    assert tiny_train(small_corpus, models, "dead").exit_code == 0  # and so it does, in that folder
    assert (dead / "config.json").exists()


def test_a_corpus_in_a_folder_without_permissions_is_refused_with_one_line(good_model, small_corpus, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(small_corpus, locked / "a.txt")
    os.chmod(locked, 0)
    models = good_model.parent
    try:
        corpora = (locked, locked / "a.txt", locked / "*.txt")
        reads = [(corpus, ["--models-dir", models, *command, "--corpus", corpus])
                 for corpus in corpora for command in (["eval", "good"], ["generate", "good", "-n", "3"])]
        trains = [["--models-dir", models, "train", corpus, "--name", "new", "--preset", "tiny", "--max-steps", "2", "--threads", "1",
                   "--dtype", "fp32"] for corpus in corpora]
        done = run_unprivileged(*(c for _, c in reads), *trains)
        for (corpus, _), p in zip(reads, done):
            line = assert_one_error_line(p)
            assert "Permission denied" in line or (corpus == locked and "directory" in line), line  # (one file only)
        for p in done[len(reads):]:
            assert_one_error_line(p, "Permission denied")
        assert not (models / "new").exists()
    finally:
        os.chmod(locked, 0o755)


def test_an_experiment_file_nested_too_deeply_is_one_line(tmp_path, small_corpus):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'corpus = "{small_corpus}"\nmax_steps = 2\n[vary]\nn_layer = {"[" * 2000}{"]" * 2000}\n', encoding="utf-8")
    assert_one_error(cli("--models-dir", tmp_path / "models", "experiment", "deep", "-f", grid, "--plan"), "grid.toml", "nested too deeply")
    assert not (tmp_path / "models").exists()


def test_an_experiment_file_s_title_and_text_are_printed_inert(tmp_path, small_corpus):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'title = "\\u001b]0;pwned\\u0007\\u001b[2J"\ntext = "\\u001b[31mred"\ncorpus = "{small_corpus}"\n'
                    'max_steps = 2\n[settings]\nn_layer = 1\nn_embd = 32\nblock_size = 16\nbatch_size = 4\neval_iters = 1\n'
                    '[vary]\nn_head = [1]\n', encoding="utf-8")
    models = tmp_path / "models"
    plan = cli("--models-dir", models, "experiment", "esc", "-f", grid, "--plan")
    run = cli("--models-dir", models, "experiment", "esc", "-f", grid, "--threads", "1", "--sample-chars", "0")
    for r in (plan, run):
        assert r.exit_code == 0, r.stderr
        assert "red" in r.stdout and not any(c in r.stdout + r.stderr for c in "\x1b\x07"), r.stdout
    assert "pwned" in run.stdout  # the title, over the ranked table


def test_an_experiment_file_varying_a_setting_over_no_values_is_refused(tmp_path, small_corpus):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'corpus = "{small_corpus}"\nmax_steps = 2\n[vary]\nn_layer = []\n', encoding="utf-8")
    for extra in (["--plan"], ["--threads", "1"]):
        assert_one_error(cli("--models-dir", tmp_path / "models", "experiment", "none", "-f", grid, *extra), "n_layer", "no values")
    assert not (tmp_path / "models" / "none").exists()


def test_inspect_at_a_tiny_temperature_puts_all_on_the_top_without_a_warning(good_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # (numpy's overflow warning printed a source line on stderr)
        r = cli("--models-dir", good_model.parent, "inspect", "good", "-p", "ab", "-t", "1e-320", "-k", "3", "--json")
    assert r.exit_code == 0 and r.exception is None and r.stderr == "", (r.exception, r.stderr)
    probs = [c["prob"] for c in json.loads(r.stdout)["top_k"]]
    assert probs == [1.0, 0.0, 0.0]


def test_a_file_that_is_a_loop_of_links_is_named_as_one_on_read(good_model, tmp_path):
    (good_model / "model.safetensors").unlink()
    (good_model / "model.safetensors").symlink_to("model.safetensors")  # (a link to itself)
    (tmp_path / "grid.toml").symlink_to(tmp_path / "grid.toml")
    for r in (cli("--models-dir", good_model.parent, "generate", "good", "-n", "3"),
              cli("--models-dir", tmp_path / "models", "experiment", "e", "-f", tmp_path / "grid.toml", "--plan")):
        line = assert_one_error(r, "loops")
        assert "write" not in line, line  # (nothing was being written)


def test_a_corpus_that_is_a_loop_of_links_is_named_as_one_not_as_missing(good_model, tmp_path):
    loop = tmp_path / "book.txt"
    loop.symlink_to(loop)  # (`ls` shows it: "not found" would send the user looking in the wrong place)
    for args in (["corpus", "add", loop], ["corpus", "prepare", loop], ["eval", "good", "--corpus", loop],
                 ["generate", "good", "--corpus", loop, "-n", "1"]):
        assert_one_error(cli("--models-dir", good_model.parent, *args), "loops")
    assert_one_error(tiny_train(loop, tmp_path / "models", "new"), "loops")
    assert not (tmp_path / "models" / "new").exists()


@pytest.mark.parametrize("to, suffix", [("hf", ""), ("gguf", ".gguf")])
def test_an_export_to_a_path_that_is_not_utf8_is_written_whole(good_model, tmp_path, to, suffix):
    out = tmp_path / (os.fsdecode(b"out\xff\xfe") + suffix)  # (a legal Linux name; tokenizers and gguf want UTF-8)
    r = cli("--models-dir", good_model.parent, "export", "good", out, "--to", to)
    assert r.exit_code == 0 and r.exception is None, (r.exception, r.stderr)
    plain = tmp_path / f"plain{suffix}"
    assert cli("--models-dir", good_model.parent, "export", "good", plain, "--to", to).exit_code == 0
    if to == "hf":
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in plain.iterdir())
        assert (out / "tokenizer.json").read_bytes() == (plain / "tokenizer.json").read_bytes()
    else:
        import gguf

        read = [gguf.GGUFReader(p) for p in (out, plain)]
        assert [t.name for t in read[0].tensors] == [t.name for t in read[1].tensors] and read[0].tensors


def test_a_corpus_name_with_control_characters_or_bytes_not_utf8_is_refused(small_corpus, tmp_path):
    corpora = tmp_path / "corpora"
    for name in ("e\x1b[31mred", "two\nlines", os.fsdecode(b"\xff\xfe")):
        r = CliRunner().invoke(app, ["corpus", "add", str(small_corpus), "--name", name], env={"TINYGPT_CORPORA_DIR": str(corpora)})
        assert_one_error(r, "bad corpus name")
    assert not corpora.exists() or list(corpora.iterdir()) == []


def test_any_path_under_a_folder_without_permissions_is_one_line(good_model, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0)
    models = good_model.parent
    try:
        for p in run_unprivileged(["--models-dir", locked / "models", "models"], ["--models-dir", models, "compare", "good", "--out", locked / "c.svg"],
                                  ["--models-dir", models, "generate", locked / "m", "-n", "3"],
                                  ["--models-dir", models, "convert", locked / "ckpt.pt", "--name", "c"]):
            assert_one_error_line(p, str(locked), "Permission denied")
    finally:
        os.chmod(locked, 0o755)


def test_resume_with_a_new_budget_says_how_to_resume_not_that_a_corpus_is_missing(tmp_path):
    r = cli("--models-dir", tmp_path / "models", "experiment", "ex", "--resume", "--max-steps", "60")
    assert_one_error(r, "--resume", "as saved", "tinygpt experiment ex --resume")


def test_an_experiment_named_again_alone_says_how_to_see_it_not_that_a_corpus_is_missing(tmp_path):
    """`tinygpt lesson NAME` again shows its results; `tinygpt experiment NAME` again said "an experiment
    needs a corpus (--corpus)" though the experiment has one."""
    (tmp_path / "models" / "ex").mkdir(parents=True)
    (tmp_path / "models" / "ex" / "experiment.json").write_text("{}")
    r = cli("--models-dir", tmp_path / "models", "experiment", "ex")
    assert_one_error(r, "is an experiment already", "tinygpt experiment ex --resume")


def test_resume_refuses_a_setting_it_would_ignore_and_takes_the_same_command_again(tmp_path, small_corpus):
    """`train --name m --resume --lr 0.5 --n-layer 6` trained on with the saved settings, saying nothing."""
    models = tmp_path / "models"
    assert tiny_train(small_corpus, models, "m").exit_code == 0
    before = (models / "m" / "config.json").read_text()
    assert_one_error(cli("train", "--name", "m", "--models-dir", models, "--resume", "--lr", "0.5", "--n-layer", "6"),
                     "--resume", "--lr", "--n-layer", "cannot change")
    assert (models / "m" / "config.json").read_text() == before
    assert tiny_train(small_corpus, models, "m", "--resume", "--max-steps", "3").exit_code == 0  # (a job resubmitted)


def test_a_setting_the_run_would_ignore_is_refused_before_anything_is_written(tmp_path, small_corpus):
    """--cooldown under the cosine schedule and Muon's settings under --optimizer adamw trained the same
    model without a word: a learner comparing two such runs reads a difference into noise."""
    models = tmp_path / "models"
    for extra, needles in ((["--cooldown", "0.2"], ("--cooldown", "wsd")),
                           (["--optimizer", "adamw", "--muon-lr", "0.05"], ("--muon-lr", "muon", "--lr")),
                           (["--optimizer", "adamw", "--muon-weight-decay", "0.1"], ("--muon-weight-decay",))):
        assert_one_error(cli("train", small_corpus, "--name", "m", "--models-dir", models, "--preset", "tiny", "--max-steps", "2", *extra),
                         *needles)
    assert not (models / "m").exists()
    assert tiny_train(small_corpus, models, "m", "--schedule", "wsd", "--cooldown", "0.2").exit_code == 0


def test_bench_refuses_a_json_path_it_cannot_write_before_it_measures(tmp_path):
    for where, why in ((tmp_path, "it is a folder"), (tmp_path / "missing" / "b.json", "does not exist")):
        r = cli("bench", "--json", where, "--presets", "tiny", "--seconds", "0.5", "--threads", "1")
        assert_one_error(r, why)
        assert r.stdout == ""  # (nothing measured: the probe and the steps come after)


@pytest.mark.parametrize("content, needle", [(b"", "empty"), (b"\x00\x01\x02" * 1000, "binary"), (b"caf\xe9 au lait\n" * 50, "UTF-8")])
def test_a_bad_corpus_is_said_before_the_machines_first_probe(tmp_path, monkeypatch, content, needle):
    """With no probe cached, train measured the machine for about 10 s and printed its notes, then said the
    corpus was empty or binary: three lines on stderr where one was due."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # (nothing cached: the probe would run)
    monkeypatch.delenv("TINYGPT_PROBE", raising=False)
    book = tmp_path / "book.txt"
    book.write_bytes(content)
    r = cli("train", book, "--name", "x", "--models-dir", tmp_path / "models")
    assert_one_error(r, needle)
    assert not (tmp_path / "cache" / "tinygpt" / "probe.json").exists()  # nothing was measured


@pytest.mark.parametrize("name,needle", [("-x", "can't start with -"), (" sp", "start or end with a space"), ("sp ", "start or end with a space")])
def test_a_name_a_later_command_would_misread_is_refused_for_models_experiments_imports_and_corpora(
        good_model, small_corpus, tmp_path, name, needle):
    # `tinygpt experiment ... -- -x` made a folder `-x` that `tinygpt generate -x` then reads as an option
    models = good_model.parent
    assert cli("--models-dir", models, "export", "good", tmp_path / "hf", "--to", "hf").exit_code == 0
    assert_one_error(tiny_train(small_corpus, models, name), "model name", repr(name), needle)
    assert_one_error(cli("--models-dir", models, "experiment", "--corpus", small_corpus, "--max-steps", "5",
                         "--vary", "n_layer=1,2", "--plan", "--", name), "experiment name", repr(name), needle)
    assert_one_error(cli("--models-dir", models, "import", tmp_path / "hf", "--name", name), "model name", needle)
    corpora = tmp_path / "corpora"
    r = CliRunner().invoke(app, ["corpus", "add", str(small_corpus), "--name", name], env={"TINYGPT_CORPORA_DIR": str(corpora)})
    assert_one_error(r, "bad corpus name", needle)
    assert sorted(p.name for p in models.iterdir()) == ["good"]
    assert not corpora.exists() or list(corpora.iterdir()) == []


def test_an_experiment_named_so_before_the_rule_still_resumes(small_corpus, tmp_path):
    models = tmp_path / "models"
    grid = ["--corpus", small_corpus, "--max-steps", "2", "--vary", "n_layer=1,2", "--set", "n_embd=32", "--set", "n_head=2",
            "--set", "block_size=16", "--set", "batch_size=4", "--threads", "1", "--models-dir", models]
    assert cli("experiment", "old", *grid).exit_code == 0
    (models / "old").rename(models / " old")  # as one made before the rule would be
    doc = json.loads((models / " old" / "experiment.json").read_text(encoding="utf-8"))
    doc["spec"]["name"] = " old"
    (models / " old" / "experiment.json").write_text(json.dumps(doc), encoding="utf-8")
    r = cli("experiment", " old", "--resume", "--models-dir", models)
    assert r.exit_code == 0, r.stderr
    assert_one_error(cli("experiment", " new", *grid), "experiment name ' new'", "start or end with a space")  # a new one: refused


def test_a_corpus_file_whose_name_breaks_the_rule_is_told_how_to_add_it(small_corpus, tmp_path):
    draft = tmp_path / "-draft.txt"  # (its name is the corpus's unless --name gives another)
    draft.write_bytes(small_corpus.read_bytes())
    corpora = tmp_path / "corpora"
    r = CliRunner().invoke(app, ["corpus", "add", str(draft)], env={"TINYGPT_CORPORA_DIR": str(corpora)})
    assert_one_error(r, "bad corpus name '-draft'", "--name NAME gives it another")
    r = CliRunner().invoke(app, ["corpus", "add", str(draft), "--name", "draft"], env={"TINYGPT_CORPORA_DIR": str(corpora)})
    assert r.exit_code == 0 and (corpora / "draft.txt").is_file(), r.output


def test_a_model_named_so_before_the_rule_still_resumes(small_corpus, tmp_path):
    """The rule is for new names: a run whose folder was made before it (" old", say) is not locked out of --resume."""
    models = tmp_path / "models"
    assert tiny_train(small_corpus, models, "old").exit_code == 0
    (models / "old").rename(models / " old")
    r = cli("train", "--name", " old", "--resume", "--max-steps", "4", "--models-dir", models, "--threads", "1", "--jsonl")
    assert r.exit_code == 0, r.stderr
    assert json.loads((models / " old" / "config.json").read_text(encoding="utf-8"))["figures"]["step"] == 4


def test_an_experiment_s_bad_setting_or_member_is_said_as_typed_in_one_line(tmp_path, small_corpus):
    # the grid's settings were named as `train`'s options (n-embd), a blank [[members]] name as "member : ..."
    models = tmp_path / "models"
    r = cli("--models-dir", models, "experiment", "e", "--corpus", small_corpus, "--max-steps", "5",
            "--vary", "n_head=3,4", "--vary", "n_embd=64,96", "--plan")
    assert "n-" not in assert_one_error(r, "member n_head=3,n_embd=64", "n_embd (64) must be divisible by n_head (3)")
    grid = tmp_path / "grid.toml"
    for text, needles in (('[[members]]\nname = ""', ["grid.toml", "name is empty"]), ('[[members]]\nname = 5', ["grid.toml", "got 5"]),
                          ('[vary]\nn_layer = [1, "2"]', ["grid.toml", "n_layer takes int", "'2'", "without quotes"])):
        grid.write_text(f'corpus = "{small_corpus}"\nmax_steps = 5\n{text}\n', encoding="utf-8")
        assert_one_error(cli("--models-dir", models, "experiment", "e", "-f", grid, "--plan"), *needles)
    assert not models.exists()


@pytest.mark.slow  # (four trainings, each in a process of its own: 22 s)
def test_a_resumed_run_s_card_keeps_the_command_that_started_it(small_corpus, tmp_path):
    """The card's "Trained with" became the resume command alone: run as printed on a new machine it had nothing
    to resume, and the command that made the run was gone. It lists the first command, then each resume once."""
    from tests.test_cli import tinygpt  # (in a process of its own: the command recorded is the one typed)

    models = tmp_path / "models"
    size = ["--preset", "tiny", "--n-layer", "1", "--n-embd", "32", "--block-size", "16", "--batch-size", "4", "--eval-iters", "1",
            "--sample-chars", "0", "--threads", "1", "--models-dir", models]
    assert tinygpt("train", small_corpus, "--name", "r1", "--max-steps", "2", *size).returncode == 0
    for more in (["--max-steps", "4"], ["--minutes", "0.01"], ["--minutes", "0.01"]):  # (the last again, as a job resubmitted)
        r = tinygpt("train", "--name", "r1", "--resume", "--models-dir", models, "--threads", "1", *more)
        assert r.returncode == 0, r.stderr
    lines = json.loads((models / "r1" / "config.json").read_text(encoding="utf-8"))["command"].splitlines()
    assert len(lines) == 3 and "--resume" not in lines[0] and "--max-steps 2" in lines[0], lines
    assert "--max-steps 4" in lines[1] and "--minutes 0.01" in lines[2] and all("--resume" in ln for ln in lines[1:])
    card = (models / "r1" / "README.md").read_text(encoding="utf-8")
    assert "\n".join(lines) in card


def test_columns_of_zero_prints_the_tables_and_the_error_line_not_nothing(good_model):
    """COLUMNS=0 (a container's shell may set it): rich printed nothing at width 0; `tinygpt models` showed no
    table and a mistake exited 2 without a word."""
    models = good_model.parent
    r = CliRunner().invoke(app, ["models", "--models-dir", str(models)], env={"COLUMNS": "0"})
    assert r.exit_code == 0 and "good" in r.stdout, r.stdout
    r = CliRunner().invoke(app, ["generate", "nosuch", "--models-dir", str(models)], env={"COLUMNS": "0"})
    assert_one_error(r, "model not found: nosuch")
    r = CliRunner().invoke(app, ["inspect", "good", "-p", "ab", "--layer", "0", "--models-dir", str(models)], env={"COLUMNS": "0"})
    assert r.exit_code == 0 and "Next character" in r.stdout, r.stdout


@pytest.mark.parametrize("damage, needle", [(lambda d: d["spec"].update(text=["a list"]), "its text is not text"),
                                            (lambda d: d.update(members=["n_layer=1", "n_layer=2"]), "not an experiment tinygpt wrote"),
                                            (lambda d: d["members"][0].update(name=["n_layer=1"]), "not an experiment tinygpt wrote")],
                         ids=["text-a-list", "members-words", "member-name-a-list"])
def test_an_experiment_manifest_edited_into_the_wrong_kinds_is_one_line(tmp_path, small_corpus, damage, needle):
    """A hand-edited experiment.json whose text was a list, or whose members were words, raised a traceback on
    --resume (AttributeError: 'list' object has no attribute 'strip'; 'str' object has no attribute 'get')."""
    spec = {"name": "ex", "corpus": str(small_corpus), "max_steps": 2, "settings": {"n_embd": 32, "n_head": 2, "block_size": 16},
            "vary": {"n_layer": [1, 2]}, "members": [], "seeds": 1, "seed": 1337, "title": "", "text": "a grid"}
    doc = {"format": "tinygpt-experiment/1", "spec": spec,
           "members": [{"name": f"n_layer={n}", "group": f"n_layer={n}", "seed": 1337, "settings": {"n_layer": n}, "state": "queued"}
                       for n in (1, 2)]}
    damage(doc)
    (tmp_path / "models" / "ex").mkdir(parents=True)
    (tmp_path / "models" / "ex" / "experiment.json").write_text(json.dumps(doc), encoding="utf-8")
    assert_one_error(cli("experiment", "ex", "--resume", "--plan", "--models-dir", tmp_path / "models"), "ex/experiment.json", needle)


def test_a_folder_of_thousands_of_small_files_is_prepared_in_seconds(tmp_path):
    """Each file's end wrote a progress record holding every file's fingerprint, with three fsyncs: 1,000 files of a
    line each took 4 s, 4,000 a minute, 10,000 more than five (150 KB of text). Now at most one a second."""
    import time

    books = tmp_path / "lines"
    books.mkdir()
    for i in range(4000):
        (books / f"{i:05d}.txt").write_text(f"line {i} of a corpus of many small files\n", encoding="utf-8")
    t0 = time.monotonic()
    r = cli("corpus", "prepare", books)
    took = time.monotonic() - t0
    assert r.exit_code == 0 and "4,000 file(s)" in r.stdout, r.output
    assert took < 20, f"{took:.0f} s"


def test_a_stopped_run_s_continue_with_line_is_inert_and_pastes_into_a_shell_as_the_same_command(small_corpus, tmp_path):
    """`continue with: tinygpt train --name ... --resume` quoted the name and the models folder for a shell, then made
    them inert: a line separator or a bidi override in the name, a newline or an escape in the folder, became "\\u2028"
    or "\\n" inside single quotes, which a shell reads as those backslashes: pasted, it named another run. Now $'...'."""
    import signal
    import time

    from tests.test_cli import ROOT

    models, name = tmp_path / "m\nodels\x1b[2J", "a\u2028b\u202ec"
    args = [sys.executable, "-m", "tinygpt_tui.cli.main", "train", str(small_corpus), "--name", name, "--models-dir", str(models),
            "--preset", "tiny", "--n-layer", "1", "--n-embd", "32", "--block-size", "16", "--batch-size", "4", "--max-steps", "100000",
            "--eval-iters", "1", "--sample-chars", "0", "--threads", "1"]
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log, end = models / name / "metrics.jsonl", time.monotonic() + 120
        while time.monotonic() < end and p.poll() is None and not (log.is_file() and '"step"' in log.read_text(encoding="utf-8")):
            time.sleep(0.1)
        os.kill(p.pid, signal.SIGINT)  # Ctrl+C: the run saves and says how to go on
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    line = next((ln for ln in out.splitlines() if ln.startswith("continue with: ")), None)
    assert p.returncode == 0 and line is not None, (p.returncode, out[-1000:], err[-1000:])
    assert line.isprintable() and not any(c in line for c in "\u2028\u202e"), repr(line)  # inert, one line
    pasted = subprocess.run(["bash", "-c", "tinygpt() { printf '%s\\0' \"$@\"; }; " + line.removeprefix("continue with: ")],
                            capture_output=True, timeout=30)  # (what a shell hands the command)
    assert pasted.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1] == ["train", "--name", name, "--resume", "--models-dir", str(models)]


def test_a_model_named_tilde_is_the_model_of_that_name_not_the_home_folder(tmp_path, small_corpus):
    """A folder named "~" in models/ (`tinygpt train --name '~'` makes one): `tinygpt generate '~'` expanded the name
    to the home folder and said "config.json is missing: /home/...". The name is a name; commands printed to be
    pasted quote it, so that a shell does not expand it either."""
    from tests.test_cli import tinygpt_inproc

    models, home = tmp_path / "models", tmp_path / "home"
    home.mkdir()
    assert tiny_train(small_corpus, models, "~").exit_code == 0 and (models / "~" / "config.json").is_file()
    env = {"HOME": str(home)}
    r = tinygpt_inproc("generate", "~", "-p", "ab", "-n", "5", "--models-dir", models, env=env)
    assert r.returncode == 0, r.stderr
    r = tinygpt_inproc("inspect", "~", "-p", "ab", "--models-dir", models, env=env)
    assert r.returncode == 0 and r.stdout.startswith("~ · context 2/16"), r.stderr
    r = tinygpt_inproc("compare", "~", "--models-dir", models, env=env)
    assert r.returncode == 0 and "broken" not in r.stdout + r.stderr and str(home) not in r.stdout + r.stderr, r.stdout
    card = (models / "~" / "README.md").read_text(encoding="utf-8")
    assert "`tinygpt eval '~' --models-dir " in card  # (the model card's command, quoted for a shell)
    (tmp_path / "exps" / "~").mkdir(parents=True)  # an experiment of that name: its hint to resume, quoted
    (tmp_path / "exps" / "~" / "experiment.json").write_text("{}")
    assert_one_error(cli("experiment", "~", "--models-dir", tmp_path / "exps"), "`tinygpt experiment '~' --resume --models-dir ")


def test_a_printed_word_reads_back_the_same_in_a_shell_of_any_locale():
    """shell_word wrote a bidi override or a line separator as $'\\u202e': bash reads \\u only from 4.2 on (macOS's
    bash is 3.2) and only in a UTF-8 locale; under LC_ALL=C the pasted name was the six characters "\\u202E"."""
    from tinygpt_tui.tokenizer import one_line, shell_word

    words = ["a\u2028b\u202ec", "\x1b[2J1", "\udcff\udcfe", "tab\there", "it's \\ ~", "\U000e0001x", "~", "my model"]
    script = "for a in " + " ".join(shell_word(w) for w in words) + "; do printf '%s\\0' \"$a\"; done"
    assert one_line(script) == script  # (inert on one line)
    for locale in ("C", "C.UTF-8"):
        out = subprocess.run(["bash", "-c", script], capture_output=True, timeout=30, env={**os.environ, "LC_ALL": locale}).stdout
        assert out.split(b"\0")[:-1] == [w.encode("utf-8", "surrogateescape") for w in words], (locale, out)


@pytest.mark.parametrize("typed, said", [(["--pos", "foo"], "--pos must be one of learned"), (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
                                         (["--schedule", "x"], "--schedule must be one of cosine, wsd"), (["--norm", "batch"], "--norm must be one of")])
def test_a_bad_setting_is_named_by_the_option_typed(tmp_path, small_corpus, typed, said):
    """`--pos foo` said "pos_encoding must be one of ...": the config's field, not the option the user typed."""
    from tests.test_cli import assert_one_line_error, tinygpt_inproc

    r = tinygpt_inproc("train", small_corpus, "--name", "x", *typed, "--models-dir", tmp_path)
    assert_one_line_error(r, said)
    assert "pos_encoding" not in r.stderr and not any(tmp_path.iterdir())


def test_a_corpus_path_with_a_newline_or_an_escape_is_recorded_inert_and_as_typed(small_corpus, tmp_path, monkeypatch):
    """The card's "Trained with" command quoted each word with shlex: a corpus named with an escape put the raw ESC in
    config.json's command and in README.md (`cat README.md` ran it), and a newline split the command over two of the
    card's lines, which are one command each. Now each word is $'...' where it must be, and reads back as typed."""
    book = tmp_path / "b\x1b[2J\nook.txt"
    shutil.copy(small_corpus, book)
    models = tmp_path / "models"
    args = ["train", str(book), "--name", "m", "--models-dir", str(models), "--preset", "tiny", "--n-layer", "1", "--n-embd", "32",
            "--block-size", "16", "--batch-size", "4", "--max-steps", "2", "--eval-iters", "1", "--sample-chars", "0", "--threads", "1"]
    monkeypatch.setattr(sys, "argv", ["tinygpt", *args])  # (the command recorded is the one typed)
    r = cli(*args)
    assert r.exit_code == 0, r.output
    command = json.loads((models / "m" / "config.json").read_text(encoding="utf-8"))["command"]
    assert command.isprintable(), repr(command)
    card = (models / "m" / "README.md").read_text(encoding="utf-8")
    assert f"```\n{command}\n```" in card
    pasted = subprocess.run(["bash", "-c", "tinygpt() { printf '%s\\0' \"$@\"; }; " + command], capture_output=True, timeout=30)
    assert pasted.stdout.decode("utf-8").split("\0")[:-1] == args
    eval_line = card.split("Check the validation loss: `")[1].split("`")[0]  # (the card's other command: its corpus too)
    assert eval_line.isprintable(), repr(eval_line)
    pasted = subprocess.run(["bash", "-c", "tinygpt() { printf '%s\\0' \"$@\"; }; " + eval_line], capture_output=True, timeout=30)
    assert pasted.stdout.decode("utf-8").split("\0")[-2] == book.name, pasted


def test_a_models_dir_that_loops_leads_nowhere_is_a_file_or_is_empty_is_one_line_for_every_command(small_corpus, tmp_path, monkeypatch):
    """--models-dir as a loop of links: `tinygpt experiment` raised a RuntimeError traceback (Path.resolve); a link to
    a missing folder: `tinygpt train` said "cannot write to LINK/m: File exists"; a file: `generate` said "model not
    found"; '' (an unset variable, "$DIR"): a Path of '' is '.', and `train` wrote its model into the current folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    (tmp_path / "afile").write_text("x")
    cases = {"loop1": "a symbolic link that loops", "gone": "which does not exist", "gone/models": "gone is a link to",
             "afile": "not a folder", "afile/models": "afile is a file)", "": "--models-dir is empty"}
    commands = [["experiment", "x"], ["models"], ["generate", "m", "-n", "3"], ["train", small_corpus, "--name", "m", "--max-steps", "1"]]
    before = sorted(os.listdir(tmp_path))
    for where, said in cases.items():
        for command in commands:
            for args in (["--models-dir", where, *command], [*command, "--models-dir", where]):
                assert_one_error(cli(*args), f"--models-dir {where}", said)
    assert sorted(os.listdir(tmp_path)) == before and (tmp_path / "afile").read_text() == "x"
    r = cli("train", small_corpus, "--name", "m", "--models-dir", "new/models", "--preset", "tiny", "--n-layer", "1", "--n-embd", "32",
            "--block-size", "16", "--batch-size", "4", "--max-steps", "1", "--eval-iters", "1", "--sample-chars", "0", "--threads", "1")
    assert r.exit_code == 0 and (tmp_path / "new" / "models" / "m" / "config.json").is_file(), r.output  # (a missing one: made)


def test_a_chart_under_a_file_or_a_loop_of_links_says_so_not_that_its_folder_is_missing(good_model, tmp_path):
    """`compare --out afile/chart.svg` said "the folder afile does not exist" of a file that is there, and the same of a
    loop of links: what is in the way is said, and nothing of it is touched."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    models = good_model.parent
    for out, said in ((tmp_path / "afile" / "c.svg", f"{tmp_path / 'afile'} is a file, not a folder"),
                      (tmp_path / "afile" / "sub" / "c.svg", f"{tmp_path / 'afile'} is a file, not a folder"),
                      (tmp_path / "loop1" / "c.svg", "Too many levels of symbolic links"),
                      (tmp_path / "nowhere" / "c.svg", f"the folder {tmp_path / 'nowhere'} does not exist")):
        line = assert_one_error(cli("compare", "good", "--out", out, "--models-dir", models), f"cannot write {out}", said)
        assert "does not exist" not in line or "nowhere" in line, line
    assert (tmp_path / "afile").read_text() == "x"


def test_a_glob_that_matches_only_what_is_not_a_file_says_what_it_matched(tmp_path):
    """A quoted glob whose only match was a FIFO, a device or a loop of links said "no file matches": something did
    match, and is refused by its kind (never opened to be read: a FIFO would hang the read)."""
    os.mkfifo(tmp_path / "f.txt")
    (tmp_path / "z.txt").symlink_to("/dev/zero")
    (tmp_path / "l1.txt").symlink_to("l2.txt")
    (tmp_path / "l2.txt").symlink_to("l1.txt")
    for pattern, said in (("f.*", "a FIFO"), ("z.*", "a character device"), ("l1.*", "loops"), ("none.*", "no file matches")):
        assert_one_error(cli("corpus", "prepare", tmp_path / pattern), said)


def test_a_run_named_with_an_escape_is_inert_in_the_chart_s_legend_and_in_its_file(good_model, tmp_path):
    """`tinygpt compare` wrote a run's name raw in the terminal chart's legend (its table and notes were inert): a folder
    named with an escape set the terminal's colours. In an .svg the ESC made the file XML cannot read."""
    import xml.dom.minidom

    models = good_model.parent
    evil = "e\x1b[31mvil\x07"
    shutil.copytree(good_model, models / evil)
    shutil.copy(ROOT / "models" / "shakespeare" / "metrics.jsonl", models / evil / "metrics.jsonl")  # (curves to draw)
    r = cli("compare", evil, "good", "--models-dir", models)
    assert r.exit_code == 0 and "vil" in r.stdout, r.output
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout, [ln for ln in r.stdout.splitlines() if "\x1b" in ln]
    r = cli("compare", evil, "good", "--models-dir", models, "--out", tmp_path / "c.svg")
    assert r.exit_code == 0, r.output
    text = (tmp_path / "c.svg").read_text(encoding="utf-8")
    assert "\x1b" not in text and "vil" in text
    xml.dom.minidom.parseString(text)


def test_a_models_dir_refused_from_the_variable_is_named_as_the_variable_and_an_option_given_wins(tmp_path, monkeypatch):
    """$TINYGPT_MODELS_DIR naming a file was refused as "--models-dir afile: not a folder", to a user who had typed no
    --models-dir; and, read by `tinygpt` itself before its command, it was refused where `tinygpt models --models-dir
    good` named the folder to read instead (--version too)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "good").mkdir()
    env = {"COLUMNS": "250", "TINYGPT_MODELS_DIR": "afile"}
    for args in (["models"], ["experiment", "x"], ["generate", "m", "-n", "3"]):
        line = assert_one_error(CliRunner().invoke(app, args, env=env), "$TINYGPT_MODELS_DIR afile: not a folder")
        assert "--models-dir" not in line, line
    for args in (["models", "--models-dir", "good"], ["--models-dir", "good", "models"]):
        r = CliRunner().invoke(app, args, env=env)
        assert r.exit_code == 0 and "no models in good" in r.stdout, (args, r.stdout, r.stderr)
    r = CliRunner().invoke(app, ["--version"], env=env)
    assert r.exit_code == 0 and r.stdout.startswith("tinygpt "), r.stderr
    assert_one_error(CliRunner().invoke(app, ["models", "--models-dir", "afile"], env=env), "--models-dir afile: not a folder")
