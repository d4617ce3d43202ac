"""No graded answer can be typed in from a page (issue 23): the canonical-token comparison of
``autograder.tools.transcription`` between every graded function's solution and every chapter
and release notebook, its threshold above the measured null, and proof that it catches planted
copies (renamed code, a LaTeX formula, torch spelling)."""
import ast

import nbformat
import pytest

from autograder.tools import transcription as T

from conftest import REPO


@pytest.fixture(scope="module")
def table():
    return T.table()


def test_no_page_shows_a_graded_answer(table):
    declared = T.transfers()  # a transfer of a printed formula: its new part is what tokens abstract away
    shown = [f"{f} ({a}): a run of {own} tokens in {where}" for a, f, own, where, other in table
             if own >= T.RUN_THRESHOLD and f not in declared]
    shown += [f"{f} ({a}): a run of {other} tokens on another assignment's page" for a, f, own, where, other in table
              if other >= T.RUN_THRESHOLD and f not in declared]
    assert not shown, "\n".join(shown)


def test_the_threshold_stands_above_the_null(table):
    """Pages of other assignments cannot hold a function's answer: what they share with it is
    generic (``ID * ID - ID``). The threshold keeps a margin of 2 tokens above the longest such run."""
    declared = T.transfers()
    null = max(other for _, f, _, _, other in table if f not in declared)
    assert null + 2 <= T.RUN_THRESHOLD, f"null runs reach {null}: raise the threshold or look"


class _Rename(ast.NodeTransformer):
    """Every variable and argument renamed (what a copying author would do to hide a copy)."""

    def __init__(self):
        self.names: dict[str, str] = {}

    def _new(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node):
        if node.id not in ("np", "torch", "range", "len", "float", "int", "zip", "enumerate"):
            node.id = self._new(node.id)
        return node

    def visit_arg(self, node):
        node.arg = self._new(node.arg)
        return node


def _solution_cells() -> dict[str, str]:
    out = {}
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("solution") and meta.get("grade_id"):
                out[meta["grade_id"]] = "\n".join(ln for ln in cell.source.splitlines() if "### " not in ln)
    return out


def test_a_renamed_copy_in_a_chapter_is_caught(tmp_path):
    """Each solution, every name changed, pasted into a chapter's code cell: caught whenever the
    solution has a statement at least as long as the threshold."""
    solutions = T.solutions()
    missed = []
    for (_, function), statements in solutions.items():
        if not any(len(s) >= T.RUN_THRESHOLD for s in statements):
            continue  # nothing long enough to be told apart from generic algebra
        source = ast.unparse(_Rename().visit(ast.parse(_solution_cells()[function])))
        page = T.units(f"Some prose.\n\n```{{code-cell}} ipython3\n{source}\n```\n")
        if T.shown(statements, page) < T.RUN_THRESHOLD:
            missed.append(function)
    assert not missed, f"renamed copies not caught: {missed}"
    assert len(solutions) >= 10


def test_a_formula_one_line_from_the_code_is_caught():
    """The compact backward as LaTeX (eq-ch3-dx's shape) against a NumPy compact backward."""
    code = ("def backward(dout, x_hat, gamma, var, eps):\n    n = dout.shape[0]\n"
            "    inv = 1.0 / np.sqrt(var + eps)\n    db = dout.sum(axis=0)\n    dg = (dout * x_hat).sum(axis=0)\n"
            "    return gamma * inv / n * (n * dout - db - x_hat * dg)\n")
    statements = [s for s in T.inlined_statements(code) if len(s) >= T.MIN_STATEMENT]
    tex = (r"$$dx_i = \frac{\gamma}{N\sqrt{\sigma^2+\epsilon}}\left(N\,dy_i - \sum_j dy_j"
           r" - \hat x_i \sum_j dy_j\,\hat x_j\right)$$")
    assert T.shown(statements, T.units(tex)) >= T.RUN_THRESHOLD
    torch_spelling = ("```{code-cell} ipython3\ng = w * torch.rsqrt(v + e) / m\n"
                      "out = g * (m * up - up.sum(dim=0) - xh * (up * xh).sum(dim=0))\n```\n")
    assert T.shown(statements, T.units(torch_spelling)) >= 8
    assert T.shown(statements, T.units(r"$$y_i = \gamma \hat x_i + \beta$$")) < T.RUN_THRESHOLD


def test_declared_transfers_are_few_and_say_what_is_new():
    """A declared transfer is an exception to the check above: each says which printed result it
    carries over and what the student must find there; at most one per assignment."""
    declared = T.transfers()
    assert len(declared) <= 6
    assert all(len(text.split()) >= 12 for text in declared.values()), declared
