"""tinygpt's cache folder, $XDG_CACHE_HOME/tinygpt (~/.cache/tinygpt by default), as every reader of it finds it:
the machine probe (engine/probe.py), prepared corpora (engine/sources.py), the decoder's compile note
(fast/warm.py). The standard library only: fast/warm.py imports it and stays free of torch.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path | None:
    """$XDG_CACHE_HOME/tinygpt; ~/.cache/tinygpt where it is unset, empty or a relative path (the XDG spec: all
    its paths are absolute, a relative one is ignored; it named a folder under wherever tinygpt was started);
    None without a home to put it in."""
    base = os.path.expanduser(os.environ.get("XDG_CACHE_HOME", ""))
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):  # no HOME and no password entry
            return None
    return Path(base) / "tinygpt"
