"""The house's own limits (issue 14): a file a reader takes in at one sitting, and model.py read as a GPT."""

from __future__ import annotations

from pathlib import Path

PRODUCT = Path(__file__).resolve().parents[1] / "tinygpt_tui"


def test_no_product_file_is_over_500_lines_and_model_py_is_at_most_250():
    lengths = {str(p.relative_to(PRODUCT)): len(p.read_text(encoding="utf-8").splitlines()) for p in PRODUCT.rglob("*.py")}
    assert len(lengths) > 40  # (the tree was found)
    assert {f: n for f, n in lengths.items() if n > 500} == {}
    assert lengths["model.py"] <= 250
