"""Can a graded answer be typed in from a page? ``python -m autograder.tools.transcription``.

Every graded function's solution (``solutions/<a>/<a>.ipynb``) and every page a student reads
(each chapter ``book/*.md``: math blocks, inline math, code cells and inline code; each release
notebook ``exercises/<a>/<a>.ipynb``: prompts, docstrings, check cells) are turned into one
canonical token language: names become ``ID``, numbers ``NUM``, and only the operators and the
math functions stay (``sqrt``, ``sum``, ``mean``, ``exp``, ``log``, ``max``, ``min``, ``clip``).
LaTeX is mapped onto it (``\frac{a}{b}`` -> ``a / b``, ``\\sum_j`` -> ``sum``, Greek letters and
subscripted names -> ``ID``, juxtaposition -> ``*``); code through its AST (``x.sum(axis=0)`` ->
``sum ID``, reshapes and transposes are transparent, a name assigned once is replaced by its own
expression, so splitting a formula over helper variables hides nothing). Renaming variables,
spacing, parentheses and NumPy-vs-torch spelling therefore change nothing.

A page *shows* a function's answer when one statement of the solution and one formula or
statement of the page share a run of at least ``RUN_THRESHOLD`` canonical tokens. The threshold
comes from the measured null distribution: a solution against the pages of OTHER assignments
(which cannot hold its answer) shares runs of at most 9 tokens (generic pieces such as
``ID * ID - ID * ID``); ``eq-ch3-dx`` against ``batchnorm_backward_alt`` shared 15. The table this
module prints gives both columns.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
RUN_THRESHOLD = 12
MIN_STATEMENT = 6  # canonical tokens; shorter statements (``sum ID``) say nothing


def _braced(s, i):
    """s[i] == '{' -> (content, index after the closing brace)."""
    depth, j = 0, i
    while j < len(s):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j], j + 1
        j += 1
    return s[i + 1 :], len(s)


def _arg(s, i):
    while i < len(s) and s[i] == " ":
        i += 1
    if i < len(s) and s[i] == "{":
        return _braced(s, i)
    m = re.match(r"\\[A-Za-z]+|.", s[i:])
    return (m.group() if m else ""), i + (len(m.group()) if m else 0)


def latex_expand(s):
    out, i = [], 0
    while i < len(s):
        m = re.match(r"\\(d?frac|sqrt)", s[i:])
        if m:
            i += len(m.group())
            if m.group(1).endswith("frac"):
                a, i = _arg(s, i)
                b, i = _arg(s, i)
                out.append(f" ( {latex_expand(a)} ) / ( {latex_expand(b)} ) ")
            else:
                a, i = _arg(s, i)
                out.append(f" sqrt ( {latex_expand(a)} ) ")
            continue
        out.append(s[i])
        i += 1
    return "".join(out)


GREEK = r"\\(?:alpha|beta|gamma|delta|epsilon|varepsilon|mu|sigma|lambda|theta|eta|rho|kappa|tau|phi|psi|omega|nu|xi|pi|ell)(?![A-Za-z])"
OPS = {"sqrt", "sum", "mean", "exp", "log", "max", "min", "clip"}


def latex_canon(tex: str) -> list[str]:
    """The canonical tokens of one LaTeX formula."""
    t = latex_expand(tex)
    # (1/N) sum_i ... is a mean
    t = re.sub(r"\(\s*1\s*\)\s*/\s*\([^()]*\)\s*\\sum(_\{[^{}]*\}|_\\?\w+)?(\^\{[^{}]*\}|\^\\?\w+)?", " mean ", t)
    t = re.sub(
        r"\\(?:left|right|big|Big|bigg|Bigg|quad|qquad|displaystyle|mathrm|operatorname|text|mathbf|boldsymbol|bm|mathcal)(?![A-Za-z])",
        " ",
        t,
    )
    t = re.sub(r"\\[,;:!]", " ", t)
    t = re.sub(r"\\(?:hat|bar|tilde|widehat|overline|vec|dot)(?![A-Za-z])\s*", "", t)
    t = re.sub(r"\\partial\s*\w*", " ID ", t)
    t = re.sub(r"\\sum(_\{[^{}]*\}|_\\?\w+)?(\^\{[^{}]*\}|\^\\?\w+)?", " sum ", t)
    t = re.sub(r"\\(?:cdot|odot|times|ast)(?![A-Za-z])", " * ", t)
    t = re.sub(r"\\(exp|log|max|min)(?![A-Za-z])", r" \1 ", t)
    t = re.sub(GREEK, " ID ", t)
    t = re.sub(r"_\{[^{}]*\}|_\\?[A-Za-z0-9]+", " ", t)
    t = re.sub(r"\^\{?\s*2\s*\}?", " ^ NUM ", t)
    t = re.sub(r"\^\{[^{}]*\}|\^\\?\w", " ^ NUM ", t)
    t = re.sub(r"\\[A-Za-z]+", " ", t)
    toks = re.findall(r"[A-Za-z]+|\d+(?:\.\d+)?|[-+*/=^()]", t)
    out = []
    for tok in toks:
        if tok in OPS:
            out.append(tok)
        elif tok in ("ID", "NUM"):
            out.append(tok)
        elif re.fullmatch(r"\d+(?:\.\d+)?", tok):
            out.append("NUM")
        elif re.fullmatch(r"[A-Za-z]+", tok):
            # a run of letters is one name (dy, dx) unless it is a known function
            out.append("ID")
        else:
            out.append(tok)
    fixed = []
    is_operand_end = lambda x: x in ("ID", "NUM", ")")
    is_operand_start = lambda x: x in ("ID", "NUM", "(") or x in OPS
    for tok in out:
        if fixed and is_operand_end(fixed[-1]) and is_operand_start(tok):
            fixed.append("*")
        fixed.append(tok)
    return [x for x in fixed if x not in "()"]


FUNCS = {
    "sqrt": "sqrt",
    "sum": "sum",
    "mean": "mean",
    "exp": "exp",
    "log": "log",
    "maximum": "max",
    "max": "max",
    "minimum": "min",
    "min": "min",
    "clip": "clip",
    "clamp": "clip",
}
TRANSPARENT = {
    "reshape",
    "transpose",
    "expand_dims",
    "asarray",
    "array",
    "float",
    "detach",
    "view",
    "squeeze",
    "unsqueeze",
    "astype",
    "copy",
    "broadcast_to",
    "permute",
    "flatten",
    "ravel",
}


OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "^", ast.MatMult: "*",
             ast.FloorDiv: "/"}
MODULES = ("np", "torch", "F", "math", "nn")


def expr(e: ast.expr, defs: dict[str, list[str]] | None = None) -> list[str]:
    """The canonical tokens of one expression; a name in ``defs`` stands for its own tokens."""
    defs = defs or {}
    if isinstance(e, ast.Name):
        return defs.get(e.id, ["ID"])
    if isinstance(e, ast.BinOp):
        op = OPERATORS.get(type(e.op), "?")
        if op == "^" and isinstance(e.right, ast.Constant) and e.right.value == 0.5:
            return ["sqrt"] + expr(e.left, defs)
        return expr(e.left, defs) + [op] + expr(e.right, defs)
    if isinstance(e, ast.UnaryOp):
        return (["-"] if isinstance(e.op, ast.USub) else []) + expr(e.operand, defs)
    if isinstance(e, ast.Call):
        f = e.func
        name = f.attr if isinstance(f, ast.Attribute) else (f.id if isinstance(f, ast.Name) else "")
        method_on = f.value if isinstance(f, ast.Attribute) and not (
            isinstance(f.value, ast.Name) and f.value.id in MODULES) else None
        if name in TRANSPARENT:
            if method_on is not None:
                return expr(method_on, defs)
            return expr(e.args[0], defs) if e.args else []
        inner = expr(method_on, defs) if method_on is not None else []
        for arg in e.args:
            if not isinstance(arg, ast.Constant):
                inner += expr(arg, defs)
        return [FUNCS.get(name, "f")] + inner
    if isinstance(e, ast.Subscript):
        return expr(e.value, defs)
    if isinstance(e, ast.Attribute):
        return expr(e.value, defs) if e.attr == "T" else ["ID"]
    if isinstance(e, ast.Constant):
        return ["NUM"] if isinstance(e.value, (int, float)) and not isinstance(e.value, bool) else []
    if isinstance(e, (ast.Tuple, ast.List)):
        return [tok for x in e.elts for tok in expr(x, defs)]
    return ["?"]


def inlined_statements(source: str, cap: int = 48) -> list[list[str]]:
    """Canonical tokens per statement, with names assigned once earlier in the source replaced by
    their own expression (so splitting a formula over helper variables does not hide it)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    counts: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    counts[target.id] = counts.get(target.id, 0) + 1
    defs: dict[str, list[str]] = {}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.Return, ast.AugAssign)) and node.value is not None:
            toks = expr(node.value, defs)[: cap * 4]
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and counts[node.targets[0].id] == 1 and len(toks) <= cap:
                defs[node.targets[0].id] = toks
            out.append(toks)
    return out


