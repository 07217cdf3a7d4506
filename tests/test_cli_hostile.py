"""The command line against hostile input it met in the wild: each case one `error:` line, exit code 2,
no traceback, nothing saved lost."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tinygpt_tui.cli.main import app


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
