"""The messages workers post, one class per event: a worker thread never touches a widget, it posts
one of these to the screen (or app) that owns it. `gen_id` and `job` say which generation or run a
message belongs to, so a late message from a replaced one is ignored. (And what both screens
share: the focus keys, and `reported` for callbacks that read from disk.)
"""

from __future__ import annotations

import functools

from textual.binding import Binding
from textual.message import Message

from tinygpt_tui.errors import TinyGPTError
from tinygpt_tui.tokenizer import printable


def error_line(e: BaseException) -> str:
    """An exception as one line for a notification: ours say what is wrong; anything else is named."""
    text = str(e) if isinstance(e, TinyGPTError) else f"{type(e).__name__}: {e}"
    if isinstance(e, OSError) and e.strerror and not isinstance(e, TinyGPTError):  # (the system's words, the path cut)
        name = "" if e.filename is None else str(e.filename)
        text = f"{e.strerror}: {name if len(name) <= 120 else name[:60] + '…' + name[-40:]}" if name else e.strerror
    return printable(text.splitlines()[0] if text else type(e).__name__)[:300]


def reported(what: str):
    """For a handler or periodic callback that touches data from disk (a folder listing, a followed
    metrics.jsonl): an error becomes a notification titled `what`, and the app goes on. A callback
    that keeps failing on the same record says so once, not four times a second."""

    def wrap(fn):
        last = [None]

        def report(node, e: Exception) -> None:
            line = error_line(e)
            if line != last[0]:
                last[0] = line
                node.notify(line, title=what, severity="error", timeout=10)

        @functools.wraps(fn)
        def run(node, *a, **kw):
            try:
                return fn(node, *a, **kw)
            except Exception as e:  # noqa: BLE001 (the point: nothing from disk takes the app down)
                report(node, e)
        return run

    return wrap

# Tab and Shift+Tab as priority keys: the focus moves as the key is read, before the keys typed
# behind it are handed to a widget. (Textual hands each key to the widget focused when the app
# reads it; "0.7", Tab, "7" typed in one burst put all of it in the first field otherwise.)
FOCUS_KEYS = (
    Binding("tab", "app.focus_next", "Next field", show=False, priority=True, id="focus-next"),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True, id="focus-previous"),
)


class ModelsListed(Message):
    """The models folder was read (a list of engine.folder.ModelInfo); wanted: a model's name to pick from it
    (one asked for by name before the list had it)."""

    def __init__(self, infos: list, wanted: str | None = None):
        super().__init__()
        self.infos = infos
        self.wanted = wanted


class ModelLoaded(Message):
    """A picked model is loaded (engine.folder.Loaded) on a device (its name, for the status line)."""

    def __init__(self, info, loaded, device_name: str):
        super().__init__()
        self.info, self.loaded, self.device_name = info, loaded, device_name


class LoadFailed(Message):
    """A picked model could not be loaded: one line saying why."""

    def __init__(self, info, error: str):
        super().__init__()
        self.info, self.error = info, error


class Chunk(Message):
    """Characters a generation wrote, when they were sampled (perf_counter), and whether the sampler
    was still waiting for its compiled step (a first run on a machine: numpy meanwhile)."""

    def __init__(self, gen_id: int, text: str, sampled_at: float, compiling: bool = False):
        super().__init__()
        self.gen_id, self.text, self.sampled_at, self.compiling = gen_id, text, sampled_at, compiling


class Ended(Message):
    """A generation ended: its length was reached, it was stopped, or (error: one line) it failed."""

    def __init__(self, gen_id: int, error: str = ""):
        super().__init__()
        self.gen_id, self.error = gen_id, error


class TrainingRecord(Message):
    """A training run (app.jobs.TrainingJob) produced a metrics record (start, step, eval, saved, finish)."""

    def __init__(self, job, record: dict):
        super().__init__()
        self.job, self.record = job, record


class ProbeNote(Message):
    """A note of the machine probe's (engine/probe.settle: "measuring this machine once ...", "ignoring the probe
    cache ...") from a worker about to train or time steps; the app shows it as a notification titled ``title``."""

    def __init__(self, text: str, title: str):
        super().__init__()
        self.text, self.title = text, title

    @classmethod
    def poster(cls, post, title: str):
        """A ``note`` callback for probe.settle (and what calls it) that posts each note with ``post``."""
        return lambda text: post(cls(text, title))


class TrainingEnded(Message):
    """A training run's thread ended: state is done, stopped or failed (then error says why)."""

    def __init__(self, job, state: str, error: str = ""):
        super().__init__()
        self.job, self.state, self.error = job, state, error


class Inspected(Message):
    """The inspector's forward pass for a context is done (an engine.inspect result, or an error)."""

    def __init__(self, context: str, result=None, error: str = "", start: int = 0):
        super().__init__()
        self.context, self.result, self.error = context, result, error
        self.start = start  # characters cut from the context's start before it (InspectorScreen.update_context)


class RunsListed(Message):
    """The models folder was read for the runs screen (engine.runs.RunSummary of every run), or error."""

    def __init__(self, summaries: list, error: str = ""):
        super().__init__()
        self.summaries, self.error = summaries, error


class CurvesLoaded(Message):
    """Runs' metrics.jsonl were read: name -> engine.runs.Curves (handed over: the worker keeps none), or an error line."""

    def __init__(self, curves: dict):
        super().__init__()
        self.curves = curves


class Estimated(Message):
    """The experiment screen's plan was timed (engine.experiment.Estimate), or error says why not."""

    def __init__(self, plan, estimate, resume: bool, error: str = ""):
        super().__init__()
        self.plan, self.estimate, self.resume, self.error = plan, estimate, resume, error


class ExperimentUpdate(Message):
    """An experiment (app.jobs.ExperimentJob) moved on: an engine.experiment event, with what its thread
    read for it (a member's record, its curves, the ranked rows, the samples at the end)."""

    def __init__(self, job, event, record: dict | None = None, curves=None, rows: list | None = None, samples: list | None = None):
        super().__init__()
        self.job, self.event, self.record, self.curves, self.rows, self.samples = job, event, record, curves, rows, samples


class ExperimentEnded(Message):
    """An experiment's thread ended: finished, stopped or failed (then error says why)."""

    def __init__(self, job, state: str, error: str = ""):
        super().__init__()
        self.job, self.state, self.error = job, state, error
