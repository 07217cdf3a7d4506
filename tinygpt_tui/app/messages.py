"""The messages workers post: one class per event. Nothing else crosses from a thread to the screen.
(And the focus keys both screens share, FOCUS_KEYS.)

A worker thread never touches a widget; it posts one of these to the screen (or app) that owns
it, and the handler runs on Textual's thread. `gen_id` and `job` say which generation or run a
message belongs to, so a late message from a replaced one is ignored.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message

# Tab and Shift+Tab as priority keys: the focus moves as the key is read, before the keys typed
# behind it are handed to a widget. (Textual hands each key to the widget focused when the app
# reads it; "0.7", Tab, "7" typed in one burst put all of it in the first field otherwise.)
FOCUS_KEYS = (
    Binding("tab", "app.focus_next", "Next field", show=False, priority=True, id="focus-next"),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True, id="focus-previous"),
)


class ModelsListed(Message):
    """The models folder was read (a list of engine.folder.ModelInfo)."""

    def __init__(self, infos: list):
        super().__init__()
        self.infos = infos


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
    """Characters a generation wrote, and when the first of them was sampled (perf_counter)."""

    def __init__(self, gen_id: int, text: str, sampled_at: float):
        super().__init__()
        self.gen_id, self.text, self.sampled_at = gen_id, text, sampled_at


class Done(Message):
    """A generation ended: its length was reached, or it was stopped."""

    def __init__(self, gen_id: int):
        super().__init__()
        self.gen_id = gen_id


class Failed(Message):
    """A generation ended on an error: one line saying why."""

    def __init__(self, gen_id: int, error: str):
        super().__init__()
        self.gen_id, self.error = gen_id, error


class TrainingRecord(Message):
    """A training run (app.training.TrainingJob) produced a metrics record (start, step, eval, saved, finish)."""

    def __init__(self, job, record: dict):
        super().__init__()
        self.job, self.record = job, record


class TrainingEnded(Message):
    """A training run's thread ended: state is done, stopped or failed (then error says why)."""

    def __init__(self, job, state: str, error: str = ""):
        super().__init__()
        self.job, self.state, self.error = job, state, error


class Inspected(Message):
    """The inspector's forward pass for a context is done (an engine.inspect result, or an error)."""

    def __init__(self, context: str, result=None, error: str = ""):
        super().__init__()
        self.context, self.result, self.error = context, result, error
