"""No script from student text on the pages the course serves (issue 25): a student's markdown and
written answer carry TeX that would link, style or name (``\\href{javascript:...}``, a full-page
``\\style``, ``\\cssId``, ``\\class``); graded by the real command, the feedback page and the
feedback zip are opened in headless Chromium, offline: math renders, no ``javascript:`` link or
handler exists in the rendered DOM, nothing is positioned over the page, and a click runs
nothing. (Formgrader's page is checked in tests/test_term.py.)"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.course import samples

from conftest import REPO, run_cli

A = "ch2_forward"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
OVERLAY = "position:fixed;top:0;left:0;width:100vw;height:100vh;z-index:99;display:block"
VECTORS = [
    rf"$\href{{javascript:window.PWNED='href'}}{{\style{{{OVERLAY}}}{{\text{{Click to see your grade}}}}}}$",
    r"$\cssId{notebook}{\href{javascript:window.PWNED='cssId'}{x}}$",
    r"$\class{jp-OutputArea}{\href{javascript:window.PWNED='class'}{y}}$",
    r"$\require{html}\href{javascript:window.PWNED='require'}{z}$",
    r"$$\style{position:fixed;top:0;left:0}{\unicode[some-font]{x41}}$$",
    r"\(\href{javascript:window.PWNED='paren'}{w}\)",
]
HONEST_MATH = r"$\hat{x}_i = \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}$"

# What in the rendered page could run script or hide the page: evaluated in the browser.
AUDIT = """(scope) => {
  const found = [];
  for (const el of document.querySelectorAll(scope)) {
    for (const a of el.attributes) {
      const v = (a.value || '').replace(/[\\s\\u0000-\\u001f]/g, '').toLowerCase();
      if (a.name.startsWith('on')) found.push(el.tagName + ' ' + a.name);
      if (['href', 'src', 'action', 'formaction', 'xlink:href'].includes(a.name) &&
          (v.startsWith('javascript:') || v.startsWith('data:text/html'))) found.push(el.tagName + ' ' + a.name + '=' + v.slice(0, 40));
    }
    if (el.closest('mjx-container') && !el.closest('mjx-assistive-mml')) {  // (MathJax's own, clipped)
      const pos = getComputedStyle(el).position, box = el.getBoundingClientRect();
      if (pos === 'fixed' || pos === 'absolute' && box.width * box.height > 200 * 200) found.push(el.tagName + ' position ' + pos);
      if (el.id && !el.id.startsWith('mjx-')) found.push(el.tagName + ' id=' + el.id);
    }
  }
  return found;
}"""


def _hostile_notebook() -> nbformat.NotebookNode:
    release = nbformat.read(REPO / "exercises" / A / f"{A}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4)
    nb = nbformat.from_dict(json.loads(json.dumps(samples.honest(release, solution))))
    text = "\n\n".join([HONEST_MATH, *VECTORS])
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(text))
    answer = next(c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution"))
    answer.source = "My derivation: " + text
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("render-root")
    (root / "submitted" / "mallory" / A).mkdir(parents=True)
    nbformat.write(_hostile_notebook(), root / "submitted" / "mallory" / A / f"{A}.ipynb")
    env = {"BN_GRADER_ROOT": str(root)}
    done = run_cli("grade", A, "--quiet", env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    done = run_cli("export", A, env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return root


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `apt-get install -y chromium` (.ci/run does this)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _open_offline(browser, url: str):
    """The page, with every request that leaves the machine refused and recorded."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    outside = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()
    page.route("**/*", route)
    page.goto(url)
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=60000)
    page.evaluate("() => MathJax.startup.promise")
    return page, outside


def _audit(page, outside: list, scope: str = "*") -> None:
    assert outside == [], f"the page reached out: {outside[:3]}"
    html = page.content()
    assert "Click to see your grade" in html or "javascript" not in html  # the student text is there, as text
    rendered = page.locator("mjx-container").count()
    assert rendered >= 2 * (len(VECTORS) + 1) - 2, f"math rendered: {rendered}"   # markdown + answer
    assert page.locator("mjx-container mjx-mi, mjx-container mjx-c").count() > 10   # the honest math
    found = page.evaluate(AUDIT, scope)
    assert found == [], found[:8]
    assert page.locator("[href^='javascript' i]").count() == 0
    for x in range(50, 1200, 150):      # a click anywhere runs nothing
        for y in range(50, 900, 150):
            page.mouse.click(x, y)
    for k in range(page.locator("mjx-container").count()):
        page.locator("mjx-container").nth(k).dispatch_event("click")
    assert page.evaluate("() => window.PWNED") is None


def test_feedback_page_runs_no_student_script(graded, browser):
    page_path = graded / "feedback" / "mallory" / A / f"{A}.html"
    text = page_path.read_text()
    assert "ui/safe" in text and "../../_mathjax/tex-chtml.js" in text
    page, outside = _open_offline(browser, page_path.as_uri())
    _audit(page, outside)
    page.close()


def test_feedback_zip_renders_math_offline(graded, browser, tmp_path):
    zipped = graded / "export" / "feedback" / A / "mallory.zip"
    with zipfile.ZipFile(zipped) as z:
        names = z.namelist()
        assert "_mathjax/tex-chtml.js" in names and "_mathjax/ui/safe.js" in names
        assert not [n for n in names if n.endswith(("/html.js", "/unicode.js"))]
        z.extractall(tmp_path)
    page_path = tmp_path / f"{A}_feedback_{A}.html"
    assert 'src="_mathjax/tex-chtml.js"' in page_path.read_text()
    page, outside = _open_offline(browser, page_path.as_uri())
    _audit(page, outside)
    page.close()


def test_grade_report_runs_no_student_script(graded, browser):
    """The report loads no MathJax and no script at all: student text in it is escaped text."""
    report = graded / "grade_report.html"
    assert "mallory" in report.read_text()
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    assert page.locator("script").count() == 0
    assert page.evaluate(AUDIT, "*") == []
    assert [u for u in requests if not u.startswith(("file://", "data:"))] == []
    page.close()
