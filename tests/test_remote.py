"""core.remote: sampling in a child process (no screen): same text, chunks, stop, replace, death, cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tests.conftest import make_model  # noqa: E402
from tinygpt_tui.engine.remote import RemoteError, SamplerProcess  # noqa: E402
from tinygpt_tui.sampler import Generation, SamplingSettings  # noqa: E402

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the sampler process needs POSIX (the app falls back to a thread)")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("remote"), "alpha", seed=1, n_layer=2, n_embd=48, block_size=32)


@pytest.fixture(scope="module")
def sampler(model_dir):
    sp = SamplerProcess().start()
    sp.load(model_dir)
    assert sp.wait_ready(120), sp.load_error or sp.dead
    yield sp
    sp.close()


def pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in f)  # a zombie has exited
    except FileNotFoundError:
        return True


def test_same_text_as_in_process_sampling_in_chunks(sampler, model_dir):
    from tinygpt_tui.engine.folder import load_model

    import torch

    loaded = load_model(model_dir)
    ids = loaded.tokenizer.encode("ROMEO:").ids
    settings = SamplingSettings(max_new_tokens=400, temperature=0.9, top_k=20, seed=7)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the child (two threads crawl when the other core is busy)
    try:
        here = "".join(Generation(loaded.model, loaded.tokenizer, "", settings, context_ids=ids))
    finally:
        torch.set_num_threads(threads)

    t0 = time.perf_counter()
    g = sampler.generate(ids, settings)
    chunks = list(g.chunks(timeout=60))
    t1 = time.perf_counter()
    assert "".join(c for c, _ in chunks) == here
    assert g.generated == 400 and g.finished and not g.error
    # the text comes in chunks (about 40 a second), each stamped with when its first character was sampled
    assert len(chunks) < 400
    stamps = [t for _, t in chunks]
    assert stamps == sorted(stamps) and t0 <= stamps[0] <= stamps[-1] <= t1
    assert sampler.device_name.startswith("CPU")
    # iterating the generation itself gives characters
    assert "".join(sampler.generate(ids, settings)) == here


def test_stop_is_prompt_and_a_new_generation_replaces_a_running_one(sampler):
    long = sampler.generate([1, 2, 3], SamplingSettings(max_new_tokens=1_000_000, seed=1))
    it = long.chunks(timeout=60)
    next(it)
    t = time.perf_counter()
    long.stop()
    short = sampler.generate([4, 5], SamplingSettings(max_new_tokens=25, seed=2))
    rest = sum(len(text) for text, _ in it)  # what was sampled before the child saw the stop
    assert long.finished and time.perf_counter() - t < 5
    assert long.generated < 1_000_000 and rest < 1000
    assert len("".join(short)) == 25
    # a stop for a generation the child has not started yet: it ends at once, with nothing
    sampler_gen = sampler.generate([1], SamplingSettings(max_new_tokens=1_000_000, seed=3))
    queued = sampler.generate([1], SamplingSettings(max_new_tokens=1_000_000, seed=3))
    queued.stop()
    sampler_gen.stop()
    assert list(queued.chunks(timeout=30)) == [] and queued.finished
    list(sampler_gen.chunks(timeout=30))


def test_settings_are_checked_before_anything_is_sent(sampler):
    from tinygpt_tui.errors import SettingsError

    with pytest.raises(SettingsError):
        sampler.generate([1], SamplingSettings(temperature=-1))
    assert sampler.alive


def test_a_broken_model_is_reported_not_crashed_on(tmp_path, model_dir):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    sp = SamplerProcess().start()
    try:
        sp.load(broken)
        assert not sp.wait_ready(120)
        assert sp.load_error and "config.json" in sp.load_error and sp.alive
        # and it still loads a good one afterwards
        sp.load(model_dir)
        assert sp.wait_ready(120) and sp.ready_for(model_dir) and not sp.ready_for(broken)
    finally:
        sp.close()


def test_a_killed_child_is_reported_as_died(model_dir):
    sp = SamplerProcess().start()
    sp.load(model_dir)
    assert sp.wait_ready(120)
    g = sp.generate([1, 2], SamplingSettings(max_new_tokens=1_000_000, seed=1))
    it = g.chunks(timeout=60)
    next(it)
    sp.kill()
    with pytest.raises(RemoteError) as err:
        for _ in it:
            pass
    assert err.value.died and "exit code -9" in str(err.value)
    assert sp.dead and not sp.alive and not sp.ready_for(model_dir)
    with pytest.raises(RemoteError) as err:
        sp.generate([1], SamplingSettings(max_new_tokens=5))
    assert err.value.died
    sp.close()


def test_a_child_that_cannot_start_is_reported(tmp_path):
    sp = SamplerProcess(python=str(tmp_path / "no-such-python"))
    with pytest.raises(RemoteError) as err:
        sp.start()
    assert err.value.died and "cannot start" in str(err.value)


@pytest.mark.parametrize("how", ["kill", "interrupt"])
def test_the_child_dies_with_its_parent(model_dir, how):
    """However the parent ends (kill -9, or Ctrl+C in the terminal), the sampler process goes too."""
    parent = textwrap.dedent(
        f"""
        import signal, sys, time
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal's program has it (pytest may pass SIGINT on ignored)
        from tinygpt_tui.engine.remote import SamplerProcess
        from tinygpt_tui.sampler import SamplingSettings
        sp = SamplerProcess().start()
        sp.load({str(model_dir)!r})
        assert sp.wait_ready(120), sp.load_error or sp.dead
        g = sp.generate([1], SamplingSettings(max_new_tokens=1_000_000))
        next(g.chunks())
        print(sp.pid, flush=True)
        for _ in range(1200):
            time.sleep(0.1)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = p.stdout.readline()
        assert line.strip().isdigit(), p.stderr.read()
        child = int(line)
        assert not pid_gone(child)
        if how == "kill":
            p.kill()
        else:
            os.killpg(p.pid, signal.SIGINT)  # what the terminal sends to the whole foreground group
        p.wait(30)
        end = time.monotonic() + 10
        while not pid_gone(child) and time.monotonic() < end:
            time.sleep(0.05)
        assert pid_gone(child)
    finally:
        if p.poll() is None:
            p.kill()
