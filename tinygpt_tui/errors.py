"""Errors meant for the user: one line, no traceback (exit code 2 on the command line)."""


class TinyGPTError(Exception):
    """Something the user can fix: a bad file, a bad setting, a broken model folder."""

    exit_code = 2

    def __str__(self) -> str:  # always one line
        return " ".join(str(self.args[0] if self.args else "").split())


class CorpusError(TinyGPTError):
    pass


class CheckpointError(TinyGPTError):
    pass


class SettingsError(TinyGPTError):
    pass


def not_one_of(name: str, value, allowed, error=SettingsError) -> TinyGPTError:
    """A value outside a setting's fixed choices, worded alike for every one of them: "NAME must be one of A, B, got 'V'"
    (the command line says its own option for NAME, --pos for pos_encoding: cli/common.py's as_typed)."""
    return error(f"{name} must be one of {', '.join(allowed)}, got {(value[:40] if isinstance(value, str) else value)!r}")
