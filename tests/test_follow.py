"""Following a run through its metrics.jsonl while another process writes it (core.checkpoint.read_metrics).

The file is the whole interface between a run and whoever watches it: `tinygpt train`
in another terminal, a torchrun job, or a cluster job on a shared filesystem.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinygpt_tui.engine.folder import METRICS, read_metrics

ROOT = Path(__file__).resolve().parents[1]

# Writes a record, then half of the next one, and finishes it only when told to (a line on its
# stdin), then appends more records through the trainer's own writer, one each time it is told to.
# It says what it did on stdout: the test waits on those lines, not on a clock.
WRITER = r"""
import json, sys
import pytest
from pathlib import Path
from tinygpt_tui.engine.metrics import append_metrics
folder = Path(sys.argv[1])
path = folder / "metrics.jsonl"
def said(what):
    print(what, flush=True)
    if not sys.stdin.readline():
        sys.exit("the reader went away")
append_metrics(folder, [{"event": "start", "step": 0, "note": "caf\u00e9 \u7ea2\u697c\u68a6"}])
line = json.dumps({"event": "step", "step": 1, "loss": 4.0, "note": "\u7ea2\u697c\u68a6"}, ensure_ascii=False).encode() + b"\n"
cut = line.index("\u697c".encode()) + 1  # in the middle of a multi-byte character
with open(path, "ab") as f:
    f.write(line[:cut]); f.flush()
said("half-written")
with open(path, "ab") as f:
    f.write(line[cut:]); f.flush()
for step in range(2, 6):
    said(f"wrote {step - 1}")
    append_metrics(folder, [{"event": "step", "step": step, "loss": 4.0 - step / 10}])
said("wrote 5")
append_metrics(folder, [{"event": "finish", "step": 5, "reason": "done"}])
print("finished", flush=True)
"""


def test_read_metrics_follows_a_file_another_process_is_writing(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    # before the run has written anything there is nothing to read, and no error
    assert read_metrics(folder, 0) == ([], 0)

    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def go_on() -> None:
        writer.stdin.write("go\n")
        writer.stdin.flush()

    try:
        assert writer.stdout.readline() == "half-written\n"
        # one whole record; the half-written one stays unread and the offset stops before it
        recs, offset = read_metrics(folder, 0)
        assert recs == [{"event": "start", "step": 0, "note": "café 红楼梦"}]
        size = (folder / METRICS).stat().st_size
        assert 0 < offset < size
        assert (folder / METRICS).read_bytes()[offset - 1 : offset] == b"\n"
        # asking again gives nothing new, however often
        assert read_metrics(folder, offset) == ([], offset)
        assert read_metrics(folder, offset) == ([], offset)

        got, reads_with_news = [], 0
        go_on()
        while (said := writer.stdout.readline()) != "finished\n":
            assert said.startswith("wrote "), said  # (an empty line: the writer died)
            new, offset = read_metrics(folder, offset)
            assert [r["step"] for r in new] == [int(said.split()[1])]  # each record as soon as it is whole
            got += new
            reads_with_news += 1
            go_on()
        new, offset = read_metrics(folder, offset)
        got += new
        assert writer.wait(timeout=60) == 0 and reads_with_news == 5
    finally:
        if writer.poll() is None:
            writer.kill()

    # every record exactly once, in order, the one that was cut mid-character included
    assert got[0] == {"event": "step", "step": 1, "loss": 4.0, "note": "红楼梦"}
    assert [r["step"] for r in got] == [1, 2, 3, 4, 5, 5]
    assert offset == (folder / METRICS).stat().st_size
    whole = [json.loads(line) for line in (folder / METRICS).read_text(encoding="utf-8").splitlines()]
    assert whole == [recs[0], *got]


def test_read_metrics_skips_a_damaged_line_and_goes_on(tmp_path):
    (tmp_path / METRICS).write_bytes(b'{"event": "start", "step": 0}\nnot json\n[1, 2]\n{"event": "step", "step": 1}\n{"event": "st')
    recs, offset = read_metrics(tmp_path)
    assert recs == [{"event": "start", "step": 0}, {"event": "step", "step": 1}]
    assert offset == len(b'{"event": "start", "step": 0}\nnot json\n[1, 2]\n{"event": "step", "step": 1}\n')


@pytest.mark.slow
def test_following_a_real_training_run_in_another_process(tmp_path):
    """`tinygpt train` in another terminal; the watcher sees the same records the run leaves behind."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i % 97}: the quick brown fox jumps over the lazy dog.\n" for i in range(400)))
    cmd = [sys.executable, str(ROOT / "train.py"), str(corpus), "--name", "watched", "--models-dir", str(tmp_path / "models"),
           "--preset", "tiny", "--n-layer", "1", "--n-embd", "32", "--block-size", "16", "--batch-size", "4",
           "--max-steps", "60", "--eval-interval", "20", "--eval-iters", "2", "--sample-chars", "20",
           "--threads", "1", "--device", "cpu", "--jsonl"]
    err_file = tmp_path / "stderr.txt"
    folder = tmp_path / "models" / "watched"
    got, offset, reads_with_news, out = [], 0, 0, []
    with open(err_file, "w") as err:
        run = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            # each line the run prints (--jsonl) is a step it has taken: the follower reads the file then
            for line in run.stdout:
                out.append(line)
                new, offset = read_metrics(folder, offset)
                got += new
                reads_with_news += bool(new)
            assert run.wait(timeout=60) == 0, err_file.read_text()[-2000:]
        finally:
            if run.poll() is None:
                run.kill()
    new, offset = read_metrics(folder, offset)
    got += new
    assert reads_with_news >= 2  # followed while it grew, not read once at the end
    final, _ = read_metrics(folder)
    assert got == final
    assert [r["event"] for r in got][0] == "start" and got[-1]["event"] == "finish" and got[-1]["step"] == 60
    # the metrics file and the run's own --jsonl output tell the same story
    printed = [r for r in map(json.loads, out) if r["event"] != "prepare"]  # (the corpus's preparation: printed, kept nowhere)
    assert [(r["event"], r.get("step")) for r in printed] == [(r["event"], r.get("step")) for r in got]


