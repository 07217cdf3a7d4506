"""The keys bar: Textual's own Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    """Textual's Footer removes and mounts every key after the next refresh each time the bindings
    may have changed (focus moved, a screen pushed, refresh_bindings called): four times at
    start-up before the first frame, and again each time a generation starts or ends. This one
    keeps at most one rebuild waiting, and skips it when the keys it would show are the ones shown."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rebuild_waiting = False
        self.shown: tuple | None = None  # what the keys were built from

    def bindings_changed(self, screen) -> None:
        if self.rebuild_waiting:
            return
        # (Textual's Footer schedules a rebuild only in this case)
        self.rebuild_waiting = bool(screen.app.app_focus and self.is_attached and screen is self.screen)
        super().bindings_changed(screen)

    def keys(self) -> tuple:
        """Everything the keys are made from: each binding (shown or not: the palette's key is one
        not shown), enabled or not, as the keymap displays it."""
        return tuple((b.key, self.app.get_key_display(b), b.description, b.action, b.show, b.group, b.tooltip, enabled, tooltip)
                     for _, b, enabled, tooltip in self.screen.active_bindings.values())

    def compose(self):
        widgets = list(super().compose())
        if widgets:
            self.shown = self.keys()
        return widgets

    async def recompose(self) -> None:
        self.rebuild_waiting = False
        if self.is_attached and self.shown is not None and self.keys() == self.shown:
            return
        await super().recompose()
