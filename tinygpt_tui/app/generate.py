"""The generate screen: pick a model, write a prompt, watch it write.

Three thread workers, each posting messages to this screen (app/messages.py) and touching no
widget: one lists the models folder, one loads the picked model, one samples. The sampler is
the compiled decoding step on a CPU, which releases the GIL while it computes, so the screen
repaints beside it at full speed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input

from tinygpt_tui.app.bars import FitLine, KeyBar, Part, TitleBar
from tinygpt_tui.app.messages import FOCUS_KEYS, error_line, reported, Chunk, Ended, LoadFailed, ModelLoaded, ModelsListed
from tinygpt_tui.app.output import GENERATED, NOTE, PROMPT, OutputView
from tinygpt_tui.app.sidebar import ModelList, SamplingPanel
from tinygpt_tui.engine.folder import NO_CHECKPOINT, SYNC_LISTING, TRAINING, ModelInfo, folder_signature
from tinygpt_tui.errors import TinyGPTError
from tinygpt_tui.tokenizer import one_line, printable

PICK_HINT = (
    "Pick a model on the left (↑ ↓ and Enter, or click), then write a prompt below.\n\n"
    "Esc stops, Ctrl+N continues, Ctrl+L clears; temperature and the rest are under Sampling. "
    "Ctrl+T trains a model, F3 compares runs, F4 runs an experiment or a ready-made lesson; "
    "Ctrl+P lists every command.\n"
)
MODELS_POLL_S = 2.0  # how often the models folder is checked for a change (a few stat calls)


@dataclass
class Stream:
    """One generation, as the screen sees it: its figures, and the event that stops its worker."""

    gen_id: int
    stop_event: threading.Event = field(default_factory=threading.Event)
    generated: int = 0  # characters shown
    started: float = field(default_factory=time.perf_counter)
    finished_at: float | None = None
    error: str = ""
    latencies: list = field(default_factory=list)  # per chunk: seconds from its sampling to the pane
    compiling: bool = False  # the sampler waits for its compiled step (once per machine): the status line says so

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def chars_per_s(self) -> float:
        return self.generated / max((self.finished_at or time.perf_counter()) - self.started, 1e-9) if self.generated >= 2 else 0.0


def compile_quiet_s() -> float:
    """How long the compiled decoder may be waited for before the status says it is compiling: a load from
    numba's cache (a second or two) is not worth a line. (Imported here: sampler imports numpy, 0.2 s off the first paint.)"""
    from tinygpt_tui import sampler

    return sampler.COMPILE_QUIET_S


def sample_chunks(loaded, ids: list[int], settings, stop_event, post, gen_id: int) -> None:
    """Run the sampler and post each run of text it yields as a Chunk (about 50 a second), then
    Ended. Runs in a worker thread; what was sampled before an error is still posted."""
    from tinygpt_tui.sampler import Generation

    gen = Generation(loaded.model, loaded.tokenizer, "", settings, stop_event, context_ids=ids)
    try:
        for text in gen.chunks():
            if stop_event.is_set():
                break
            post(Chunk(gen_id, text, time.perf_counter(), gen.compiling))
    except Exception as e:  # never a traceback on screen: one line that says what broke
        post(Ended(gen_id, error_line(e)))
    else:
        post(Ended(gen_id))


class GenerateScreen(Screen):
    """The default screen: sidebar of models, the output pane, the prompt and a status line."""

    AUTO_FOCUS = "#models"
    # the sidebar is 34 columns, or 47% of a narrow terminal (72 columns and under): a grid column
    # cannot say min(34, 47%), so the screen takes the class -narrow there (app.tcss)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (73, "-wide")]

    BINDINGS = [
        Binding("escape", "stop", "Stop", id="stop"),
        Binding("ctrl+n", "continue", "Continue", id="continue"),
        Binding("ctrl+l", "clear", "Clear", id="clear"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", show=False, id="toggle-sidebar"),  # (in the palette: the footer keeps Ctrl+T at 80 columns)
        Binding("ctrl+y", "copy_output", "Copy", show=False, id="copy"),
        Binding("f2", "inspect", "Inspect", id="inspect", priority=True),  # F2 works from the prompt too
        Binding("f5", "refresh_models", "Refresh models", show=False, id="refresh-models"),
        # priority: handled as the key is read, before the keys behind it are sent to the focused
        # widget (see action_focus_settings)
        Binding("f6", "focus_settings", "Settings", show=False, id="settings", priority=True),
        *FOCUS_KEYS,
        Binding("enter", "setting_done", "Done", show=False, priority=True, id="setting-done"),
    ]

    def __init__(self):
        super().__init__(id="generate")
        self.infos: list[ModelInfo] = []
        self.models_listed = False
        self.signature: tuple | None = None
        self.loaded = None  # engine.folder.Loaded, from load_for_sampling
        self.loaded_label = ""
        self.device_name = ""
        self.stream: Stream | None = None
        self.next_id = 0
        self.context = ""  # the raw text the next "continue" starts from (prompt + generated)
        self.loading_name: str | None = None
        self.pending_prompt: str | None = None  # submitted while the model was loading
        self.inspector = None  # the inspector screen while it is open

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        # The screen itself is the grid (app.tcss): sidebar | output over the prompt. No container
        # between them: each one costs the first frame a layout pass.
        yield TitleBar()
        with Vertical(id="sidebar"):
            yield ModelList(on_pick=self.pick, id="models")
            yield SamplingPanel(id="sampling")
        yield OutputView(id="output")
        prompt = Input(placeholder="Write a prompt, Enter to generate", id="prompt")
        prompt.select_on_focus = False  # coming back to it (Escape, a key typed in the pane) must not select its text
        yield prompt
        yield FitLine(id="status")  # the whole width: the model and device, and a run training meanwhile
        yield KeyBar()

    def on_mount(self) -> None:
        self.output = self.query_one("#output", OutputView)
        self.query_one("#models", ModelList).border_title = "Models"
        self.query_one("#sampling", SamplingPanel).border_title = "Sampling"
        self.output.border_title = "Output"
        self.check_models(first=True)
        self.update_status()
        self.set_interval(0.5, self.update_status)
        if self.app.watch_models:
            self.set_interval(MODELS_POLL_S, self.check_models)

    def on_unmount(self) -> None:
        if self.stream is not None:
            self.stream.stop_event.set()  # the sampler thread must not outlive the app

    # ------------------------------------------------------------ the models folder
    @reported("models folder")
    def check_models(self, first: bool = False) -> None:
        """Read the models folder again if it changed (a few stat calls if not), in a worker; at the
        start, a small folder is read here, so that the first frame lists it."""
        from tinygpt_tui.engine.folder import model_entries, read_info

        signature = folder_signature(self.app.models_dir)
        if signature == self.signature:
            return
        self.signature = signature
        folders = model_entries(self.app.models_dir) if first else None  # (none if missing or unreadable)
        if folders is not None and len(folders) <= SYNC_LISTING:
            self.set_models([read_info(f, name) for name, f in folders])
            return
        if first:
            self.query_one("#models", ModelList).border_subtitle = "reading …"
        self._list_models()

    def action_refresh_models(self, quiet: bool = False) -> None:
        self.signature = None  # read whatever its fingerprint
        self.check_models()
        if not quiet:
            self.notify("Models refreshed.", timeout=2)

    @work(thread=True, exclusive=True, group="models", exit_on_error=False)
    def _list_models(self, wanted: str | None = None) -> None:
        """Read the models folder; wanted: a model to pick once it is read (action_pick_named)."""
        from tinygpt_tui.engine.folder import list_models

        try:
            infos = list_models(self.app.models_dir)
        except Exception as e:  # the list shown stays; the app goes on
            self.app.call_from_thread(self.notify, error_line(e), title="models folder", severity="error", timeout=10)
        else:
            self.post_message(ModelsListed(infos, wanted))

    @on(ModelsListed)
    @reported("models folder")
    def _models_listed(self, message: ModelsListed) -> None:
        self.set_models(message.infos)
        if message.wanted is not None:
            self.pick_listed(message.wanted)

    def set_models(self, infos: list[ModelInfo]) -> None:
        self.infos, self.models_listed = list(infos), True
        models = self.query_one("#models", ModelList)
        out = self.query_one("#output", OutputView)
        models.set_models(infos)
        kinds = Counter("ready" if i.ok else {TRAINING: "training", NO_CHECKPOINT: "no checkpoint"}.get(i.status, "broken") for i in infos)
        models.border_subtitle = ", ".join(f"{kinds[k]} {k}" for k in ("ready", "training", "no checkpoint", "broken") if kinds[k] or k == "ready")
        if infos and self.loaded is None and self.loading_name is None and not self.context:
            if out.text != printable(PICK_HINT):
                out.clear()
                out.append(PICK_HINT, NOTE)
                out.show_from_top()  # (its first line says what to do: in a small terminal too)
        elif not infos and out.text == printable(PICK_HINT):
            out.clear()
        if not infos and not len(out):
            out.append(f"No models yet in {one_line(self.app.models_dir)}.\n\nTrain one with Ctrl+T (the training screen), "
                       "or from a terminal: tinygpt train shakespeare --name mine --preset tiny --minutes 5\n", NOTE)

    # ------------------------------------------------------------ picking a model
    def pick(self, info: ModelInfo) -> None:
        if info.status == NO_CHECKPOINT:
            self.notify(f"{one_line(info.name)}: a run stopped before its first checkpoint; Delete removes the folder.", severity="warning")
            return
        if not info.ok and info.status == TRAINING:
            self.notify(f"{one_line(info.name)} is training; it can be loaded once it saves its first checkpoint.")
            return
        if not info.ok:
            self.notify(one_line(info.error), title=f"{one_line(info.name)} is broken", severity="error")
            return
        self.query_one("#prompt").focus()  # type while it loads; Enter waits for it
        if self.loaded is not None and self.loaded.path == info.path and self.loading_name is None:
            return
        self.loading_name = info.name
        self.update_status()
        self._load(info)

    def action_pick_named(self, name: str) -> None:
        """Load a model by name (from the palette or the runs screen). A name the list doesn't have yet (a run
        that finished a moment ago) is picked once the models worker has read the folder again."""
        if any(i.name == name for i in self.infos):
            self.pick_listed(name)
        else:
            self._list_models(wanted=name)

    def pick_listed(self, name: str) -> None:
        """Pick the model of this name in the list, or say there is none."""
        for info in (i for i in self.infos if i.name == name):
            self.query_one("#models", ModelList).highlighted = self.infos.index(info)
            self.pick(info)
            return
        self.notify(f"no model named {one_line(name)} in {one_line(str(self.app.models_dir))}", severity="error")

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, info: ModelInfo) -> None:
        """Load the model for the sampler, and sample a few characters so the first generation starts at full speed."""
        from tinygpt_tui.engine.folder import load_for_sampling
        from tinygpt_tui.sampler import Generation, SamplingSettings

        try:
            loaded = load_for_sampling(info.path)
            for _ in Generation(loaded.model, loaded.tokenizer, "", SamplingSettings(max_new_tokens=8, seed=0)):
                pass
            if hasattr(loaded.model, "parameters"):  # a PyTorch model: a GPU, or no numba
                from tinygpt_tui.engine.device import describe

                where = describe(next(loaded.model.parameters()).device)
            else:
                where = "CPU (compiled)"
        except TinyGPTError as e:
            self.post_message(LoadFailed(info, str(e)))
        except Exception as e:  # a torch error on a strange file: still one line, never a crash
            self.post_message(LoadFailed(info, f"{type(e).__name__}: {e}"))
        else:
            self.post_message(ModelLoaded(info, loaded, where))

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        self.loading_name = None
        self.pending_prompt = None
        self.update_status()
        self.notify(one_line(message.error), title=f"cannot load {one_line(message.info.name)}", severity="error", timeout=8)

    @on(ModelLoaded)
    @reported("loading a model")
    def _loaded(self, message: ModelLoaded) -> None:
        info = message.info
        self.stop_generation()
        self.stream = None  # its figures were the previous model's
        self.loaded, self.device_name, self.loading_name = message.loaded, message.device_name, None
        self.loaded_label = info.name  # the list's name: an experiment's member is "exp/member", not its folder's alone
        self.refresh_bindings()
        self.query_one("#models", ModelList).mark_loaded(info.name)
        self.sub_title = f"{one_line(info.name)} · {self.device_name}"
        self.update_status()
        if not self.context:
            out = self.query_one("#output", OutputView)
            out.clear()
            vocab = f"{info.vocab_size} in its vocabulary" if info.tokenizer == "char" else f"a byte-level BPE of {info.vocab_size} tokens"
            out.append(f"{one_line(info.name)}: {info.params:,} parameters, context {info.block_size} {'characters' if info.tokenizer == 'char' else 'tokens'}, "
                       f"{vocab}, trained on {one_line(info.corpus or '?')}. Write a prompt below.\n", NOTE)
        self.query_one("#prompt", Input).focus()
        if self.pending_prompt is not None:
            prompt, self.pending_prompt = self.pending_prompt, None
            self.start(prompt, fresh=True)

    # ------------------------------------------------------------ generating
    def on_key(self, event: events.Key) -> None:
        """A printable key pressed where nothing takes text (the model list, the output pane) goes to the prompt."""
        if not (event.is_printable and event.character) or isinstance(self.focused, Input):
            return  # an input took it, or refused it (a letter in a number field)
        event.stop()
        event.prevent_default()
        prompt = self.query_one("#prompt", Input)
        prompt.focus()
        prompt.insert_text_at_cursor(event.character)

    def action_setting_done(self) -> None:
        """Enter in a setting: back to the prompt at once (a priority key), and the keys typed behind it with it."""
        self.set_focus(self.query_one("#prompt", Input))

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        if self.start(event.value, fresh=True):  # (refused, no model picked yet: the prompt stays, to send again)
            event.input.value = ""

    def start(self, prompt: str, fresh: bool = True) -> bool:
        """Generate from a prompt (fresh) or continue the text in the pane; False where it cannot (said why)."""
        if self.loading_name is not None and fresh:
            self.pending_prompt = prompt
            self.notify(f"Loading {one_line(self.loading_name)}; the prompt runs as soon as it is ready.", timeout=3)
            return True
        if self.loaded is None:
            self.notify("Pick a model in the sidebar first (arrows, then Enter).", severity="warning")
            self.query_one("#models").focus()
            return False
        try:
            settings = self.query_one("#sampling", SamplingPanel).values()
        except TinyGPTError as e:
            self.notify(str(e), title="sampling settings", severity="error")
            return False
        self.stop_generation()
        tok = self.loaded.tokenizer
        if fresh:
            enc = tok.encode(prompt)
            if enc.dropped:
                shown = ", ".join(repr(printable(c)) for c in enc.dropped[:12])
                more = f" and {len(enc.dropped) - 12} more" if len(enc.dropped) > 12 else ""
                self.notify(f"The model does not know {shown}{more}; left out of the prompt.", title="unknown characters", severity="warning")
            out = self.query_one("#output", OutputView)
            out.clear()
            if prompt:
                out.append(prompt, PROMPT)
            self.context = tok.decode(enc.ids)  # (the characters it knows: all of them for a BPE)
        from tinygpt_tui.engine.inspect import context_window

        self.next_id += 1
        stream = self.stream = Stream(self.next_id)
        ids = context_window(tok, self.context, self.loaded.model.cfg.block_size)[0]  # the last block_size tokens
        self._sample(stream, self.loaded, ids, settings)
        self.update_status()
        self.refresh_bindings()
        return True

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def _sample(self, stream: Stream, loaded, ids: list[int], settings) -> None:
        sample_chunks(loaded, ids, settings, stream.stop_event, self.post_message, stream.gen_id)

    def _current(self, gen_id: int) -> Stream | None:
        s = self.stream
        return s if s is not None and s.gen_id == gen_id else None  # (a replaced generation's late messages: dropped)

    @on(Chunk)
    def _chunk(self, message: Chunk) -> None:
        s = self._current(message.gen_id)
        if s is None:
            return
        s.latencies.append(time.perf_counter() - message.sampled_at)
        s.generated += len(message.text)
        if s.compiling != message.compiling:
            s.compiling = message.compiling
            self.update_status()
        self.context += message.text
        trimmed = max(len(self.context) - 50_000, 0) if len(self.context) > 100_000 else 0
        self.context = self.context[trimmed:]
        self.output.append(message.text, GENERATED)
        if self.inspector is not None:  # the inspector follows the text while it streams (it throttles itself)
            self.inspector.update_context(self.context, trimmed)

    @on(Ended)
    def _ended(self, message: Ended) -> None:
        s = self._current(message.gen_id)
        if s is None or s.finished:
            return
        s.finished_at = time.perf_counter()
        if message.error:
            s.error = message.error
            self.notify(one_line(s.error), title="generation failed", severity="error")
        self.refresh_bindings()
        self.update_status()

    def stop_generation(self) -> bool:
        """Stop the running generation (what it has already sampled still arrives)."""
        s = self.stream
        if s is None or s.finished:
            return False
        s.stop_event.set()
        return True

    @property
    def generating(self) -> bool:
        return self.stream is not None and not self.stream.finished and not self.stream.stop_event.is_set()

    # ------------------------------------------------------------ actions
    def check_action(self, action: str, parameters) -> bool | None:
        if action == "stop":  # dimmed when there is nothing to stop and the prompt has the focus
            prompt = self.query("#prompt")
            return True if self.generating or (prompt and not prompt.first().has_focus) else None
        if action == "setting_done":  # only in a setting (Enter elsewhere does what it always does): the keys panel said "⏎ Done" in the prompt
            return isinstance(self.focused, Input) and (self.focused.id or "").startswith("set-")
        if action in ("continue", "inspect"):
            return True if self.loaded is not None else None
        return True

    def action_stop(self) -> None:
        """Escape: stop the text being written; with nothing to stop, back to the prompt."""
        if self.stop_generation():
            self.update_status()
            self.refresh_bindings()
        else:
            self.action_focus_prompt()

    def action_focus_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def action_continue(self) -> None:
        self.start("", fresh=self.loaded is not None and not self.context and not len(self.query_one("#output", OutputView)))

    def action_clear(self) -> None:
        self.stop_generation()
        self.stream = None
        self.context = ""
        self.query_one("#output", OutputView).clear()
        self.update_status()

    def action_toggle_sidebar(self) -> None:
        self.toggle_class("-no-sidebar")

    async def action_focus_settings(self) -> None:
        self.remove_class("-no-sidebar")
        field = await self.query_one("#sampling", SamplingPanel).edit("temperature")  # (the fields mounted on the first edit)
        # focus moves now, not once the app's queue gets to it (Widget.focus): keys typed right
        # behind F6, in the same burst, then go to the field rather than to the prompt
        self.set_focus(field)

    def action_copy_output(self) -> None:
        text = self.query_one("#output", OutputView).text
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied {len(text):,} characters to the clipboard.")

    def action_inspect(self) -> None:
        if self.loaded is None:
            self.notify("Pick a model first: the inspector looks inside the loaded model.", severity="warning")
            return
        from tinygpt_tui.app.inspector import InspectorScreen

        text = self.context or self.query_one("#prompt", Input).value  # nothing generated yet: the prompt typed
        if not text:
            self.notify("Write a prompt first: the inspector looks inside the model at the text on screen.", severity="warning")
            return
        # the raw text, not the on-screen form; the inspector loads a PyTorch model itself unless the sampler runs one;
        torch_model = self.loaded.model if hasattr(self.loaded.model, "parameters") else None  # its bars at the temperature
        self.inspector = InspectorScreen(self.loaded.path, self.loaded.tokenizer, text, model=torch_model,  # sampled at
                                         temperature=self.query_one("#sampling", SamplingPanel).temperature())
        self.app.push_screen(self.inspector, lambda _=None: setattr(self, "inspector", None))

    # ------------------------------------------------------------ status
    @reported("status line")
    def update_status(self) -> None:
        """The generation, the model and device, and a run training meanwhile (FitLine drops the least important first)."""
        parts = []
        s = self.stream
        if s is not None:
            state = "stopped" if s.stop_event.is_set() else ("done" if s.finished else "generating")
            parts.append(Part(state, 0, {"generating": "bold green", "stopped": "bold yellow", "done": "bold"}[state]))
            if s.compiling and state == "generating" and time.perf_counter() - s.started >= compile_quiet_s():
                parts.append(Part("compiling the decoder (once): faster soon", 4, "yellow", "compiling decoder"))  # (fits 120 columns)
            parts.append(Part(f"{s.generated:,} chars", 5))
            if s.chars_per_s:
                parts.append(Part(f"{s.chars_per_s:,.0f} chars/s", 8, short=f"{s.chars_per_s:,.0f}/s"))
        if self.loading_name:
            parts.append(Part(f"loading {one_line(self.loading_name)} …", 1, "bold yellow", "loading …"))
        elif self.loaded is None:
            parts.append(Part("no model loaded", 1, "dim", "no model"))
        else:
            parts += [Part(one_line(self.loaded_label), 1, "bold"), Part(self.device_name, 2, "dim")]
        job = self.app.training
        if job is not None:
            parts += job.status_parts(rank=3)
        self.query_one("#status", FitLine).show(parts)  # redrawn only when a part changed, without a layout pass
