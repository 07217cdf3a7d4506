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
