"""The website builds with -W, offline: no page references a CDN; math is served locally."""
import re


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