def test_step_records_wait_at_most_a_second_for_the_file(tmp_path):
    """Issue 16: a follower lags by at most FLUSH_S, not by a batch of records (one append a second, not one a step)."""
    from tinygpt_tui.engine.metrics import FLUSH_S, MetricsLog

    now = [0.0]
    log = MetricsLog(tmp_path, clock=lambda: now[0])

    def steps_in_file():
        return [r["step"] for r in read_metrics(tmp_path)[0]]

    log.add({"event": "start", "step": 0})  # every record but a step's goes at once
    assert steps_in_file() == [0]
    for s in range(1, 5):
        now[0] += 0.3 * FLUSH_S
        log.add({"event": "step", "step": s}, now=False)
    assert steps_in_file() == [0, 1, 2, 3, 4]  # step 4 came 1.2 s after the last write: all pending went with it
    now[0] += 0.5 * FLUSH_S
    log.add({"event": "step", "step": 5}, now=False)
    assert steps_in_file()[-1] == 4  # grouped while under a second ...
    now[0] += 0.6 * FLUSH_S
    log.tick()  # ... and written by the next step's tick past it, even with no new record
    assert steps_in_file()[-1] == 5


def test_a_training_run_writes_its_step_records_by_the_flush_policy(tmp_path, small_corpus, monkeypatch):
    from tinygpt_tui.engine import metrics
    from tinygpt_tui.engine.train import TrainConfig, train

    monkeypatch.setattr(metrics, "FLUSH_S", 0.0)  # every step's record due at once
    seen = []
    for e in train(TrainConfig(corpus=str(small_corpus), name="f", models_dir=str(tmp_path), preset="tiny", block_size=32,
                               max_steps=6, eval_interval=1000, log_interval=1, threads=1)):
        if e.kind == "step":
            seen.append(e.step)
            assert [r["step"] for r in read_metrics(tmp_path / "f")[0] if r["event"] == "step"] == seen
    assert seen == [1, 2, 3, 4, 5, 6]
