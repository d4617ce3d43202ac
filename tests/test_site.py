"""The website as a student meets it: every page opened in headless Chromium from a local server.

Per page: all math typeset, every image loaded, no request leaving 127.0.0.1, no JavaScript error,
a screenshot under _build/screenshots/. Across the site: internal links and equation references
resolve, each chapter ends with its exercise and its download serves the student notebook,
figures fit the text column, and search works offline.
"""
from __future__ import annotations

import functools
import html.parser
import re
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import nbformat
import pytest

from autograder.course.cases import ASSIGNMENT_IDS

from conftest import REPO

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
MATH = "span.math.notranslate, div.math.notranslate"


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the browser drops connections it no longer needs; that is not a page error


@pytest.fixture(scope="module")
def server(built_book):
    handler = functools.partial(_Handler, directory=str(built_book))
    httpd = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `apt-get install -y chromium` (.ci/run does this)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def pages(built_book: Path) -> list[str]:
    return sorted(str(p.relative_to(built_book)) for p in built_book.rglob("*.html")
                  if "_static" not in p.parts and "_sources" not in p.parts)


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])


@pytest.fixture(scope="module")
def visited(built_book, server, browser):
    """Open every page once; collect what the per-page tests assert on."""
    shots = REPO / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    results, start = {}, time.monotonic()
    for rel in pages(built_book):
        page = context.new_page()
        requests, errors = [], []
        page.on("request", lambda r, requests=requests: requests.append(r.url))
        page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.goto(server + rel, wait_until="networkidle")
        page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        info = page.evaluate("""(sel) => ({
            equations: document.querySelectorAll(sel).length,
            typeset: document.querySelectorAll('mjx-container').length,
            matherrors: document.querySelectorAll('mjx-merror').length,
            images: Array.from(document.images).map(i => ({src: i.src, w: i.naturalWidth,
                      shown: i.getBoundingClientRect().width})),
            column: (document.querySelector('article.bd-article') || document.body).getBoundingClientRect().width,
        })""", MATH)
        page.screenshot(path=str(shots / (rel.replace("/", "__").replace(".html", ".png"))), full_page=True)
        info.update(requests=requests, errors=errors)
        results[rel] = info
        page.close()
    context.close()
    results["__seconds__"] = time.monotonic() - start
    return results


def test_every_page_renders(visited, built_book, server):
    checked = [p for p in visited if p != "__seconds__"]
    assert len(checked) == len(pages(built_book)) >= 9
    problems = []
    for rel in checked:
        v = visited[rel]
        if v["typeset"] != v["equations"] or v["matherrors"]:
            problems.append(f"{rel}: {v['typeset']} of {v['equations']} equations typeset, "
                            f"{v['matherrors']} MathJax errors")
        problems += [f"{rel}: image not loaded {i['src']}" for i in v["images"] if i["w"] == 0]
        problems += [f"{rel}: request left 127.0.0.1: {u}" for u in v["requests"]
                     if not (u.startswith(server) or u.startswith(("data:", "blob:", "about:")))]
        problems += [f"{rel}: console error: {e[:200]}" for e in v["errors"]]
    assert not problems, "\n".join(problems)
    total_eq = sum(visited[p]["equations"] for p in checked)
    total_img = sum(len(visited[p]["images"]) for p in checked)
    print(f"\nsite: {len(checked)} pages, {total_eq} equations typeset, {total_img} images loaded, "
          f"{visited['__seconds__']:.1f} s in the browser")
    assert total_eq > 100 and total_img > 15


def test_screenshots_are_saved(visited):
    shots = list((REPO / "_build" / "screenshots").glob("*.png"))
    assert len(shots) >= len(visited) - 1
    assert all(s.stat().st_size > 10_000 for s in shots)


def test_figures_fit_the_text_column(visited):
    too_wide = [f"{rel}: {i['src'].rsplit('/', 1)[-1]} {i['shown']:.0f}px > {visited[rel]['column']:.0f}px"
                for rel in visited if rel != "__seconds__"
                for i in visited[rel]["images"] if i["shown"] > visited[rel]["column"] + 1]
    assert not too_wide, "\n".join(too_wide)


def test_internal_links_and_equation_references_resolve(built_book, server):
    import urllib.request
    parsed = {}
    for rel in pages(built_book):
        p = _Ids()
        p.feed((built_book / rel).read_text())
        parsed[rel] = p
    broken = []
    for rel, p in parsed.items():
        for href in set(p.links):
            target = urljoin(server + rel, href)
            if not target.startswith(server):
                continue
            url = urlparse(target)
            path = unquote(url.path)[1:] or "index.html"
            try:
                with urllib.request.urlopen(f"{server}{url.path.lstrip('/')}") as resp:
                    assert resp.status == 200
            except Exception as exc:
                broken.append(f"{rel}: {href} -> {exc}")
                continue
            if url.fragment and path in parsed and url.fragment not in parsed[path].ids:
                broken.append(f"{rel}: {href}: no element with id {url.fragment!r}")
    assert not broken, "\n".join(sorted(broken)[:40])


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_chapter_numbers_its_equations_and_ends_with_the_exercise(built_book, assignment):
    text = (built_book / "book" / f"{assignment}.html").read_text()
    assert text.count('class="eqno"') >= 3, "equations are not numbered"
    refs = re.findall(r'href="#(equation-[^"]+)"', text)
    assert refs and all(f'id="{r}"' in text for r in refs)
    headings = re.findall(r"<h2>(.*?)<a class=\"headerlink\"", text)
    last = re.sub(r"<[^>]+>|[\d.]+\s", "", headings[-1]).strip() if headings else ""
    assert last.startswith("Exercise"), headings[-3:]


def _download(browser, server, assignment: str, suffix: str, dest: Path) -> Path:
    """Click the chapter page's download link whose target ends in ``suffix``; save the file."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(f"{server}book/{assignment}.html")
    link = page.locator(f'a.download[href$="{assignment}{suffix}"]')
    assert link.count() == 1
    with page.expect_download() as info:
        link.click()
    saved = dest / f"{assignment}{suffix}"
    info.value.save_as(saved)
    context.close()
    return saved


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_exercise_download_serves_the_student_notebook(browser, server, assignment, tmp_path):
    saved = _download(browser, server, assignment, ".ipynb", tmp_path)
    nb = nbformat.read(saved, as_version=4)
    nbformat.validate(nb)
    text = saved.read_text()
    assert "BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
    assert text == (REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text()


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_exercise_kit_link_downloads_the_kit(browser, server, assignment, tmp_path):
    """A student on the chapter page clicks the kit link and gets <assignment>.zip: one folder
    with the release notebook, a NumPy-only requirements file and the precomputed checks."""
    import zipfile
    with zipfile.ZipFile(_download(browser, server, assignment, ".zip", tmp_path)) as z:
        names = set(z.namelist())
        notebook = z.read(f"{assignment}/{assignment}.ipynb").decode()
    assert {f"{assignment}/requirements.txt",
            f"{assignment}/autograder/student/visible/{assignment}.json"} <= names
    assert notebook == (REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text()


def test_search_works_offline(browser, server):
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{server}search.html?q=variance", wait_until="networkidle")
    page.wait_for_selector("#search-results ul.search li", timeout=20_000)
    hits = page.locator("#search-results ul.search li").count()
    page.close()
    assert hits >= 3
    assert all(u.startswith(server) or u.startswith("data:") for u in requests)


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_chapter_uses_the_course_figure_style(assignment):
    text = (REPO / "book" / f"{assignment}.md").read_text()
    assert "use_course_style()" in text
