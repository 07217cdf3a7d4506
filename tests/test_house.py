"""The house's own limits (issue 14): a file a reader takes in at one sitting, and model.py read as a GPT."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ROOT / "tinygpt_tui"


def test_no_product_file_is_over_500_lines_and_model_py_is_at_most_250():
    lengths = {str(p.relative_to(PRODUCT)): len(p.read_text(encoding="utf-8").splitlines()) for p in PRODUCT.rglob("*.py")}
    assert len(lengths) > 40  # (the tree was found)
    assert {f: n for f, n in lengths.items() if n > 500} == {}
    assert lengths["model.py"] <= 250


def test_the_readme_is_at_most_200_lines_and_names_every_app_module():
    """Issue 14: a README a learner reads, of 200 lines at most; its tree names each file of the app (a helper's new
    module made it 201 lines, another's went unnamed)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 50 < len(readme.splitlines()) <= 200
    tree = readme[readme.index("## Architecture"):]
    unnamed = [p.stem for p in (PRODUCT / "app").glob("*.py") if p.stem != "__init__" and not re.search(rf"\b{p.stem}\b", tree)]
    assert unnamed == []


def test_the_python_named_has_every_standard_module_the_product_imports():
    """pyproject's requires-python and the README's "Python 3.N or newer" name one Python, and on it the
    product imports (tomllib, for the lessons, came with 3.11: on 3.10 `tinygpt lesson` and the app's F4 failed)."""
    since = {"tomllib": (3, 11)}  # the standard modules newer than 3.10 (the oldest Python this was ever said to run on)
    imported = set()
    for p in PRODUCT.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert "torch" in imported  # (the imports were found)
    needed = max([(3, 10)] + [v for m, v in since.items() if m in imported])
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    required = tuple(map(int, re.fullmatch(r">=(\d+)\.(\d+)", spec).groups()))
    said = tuple(map(int, re.search(r"Python (\d+)\.(\d+) or newer", (ROOT / "README.md").read_text(encoding="utf-8")).groups()))
    assert required >= needed and said == required
