"""The generate screen: pick a model, write a prompt, watch it write."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Static

from tinygpt_tui.engine.folder import ModelInfo, folder_signature
from tinygpt_tui.errors import TinyGPTError
from tinygpt_tui.tokenizer import printable
from tinygpt_tui.app.bars import KeyBar, TitleBar
from tinygpt_tui.app.output import GENERATED, NOTE, PROMPT, OutputView
from tinygpt_tui.app.sidebar import ModelList, SamplingPanel

PICK_HINT = (
    "Pick a model on the left (↑ ↓ and Enter, or click), then write a prompt below.\n\n"
    "Esc stops, Ctrl+N continues, Ctrl+L clears; temperature and the rest are under Sampling. "
    "Ctrl+T opens the training screen, Ctrl+P lists every command.\n"
)
FLUSH_INTERVAL = 1 / 40  # seconds between hand-overs of sampled text to the screen (both samplers)


@dataclass
class Stream:
    """One generation: the sampler thread appends, the screen drains (list appends are atomic)."""

    gen_id: int
    stop_event: threading.Event = field(default_factory=threading.Event)
    chunks: list = field(default_factory=list)  # (text, t_sampled) from the thread
    drained: int = 0
    generated: int = 0
    started: float = field(default_factory=time.perf_counter)
    first_char_at: float | None = None
    finished_at: float | None = None
    finished: bool = False
    error: str = ""
    latencies: list = field(default_factory=list)  # per drain: seconds from the oldest character's sampling to the pane
    remote: object = None  # core.remote.RemoteGeneration while the sampler process writes it
    where: str = "thread"  # "process" (the sampler process) or "thread" (in the app's process)

    def stop(self) -> None:
        self.stop_event.set()
        remote = self.remote
        if remote is not None:
            try:
                remote.stop()
            except Exception:  # the process is gone: the worker finds out and finishes the stream
                pass

    @property
    def complete(self) -> bool:
        """Finished, and every character is in the pane."""
        return self.finished and self.drained >= len(self.chunks)

    @property
    def chars_per_s(self) -> float:
        if self.first_char_at is None or self.generated < 2:
            return 0.0
        end = self.finished_at or time.perf_counter()
        return self.generated / max(end - self.started, 1e-9)


class GenerateScreen(Screen):
    """The default screen: sidebar of models, the output pane, the prompt and a status line."""

    AUTO_FOCUS = "#models"

    BINDINGS = [
        Binding("escape", "stop", "Stop", id="stop"),
        Binding("ctrl+n", "continue", "Continue", id="continue"),
        Binding("ctrl+l", "clear", "Clear", id="clear"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", id="toggle-sidebar"),
        Binding("ctrl+y", "copy_output", "Copy", show=False, id="copy"),
        Binding("f2", "inspect", "Inspect", id="inspect", priority=True),  # F2 works from the prompt too
        # priority: handled as the key is read, before the keys behind it are sent to the focused
        # widget (see action_focus_settings)
        Binding("f6", "focus_settings", "Settings", show=False, id="settings", priority=True),
    ]

    class Flush(Message):
        """The sampler thread has new characters (posted at most ~30 times a second)."""

        def __init__(self, gen_id: int):
            super().__init__()
            self.gen_id = gen_id

    class Done(Message):
        def __init__(self, gen_id: int):
            super().__init__()
            self.gen_id = gen_id

    def __init__(self):
        super().__init__(id="generate")
        self.loaded = None  # core.checkpoint.Loaded
        self.device_name = ""
        self.stream: Stream | None = None
        self._next_id = 0
        self.context = ""  # the raw text the next "continue" starts from (prompt + generated)
        self.loading_name: str | None = None
        self.pending_prompt: str | None = None  # submitted while the model was loading
        self.inspector = None  # the inspector screen while it is open
        self._status_at = 0.0
        self._status_shown: Text | None = None
        self._train_status_shown: Text | None = None

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield TitleBar()
        with Horizontal(id="gen-body"):
            with Vertical(id="sidebar"):
                yield ModelList(on_pick=self.pick, id="models")
                yield SamplingPanel(id="sampling")
            with Vertical(id="main"):
                with Vertical(id="output-box"):  # the border and padding: the pane itself draws only lines
                    yield OutputView(id="output")
                prompt = Input(placeholder="Write a prompt, Enter to generate", id="prompt")
                prompt.select_on_focus = False  # coming back to it (Escape, a key typed in the pane) must not select its text
                yield prompt
                with Horizontal(id="status-row"):
                    yield Static(id="status")
                    yield Static(id="train-status")
        yield KeyBar()

    def _compositor_refresh(self) -> None:
        app = self.app
        if self is app.screen and app.in_start_up_batch():
            # Textual would draw this frame and drop it; the whole screen is drawn once the batch
            # is over instead (see TinyGPTApp.in_start_up_batch): 4% of the work before the first frame.
            app.hold_frame(self)
            return
        super()._compositor_refresh()

    def on_mount(self) -> None:
        # The screen's (empty) notification rack is hidden only when the screen resumes, after the
        # first frame: that change of layout redrew the whole screen once more before the first
        # paint was done. Hidden now, that later call changes nothing.
        try:
            from textual.widgets._toast import ToastRack

            rack = self.query_one(ToastRack)
            if not self.app._notifications:
                rack.display = False
        except Exception:  # a Textual without it: nothing to save
            pass
        self.query_one("#models", ModelList).border_title = "Models"
        self.query_one("#sampling", SamplingPanel).border_title = "Sampling"
        self.query_one("#output-box").border_title = "Output"
        self.app.list_models_now()
        self.set_models(self.app.model_infos)
        self.update_status()
        self.set_interval(0.5, self.update_status)

    def on_unmount(self) -> None:
        if self.stream is not None:
            self.stream.stop()  # the sampler thread must not outlive the app

    def set_models(self, infos: list[ModelInfo]) -> None:
        models = self.query_one("#models", ModelList)
        out = self.query_one("#output", OutputView)
        if not self.app.models_listed:  # a large folder, read in a worker after the first frame
            models.border_subtitle = "reading …"
            if folder_signature(self.app.models_dir):  # a few stat calls
                out.clear()
                out.append(PICK_HINT, NOTE)
            return
        models.set_models(infos)
        ok = sum(1 for i in infos if i.ok)
        models.border_subtitle = f"{ok} ready" + (f", {len(infos) - ok} broken" if len(infos) > ok else "")
        if infos and self.loaded is None and self.loading_name is None and not self.context:
            if out.text != printable(PICK_HINT):
                out.clear()
                out.append(PICK_HINT, NOTE)
        elif not infos and out.text == printable(PICK_HINT):
            out.clear()
        if not infos:
            if not len(out):
                out.append(
                    f"No models yet in {self.app.models_dir}.\n\nTrain one with Ctrl+T (the training screen), "
                    "or from a terminal: tinygpt train shakespeare --name mine --preset tiny --minutes 5\n",
                    NOTE,
                )

    # ------------------------------------------------------------ models
    def pick(self, info: ModelInfo) -> None:
        if not info.ok:
            self.notify(printable(info.error), title=f"{printable(info.name)} is broken", severity="error")
            return
        if self.loaded is not None and self.loaded.path == info.path and self.loading_name is None:
            self.query_one("#prompt").focus()
            return
        self.loading_name = info.name
        self.update_status()
        self.query_one("#prompt").focus()  # type while it loads; Enter waits for it
        self.app.prepare_sampler(info.path)  # the sampler process loads it too, in parallel
        self._load(info)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, info: ModelInfo) -> None:
        try:
            from tinygpt_tui.engine.folder import load_model
            from tinygpt_tui.engine.device import describe, pick_device

            device = pick_device("auto")
            loaded = load_model(info.path, device=device)
            name = describe(device)
        except TinyGPTError as e:
            self.app.call_from_thread(self._load_failed, info, str(e))
            return
        except Exception as e:  # a torch error on a strange file: still one line, never a crash
            self.app.call_from_thread(self._load_failed, info, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._loaded, info, loaded, name)

    def _load_failed(self, info: ModelInfo, message: str) -> None:
        self.loading_name = None
        self.pending_prompt = None
        self.update_status()
        self.notify(printable(message), title=f"cannot load {printable(info.name)}", severity="error", timeout=8)

    def _loaded(self, info: ModelInfo, loaded, device_name: str) -> None:
        self.stop_generation()
        self.stream = None  # its figures were the previous model's
        self.loaded, self.device_name, self.loading_name = loaded, device_name, None
        self.refresh_bindings()
        self.query_one("#models", ModelList).mark_loaded(info.name)
        self.app.sub_title = f"{printable(info.name)} · {device_name}"
        self.update_status()
        out = self.query_one("#output", OutputView)
        if not self.context:
            out.clear()
            out.append(
                f"{info.name}: {info.params:,} parameters, context {info.block_size} characters, "
                f"{info.vocab_size} in its vocabulary, trained on {info.corpus or '?'}. Write a prompt below.\n",
                NOTE,
            )
        self.query_one("#prompt", Input).focus()
        if self.pending_prompt is not None:
            prompt, self.pending_prompt = self.pending_prompt, None
            self.start(prompt, fresh=True)

    # ------------------------------------------------------------ generating
    def on_key(self, event: events.Key) -> None:
        """A printable key pressed where nothing takes text (the model list, the read-only output
        pane) is never lost: it goes to the prompt. Typing a prompt while the model loads, or
        right after the app opens, just works."""
        if not (event.is_printable and event.character) or isinstance(self.focused, Input):
            return  # an input took it, or refused it (a letter in a number field)
        event.stop()
        event.prevent_default()
        prompt = self.query_one("#prompt", Input)
        prompt.focus()
        prompt.insert_text_at_cursor(event.character)

    @on(Input.Submitted, "#sampling Input")
    def _setting_submitted(self) -> None:
        self.query_one("#prompt", Input).focus()  # Enter in a setting: back to writing prompts

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        self.start(event.value, fresh=True)
        event.input.value = ""

    def start(self, prompt: str, fresh: bool = True) -> None:
        """Generate from a prompt (fresh) or continue the text in the pane."""
        if self.loading_name is not None and fresh:
            self.pending_prompt = prompt
            self.notify(f"Loading {printable(self.loading_name)}; the prompt runs as soon as it is ready.", timeout=3)
            return
        if self.loaded is None:
            self.notify("Pick a model in the sidebar first (arrows, then Enter).", severity="warning")
            self.query_one("#models").focus()
            return
        try:
            settings = self.query_one("#sampling", SamplingPanel).values()
        except TinyGPTError as e:
            self.notify(str(e), title="sampling settings", severity="error")
            return
        self.stop_generation()
        out = self.query_one("#output", OutputView)
        tok = self.loaded.tokenizer
        if fresh:
            enc = tok.encode(prompt)
            if enc.dropped:
                shown = ", ".join(repr(printable(c)) for c in enc.dropped[:12])
                more = f" and {len(enc.dropped) - 12} more" if len(enc.dropped) > 12 else ""
                self.notify(f"The model does not know {shown}{more}; left out of the prompt.", title="unknown characters", severity="warning")
            out.clear()
            if prompt:
                out.append(prompt, PROMPT)
            context = "".join(c for c in prompt if c in tok.stoi)
        else:
            context = self.context
        self.context = context
        self._next_id += 1
        stream = self.stream = Stream(self._next_id)
        window = self.loaded.model.cfg.block_size
        ids = tok.encode(context[-window:]).ids
        sampler = self.app.sampler_ready_for(self.loaded.path)
        if sampler is not None:
            try:
                stream.remote = sampler.generate(ids, settings)
                stream.where = "process"
            except Exception as e:  # it died since: this one (and the next) run in the app's process
                self.app.sampler_failed(str(e))
        self._sample(stream, self.loaded, ids, settings)
        self.update_status()
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def _sample(self, stream: Stream, loaded, ids: list[int], settings) -> None:
        """Hand the stream's text to the screen about 40 times a second, from wherever it is sampled.

        In the sampler process (stream.remote) the text arrives in chunks and this thread only
        passes them on; otherwise (or when the process dies mid-stream) it runs the sampler here.
        """
        post = self.post_message
        try:
            if stream.remote is not None:
                from tinygpt_tui.engine.remote import RemoteError

                try:
                    for text, sampled in stream.remote.chunks():
                        self._hand_over(stream, text, sampled)
                    return
                except RemoteError as e:
                    if not e.died:
                        raise
                    stream.remote = None
                    stream.where = "thread"
                    if stream.stop_event.is_set():  # stopped anyway (or the app is closing: no call into it)
                        return
                    self.app.call_from_thread(self.app.sampler_failed, str(e))
                    if stream.generated >= settings.max_new_tokens:
                        return
                    # carry on in this process from the last character shown
                    window = loaded.model.cfg.block_size
                    text = "".join(c[0] for c in stream.chunks)
                    ids = (list(ids) + loaded.tokenizer.encode(text).ids)[-window:]
                    settings = type(settings)(**{**settings.__dict__, "max_new_tokens": settings.max_new_tokens - stream.generated})
            self._sample_here(stream, loaded, ids, settings)
        except TinyGPTError as e:
            stream.error = str(e)
        except Exception as e:
            stream.error = f"{type(e).__name__}: {e}"
        finally:
            stream.finished_at = time.perf_counter()
            stream.finished = True
            post(self.Done(stream.gen_id))

    def _hand_over(self, stream: Stream, text: str, sampled: float) -> None:
        """(worker thread) Queue text for the screen; post_message is thread-safe and never blocks."""
        stream.chunks.append((text, sampled))
        stream.generated += len(text)
        if stream.first_char_at is None:
            stream.first_char_at = time.perf_counter()
        self.post_message(self.Flush(stream.gen_id))

    def _sample_here(self, stream: Stream, loaded, ids: list[int], settings) -> None:
        """The sampler in this process's thread (shares the GIL with the screen: the fallback)."""
        from tinygpt_tui.sampler import Generation, chunked

        # PyTorch's operations, not the compiled step: loading that (or compiling it, the first
        # time on a machine) would hold the GIL, and so the screen, for a moment in this process
        gen = Generation(loaded.model, loaded.tokenizer, "", settings, stream.stop_event, context_ids=ids, backend="torch")
        for text, first in chunked(gen, FLUSH_INTERVAL):
            self._hand_over(stream, text, first)

    def _drain(self, stream: Stream) -> None:
        chunks = stream.chunks
        n = len(chunks)
        if n <= stream.drained:
            return
        text = "".join(c[0] for c in chunks[stream.drained : n])
        now = time.perf_counter()
        stream.latencies.append(now - chunks[stream.drained][1])
        stream.drained = n
        self.context += text
        if len(self.context) > 100_000:
            self.context = self.context[-50_000:]
        self.query_one("#output", OutputView).append(text, GENERATED)
        if self.inspector is not None and hasattr(self.inspector, "update_context"):
            try:  # the inspector follows the text while it streams (it throttles itself)
                self.inspector.update_context(self.context)
            except Exception:
                self.inspector = None

    def on_generate_screen_flush(self, message: "GenerateScreen.Flush") -> None:
        s = self.stream
        if s is not None and s.gen_id == message.gen_id:
            self._drain(s)
            now = time.perf_counter()
            if now - self._status_at >= 0.2:  # the figures change slower than the text: 5 updates a second
                self.update_status()

    def on_generate_screen_done(self, message: "GenerateScreen.Done") -> None:
        s = self.stream
        if s is None or s.gen_id != message.gen_id:
            return
        self._drain(s)
        self.refresh_bindings()
        if s.error:
            self.notify(printable(s.error), title="generation failed", severity="error")
        self.update_status()

    def stop_generation(self) -> bool:
        s = self.stream
        if s is not None and not s.finished:
            s.stop()
            self._drain(s)
            return True
        return False

    @property
    def generating(self) -> bool:
        return self.stream is not None and not self.stream.finished

    # ------------------------------------------------------------ actions
    def check_action(self, action: str, parameters) -> bool | None:
        if action == "stop":  # dimmed when there is nothing to stop and the prompt has the focus
            prompt = self.query("#prompt")
            return True if self.generating or (prompt and not prompt.first().has_focus) else None
        if action in ("continue", "inspect"):
            return True if self.loaded is not None else None
        return True

    def action_stop(self) -> None:
        """Escape: stop the text being written; with nothing to stop, back to the prompt."""
        if self.stop_generation():
            self.update_status(stopped=True)
            self.refresh_bindings()
        else:
            self.action_focus_prompt()

    def action_focus_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def action_continue(self) -> None:
        if self.loaded is not None and not self.context and not len(self.query_one("#output", OutputView)):
            self.start("", fresh=True)
            return
        self.start("", fresh=False)

    def action_clear(self) -> None:
        self.stop_generation()
        self.stream = None
        self.context = ""
        self.query_one("#output", OutputView).clear()
        self.update_status()

    def action_toggle_sidebar(self) -> None:
        self.query_one("#sidebar").toggle_class("-hidden")

    def action_focus_settings(self) -> None:
        self.query_one("#sidebar").remove_class("-hidden")
        panel = self.query_one("#sampling", SamplingPanel)
        if panel.ready:
            # focus moves now, not once the app's queue gets to it (Widget.focus): keys typed right
            # behind F6, in the same burst, then go to the field rather than to the prompt
            self.set_focus(panel.query_one("#set-temperature", Input))
        else:  # the fields are mounted right after the first frame
            panel.call_after_refresh(self.action_focus_settings)

    def action_copy_output(self) -> None:
        text = self.query_one("#output", OutputView).text
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied {len(text):,} characters to the clipboard.")

    def action_inspect(self) -> None:
        if self.loaded is None:
            self.notify("Pick a model first: the inspector looks inside the loaded model.", severity="warning")
            return
        try:
            from tinygpt_tui.app.inspector import InspectorScreen
        except Exception as e:  # missing, or broken while being written
            self.notify(f"The inspector is not available ({type(e).__name__}: {e}).", severity="warning")
            return
        # the raw text (prompt characters the model knows, then what it wrote), not the on-screen form
        context = self.context
        try:
            screen = InspectorScreen(self.loaded.model, self.loaded.tokenizer, context)
        except TinyGPTError as e:
            self.notify(str(e), title="inspector", severity="error")
            return
        self.inspector = screen
        self.app.push_screen(screen, lambda _=None: setattr(self, "inspector", None))

    # ------------------------------------------------------------ status
    def update_status(self, stopped: bool = False) -> None:
        self._status_at = time.perf_counter()
        # the generation's figures first, the model and device after them (the header shows those
        # too): on a narrow terminal the ellipsis takes the end, never the figures
        t = Text(no_wrap=True, overflow="ellipsis")
        s = self.stream
        if s is not None:
            state = "generating" if not s.finished else ("stopped" if s.stop_event.is_set() else "done")
            style = {"generating": "bold green", "stopped": "bold yellow", "done": "bold"}[state]
            t.append(state, style=style)
            t.append(f" · {s.generated:,} chars")
            if s.chars_per_s:
                t.append(f" · {s.chars_per_s:,.0f} chars/s")
            t.append("  │  ")
        if self.loading_name:
            t.append("loading ", style="bold yellow")
            t.append(printable(self.loading_name))
            t.append(" …")
        elif self.loaded is None:
            t.append("no model loaded", style="dim")
        else:
            t.append(printable(self.loaded.name), style="bold")
            sp = getattr(self.app, "sampler", None)  # where the text is written: the sampler process, once it has the model
            where = sp.device_name if sp is not None and sp.device_name and sp.ready_for(self.loaded.path) else self.device_name
            t.append(f" · {where}", style="dim")
        # only what changed is redrawn, and the status line (fixed width) without a layout pass
        if t != self._status_shown:
            self._status_shown = t
            self.query_one("#status", Static).update(t, layout=False)
        job = getattr(self.app, "training", None)
        train = job.summary() if job is not None else Text("")
        if train != self._train_status_shown:
            self._train_status_shown = train
            self.query_one("#train-status", Static).update(train)  # width auto: this one lays out
