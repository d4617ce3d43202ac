"""The package's layout: four parts imported one way (cli -> term -> grader -> course -> student),
tools apart, and no import circle between modules. Read from the source with ``ast``, imports
inside functions included (a lazy import is still a dependency)."""
import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "autograder"
# Each part and the parts it may import (itself included). The CLI and the nbgrader config wire
# everything together; tools stand apart: no part imports them.
ORDER = ["student", "course", "grader", "term", "cli"]
ALLOWED = {part: set(ORDER[:i + 1]) for i, part in enumerate(ORDER)}
ALLOWED["tools"] = {"student", "course", "grader", "term", "tools"}
ALLOWED["root"] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    """'autograder.grader.sandbox.run' -> 'grader'; the top-level wiring modules are 'cli'."""
    pieces = module.split(".")
    if len(pieces) == 1:
        return "root"
    if pieces[1] in ("cli", "__main__", "nbgrader_config"):
        return "cli"
    return pieces[1]


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (a name imported from a package counts as its
    submodule when there is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{a.name}" for a in node.names} & modules
            # ``from pkg import mod`` depends on mod; ``from pkg import name`` on pkg itself
            found |= submodules if len(submodules) == len(node.names) else {node.module} | submodules
    return {m for m in found if m in modules}


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p): p for p in root.rglob("*.py")}
    modules = set(files)
    out = {}
    for name, path in files.items():
        deps = imports(path, modules)
        # importing a.b.c runs a and a.b too, but those package __init__s are checked on their own
        out[name] = {d for d in deps if d != name}
    return out


def upward(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} ({part_of(a)}) imports {b} ({part_of(b)})" for a, deps in g.items()
                  for b in deps if b != "autograder" and part_of(b) not in ALLOWED[part_of(a)])


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_module_belongs_to_a_part():
    assert {part_of(m) for m in graph()} <= set(ALLOWED)


def test_no_import_crosses_the_declared_order():
    assert upward(graph()) == []


def test_no_import_circle():
    assert circles(graph()) == []


def test_the_checks_detect_a_planted_circle_and_an_upward_import(tmp_path):
    """The two rules can fail: a copy of the package with a student module importing the grader,
    and two course modules importing each other."""
    import shutil
    copy = tmp_path / "autograder"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "visible"))
    (copy / "student" / "leak.py").write_text("from autograder.grader import judge\n")
    (copy / "course" / "a_mod.py").write_text("from autograder.course import b_mod\n")
    (copy / "course" / "b_mod.py").write_text("def f():\n    from autograder.course import a_mod\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        g = graph(copy)
    finally:
        REPO = saved
    assert any("autograder.student.leak (student) imports autograder.grader.judge" in u for u in upward(g))
    assert ["autograder.course.a_mod", "autograder.course.b_mod"] in circles(g)


@pytest.mark.parametrize("part", ["course", "grader", "term", "tools"])
def test_each_part_says_what_it_owns(part):
    doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text())) or ""
    assert len(doc.split()) >= 25, f"autograder/{part}/__init__.py: a paragraph on what it owns"


def unannotated(root: Path) -> list[str]:
    """Public functions (and public methods of public classes) missing a parameter or return hint."""
    missing = []
    for path in sorted(root.rglob("*.py")):
        def visit(nodes, prefix="", path=path):
            for n in nodes:
                if isinstance(n, ast.ClassDef) and not n.name.startswith("_"):
                    visit(n.body, f"{prefix}{n.name}.")
                elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and not n.name.startswith("_"):
                    params = [a for a in n.args.posonlyargs + n.args.args + n.args.kwonlyargs
                              if a.arg not in ("self", "cls")]
                    if n.returns is None or any(a.annotation is None for a in params):
                        missing.append(f"{path.relative_to(REPO)}:{n.lineno} {prefix}{n.name}")
        visit(ast.parse(path.read_text()).body)
    return missing


@pytest.mark.parametrize("part", ["grader", "course"])
def test_public_functions_have_type_hints(part):
    assert unannotated(PACKAGE / part) == []


def test_the_type_hint_check_can_fail(tmp_path):
    (tmp_path / "m.py").write_text("def public(x: int):\n    return x\n\ndef _private(x):\n    return x\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert unannotated(tmp_path) == ["m.py:1 public"]
    finally:
        REPO = saved
