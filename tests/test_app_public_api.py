"""The product reaches Textual and Rich through their public API only: no underscore name of theirs."""

from __future__ import annotations

import ast
from pathlib import Path

PRODUCT = Path(__file__).resolve().parents[1] / "tinygpt_tui"


def private_uses(source: str) -> list[str]:
    """Imports of textual/rich modules or names that start with an underscore, and attribute
    accesses `x._name` (not dunders) on anything but self/cls (our own objects' names) and os/sys."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("textual", "rich", "torch"):
            if any(part.startswith("_") for part in node.module.split(".")) or any(a.name.startswith("_") for a in node.names):
                found.append(f"line {node.lineno}: from {node.module} import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in ("textual", "rich", "torch") and any(p.startswith("_") for p in a.name.split(".")):
                    found.append(f"line {node.lineno}: import {a.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls", "os", "sys")):  # (os._exit: the stdlib's)
                found.append(f"line {node.lineno}: ._{node.attr[1:]}")
    return found


def test_private_names_are_found():
    assert private_uses("from textual._context import active_app")
    assert private_uses("from rich._wrap import divide_line")
    assert private_uses("x = app._notifications")
    assert private_uses("import textual.widgets._toast")
    assert private_uses("from torch.optim._muon import _adjust_lr")
    assert not private_uses("from textual.widgets import Footer\nself._mine = 1\nx.__class__")


def test_no_private_textual_rich_or_torch_name_in_the_product():
    bad = {}
    for path in sorted(PRODUCT.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if not any(lib in source for lib in ("textual", "rich", "torch")):
            continue
        uses = private_uses(source)
        if uses:
            bad[str(path.relative_to(PRODUCT))] = uses
    assert not bad, bad


def test_self_private_names_are_not_textual_ones():
    """self._x is our own attribute, unless it is one of Textual's (a subclass reaching into its base)."""
    import textual.app
    import textual.screen
    import textual.scroll_view
    import textual.widget

    theirs = {n for mod in (textual.app.App, textual.screen.Screen, textual.scroll_view.ScrollView, textual.widget.Widget)
              for n in dir(mod) if n.startswith("_") and not n.startswith("__")}
    bad = []
    for path in sorted((PRODUCT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" and node.attr in theirs:
                bad.append(f"{path.name}:{node.lineno}: self.{node.attr}")
            if isinstance(node, ast.FunctionDef) and node.name in theirs:
                bad.append(f"{path.name}:{node.lineno}: def {node.name}")
    assert not bad, bad


def test_no_module_of_the_app_imports_another_s_private_name():
    """A helper one module keeps to itself (a leading underscore) is not imported by another: what modules
    share is a public name (app/jobs.py imported app/progress.py's _num)."""
    bad = []
    for path in sorted((PRODUCT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tinygpt_tui"):
                bad += [f"{path.name}:{node.lineno}: from {node.module} import {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad
