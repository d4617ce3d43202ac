"""The chapters as a reader meets them: described figures, shown numbers, no grader tables.

Static checks read the MyST sources under book/; the rest read the site that `make book` builds.
"""
import html
import re

import pytest

from autograder.course.cases import ASSIGNMENT_IDS

from conftest import REPO

BOOK = REPO / "book"
CELL = re.compile(r"```\{code-cell\}[^\n]*\n(.*?)```", re.S)
IMG = re.compile(r"<img\b[^>]*>", re.I)
ALT = re.compile(r'\balt="([^"]*)"', re.I)


def cells(assignment: str) -> list[str]:
    return CELL.findall((BOOK / f"{assignment}.md").read_text())


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_chapter_does_not_import_the_grader_tables(assignment):
    """Chapters take their math from autograder.course.reference; the case tables are the grader's."""
    text = (BOOK / f"{assignment}.md").read_text()
    assert "autograder.course.cases" not in text and "from autograder import cases" not in text


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_every_figure_cell_declares_alt_text(assignment):
    """A cell that draws a figure says, in its mystnb metadata, what the figure shows."""
    missing = []
    for cell in cells(assignment):
        if "plt.show()" not in cell:
            continue
        alt = re.search(r'^\s+alt:\s*"([^"]+)"', cell, re.M)
        if not alt or len(alt.group(1).split()) < 8:
            missing.append(cell.strip().splitlines()[0][:70])
    assert not missing, f"figure cells without a descriptive alt text: {missing}"


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_rendered_figures_have_descriptive_alt_text(built_book, assignment):
    """In the built page every image's alt attribute describes it (not the hash file name)."""
    page = (built_book / "book" / f"{assignment}.html").read_text()
    images = IMG.findall(page)
    assert images, "a chapter page without figures"
    bad = []
    for tag in images:
        alt = ALT.search(tag)
        text = html.unescape(alt.group(1)) if alt else ""
        if len(text.split()) < 8 or re.fullmatch(r"[0-9a-f]{32,}(\.png)?", text):
            bad.append(tag[:120])
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_glued_numbers_are_rendered(built_book, assignment):
    """Every {glue:text} reference in a chapter turned into text in the page (none left raw)."""
    source = (BOOK / f"{assignment}.md").read_text()
    page = (built_book / "book" / f"{assignment}.html").read_text()
    if "{glue:text}" in source:
        assert "{glue:text}" not in page and "glue:text" not in page


def test_digits_cnn_is_trained_once_then_loaded(tmp_path, monkeypatch):
    """Chapters 2, 4 and 6 share one trained CNN: the first call trains and caches it, the next
    loads the same weights, and a change of settings (or of the module's code) trains anew."""
    monkeypatch.syspath_prepend(str(BOOK))
    import digits_cnn
    monkeypatch.setitem(digits_cnn.SETTINGS, "epochs", 1)
    monkeypatch.setitem(digits_cnn.SETTINGS, "seeds", [0])
    first = digits_cnn.trained(tmp_path)
    second = digits_cnn.trained(tmp_path)
    assert not first["cached"] and second["cached"]
    assert second["folder"] == first["folder"] and (first["folder"] / "results.json").exists()
    for key, net in first["nets"].items():
        loaded = second["nets"][key].state_dict()
        assert all(torch_equal(t, loaded[name]) for name, t in net.state_dict().items())
        assert second["accuracy"][key] == first["accuracy"][key] > 15   # chance: 10 %
    monkeypatch.setitem(digits_cnn.SETTINGS, "lr", 0.02)
    third = digits_cnn.trained(tmp_path)
    assert not third["cached"] and third["folder"] != first["folder"]


def torch_equal(a, b) -> bool:
    import torch
    return torch.equal(a, b)


def test_code_cells_start_on_their_own_line():
    """A fence glued to the end of a sentence is prose to MyST: its code would silently not run."""
    for page in sorted(BOOK.glob("*.md")):
        glued = re.findall(r"[^\n]```\{code-cell\}", page.read_text())
        assert not glued, f"{page.name}: a code-cell fence in the middle of a line"
