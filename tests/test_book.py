"""The website builds with -W, offline: no page references a CDN; math is served locally."""
import os
import re
from pathlib import Path

import pytest

from conftest import REPO

CDN = re.compile(r"""<(?:script|link|img|iframe)[^>]+(?:src|href)=["'](https?:)?//""", re.I)


def test_every_page_is_offline(built_book):
    pages = list(built_book.rglob("*.html"))
    assert len(pages) >= 8
    offenders = [str(p.relative_to(built_book)) for p in pages if CDN.search(p.read_text())]
    assert not offenders, f"pages loading from the network: {offenders}"


def test_mathjax_is_served_locally(built_book):
    page = (built_book / "book" / "ch2_forward.html").read_text()
    assert '_static/mathjax/tex-chtml.js' in page
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 100_000


def test_chapter_two_has_numbered_equations_and_figures(built_book):
    page = (built_book / "book" / "ch2_forward.html").read_text()
    assert len(re.findall(r'class="math notranslate nohighlight"', page)) >= 4
    assert len(re.findall(r'<img[^>]+src="[^"]*\.png"', page)) >= 2
    assert re.search(r'href="#equation-eq-ch2', page), "no equation cross-reference"


# ---- sources: every reference cited, every source article referenced (static, no build) -------

BIB_ENTRY = re.compile(r"^@\w+\{([^,\s]+),(.*?)^\}", re.S | re.M)
CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
ORIGINAL_URL = re.compile(r"原文：<(https?://[^>?]+)")


def bibliography() -> dict[str, str]:
    return dict(BIB_ENTRY.findall((REPO / "book" / "references.bib").read_text()))


def cited_keys() -> set[str]:
    keys = set()
    for page in (REPO / "book").glob("*.md"):
        for group in CITE.findall(page.read_text()):
            keys |= {k.strip() for k in group.split(",")}
    return keys


def test_every_reference_is_cited_and_every_citation_resolves():
    bib, cited = bibliography(), cited_keys()
    assert len(bib) >= 20
    assert not set(bib) - cited, f"in references.bib but cited nowhere: {sorted(set(bib) - cited)}"
    assert not cited - set(bib), f"cited but not in references.bib: {sorted(cited - set(bib))}"


def _titles(body: str) -> list[str]:
    """The entry's title, and any title quoted 《like this》 in it (a translation's title)."""
    title = re.search(r"\btitle\s*=\s*\{(.*)\},?\s*$", body, re.M).group(1)
    clean = lambda t: re.sub(r"\\(.)", r"\1", t.replace("{", "").replace("}", "")).strip()
    return [clean(title)] + re.findall(r"《([^》]+)》", body)


def _seed_folder() -> Path | None:
    candidates = [os.environ.get("BN_COURSE_SEEDS", ""), REPO / "shared" / "seeds",
                  REPO.parent / "shared" / "seeds", REPO.parent.parent / "shared" / "seeds"]
    return next((Path(c) for c in candidates if c and Path(c).is_dir()), None)


def test_every_source_article_is_in_the_bibliography():
    """Each article the course was planned from has an entry, found by its title, with the original
    URL where the article gives one."""
    bib = bibliography()
    sources = {k: b for k, b in bib.items() if "Source article of this course" in b}
    assert len(sources) >= 5
    folder = _seed_folder()
    if folder is None:
        pytest.skip("the source articles (shared/seeds) are not next to this checkout")
    seeds = sorted(folder.glob("*.txt"))
    assert seeds
    for seed in seeds:
        text = seed.read_text()
        head = text[:3000]
        matches = [k for k, b in sources.items() if any(t in head for t in _titles(b))]
        assert len(matches) == 1, f"{seed.name}: entries matching its title: {matches}"
        url = ORIGINAL_URL.search(head)
        if url:
            assert url.group(1) in sources[matches[0]], f"{seed.name}: original URL missing"
