"""A Footer that rebuilds its keys once per batch of binding changes, and only when they changed."""

from __future__ import annotations

from textual.widgets import Footer


class LeanFooter(Footer):
    """Textual's Footer re-mounts every key on each bindings signal (focus moves, refresh_bindings),
    several times in a row at start-up and at each start and end of a generation; this one
    coalesces the signals and skips the rebuild when the keys shown are the same."""

    _rebuild_pending = False
    _shown: tuple | None = None

    def compose(self):
        # Textual's Footer composes no keys until the screen's first bindings signal, then mounts
        # them in a second layout pass after the first frame; the keys are known at once here, so
        # the first frame has them and the signal finds nothing to change.
        if self.is_attached:
            self._bindings_ready = True
            self._shown = self._keys()
        return super().compose()

    def _keys(self) -> tuple:
        return tuple(
            (binding.key, binding.action, binding.description, enabled, tooltip)
            for (_, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show
        )

    def bindings_changed(self, screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._rebuild_pending:
            self._rebuild_pending = True
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        self._rebuild_pending = False
        if not self.is_attached:
            return
        shown = self._keys()
        if shown == self._shown:
            return
        self._shown = shown
        await self.recompose()