# A page's own helper function (``per_set_mean(r)``) may stand for a reduction of the solution.
REDUCTIONS = {"f", "mean", "sum"}


def same(x: str, y: str) -> bool:
    return x == y or (x in REDUCTIONS and y in REDUCTIONS and "f" in (x, y))


def longest_run(a: list[str], b: list[str]) -> int:
    """Length of the longest common contiguous run of tokens."""
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if same(x, y):
                cur[j + 1] = prev[j] + 1
                if cur[j + 1] > best:
                    best = cur[j + 1]
        prev = cur
    return best


# ---- pages and solutions --------------------------------------------------------------------


def units(text: str, code: bool = False) -> list[list[str]]:
    """Formula and statement units of a page's text (``code``: the whole text is Python)."""
    out = []
    math = re.findall(r"\$\$(.*?)\$\$|```\{math\}[^\n]*\n(?::[^\n]*\n)*(.*?)```|\$([^$\n]+)\$", text, re.S)
    for groups in math:
        tex = next(g for g in groups if g)
        for part in re.split(r"\\\\|\\qquad|,\s*\\quad", tex):
            out.append(latex_canon(part))
    blocks = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```|```(?:python|ipython3?)?\n(.*?)```", text, re.S)
    sources = [a or b for a, b in blocks] + re.findall(r"`([^`\n]+)`", text)
    if code:
        sources.append(text)
    for source in sources:
        source = "\n".join(ln for ln in source.splitlines() if not ln.startswith((":", "%", "!")))
        out += inlined_statements(source)
    return [u for u in out if u]


def pages(repo: Path = REPO) -> dict[str, list[list[str]]]:
    out = {}
    for path in sorted((repo / "book").glob("*.md")):
        out[f"book/{path.name}"] = units(path.read_text())
    for path in sorted((repo / "exercises").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        out[str(path.relative_to(repo))] = [
            u for c in nb.cells for u in units(c.source, code=c.cell_type == "code")
        ]
    return out


def solutions(repo: Path = REPO) -> dict[tuple[str, str], list[list[str]]]:
    """(assignment, graded function) -> the canonical statements of its solution cell."""
    from autograder.course.cases import ASSIGNMENTS

    out = {}
    for assignment, checks in ASSIGNMENTS.items():
        nb = nbformat.read(repo / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        graded = {c.function for c in checks}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("solution") and meta.get("grade_id") in graded:
                source = "\n".join(
                    ln for ln in cell.source.splitlines() if "### BEGIN" not in ln and "### END" not in ln
                )
                statements = [s for s in inlined_statements(source) if len(s) >= MIN_STATEMENT]
                out.setdefault((assignment, meta["grade_id"]), []).extend(statements)
    return out


def shown(statements: list[list[str]], page: list[list[str]]) -> int:
    """The longest run of canonical tokens a solution shares with one unit of a page."""
    return max((longest_run(s, u) for s in statements for u in page), default=0)


def transfers() -> dict[str, str]:
    """Graded functions declared as transfers of a printed result (``Check.transfers``)."""
    from autograder.course.cases import CHECKS
    return {name: check.transfers for name, check in CHECKS.items() if check.transfers}


def table(repo: Path = REPO) -> list[tuple[str, str, int, str, int]]:
    """Per graded function: (assignment, function, longest run on its own assignment's pages and
    where, longest run on the other assignments' pages)."""
    all_pages = pages(repo)
    rows = []
    for (assignment, function), statements in sorted(solutions(repo).items()):
        runs = {k: shown(statements, u) for k, u in all_pages.items()}
        own = {k: v for k, v in runs.items() if assignment in k}
        other = max((v for k, v in runs.items() if assignment not in k), default=0)
        where = max(own, key=own.get) if own else ""
        rows.append((assignment, function, own.get(where, 0), where, other))
    return rows


if __name__ == "__main__":
    print(
        f"{'function':28s} {'own pages':>9s}  {'where':34s} {'other pages':>11s}   (threshold {RUN_THRESHOLD})"
    )
    declared = transfers()
    for _, function, own, where, other in table():
        flag = "  <- shown" if max(own, other) >= RUN_THRESHOLD else ""
        flag = "  (a declared transfer)" if flag and function in declared else flag
        print(f"{function:28s} {own:9d}  {where:34s} {other:11d}{flag}")
    sys.exit(0)
