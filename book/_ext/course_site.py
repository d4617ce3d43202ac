"""Site settings Jupyter Book 1 has no _config.yml key for.

Offline: nothing in a page points at a CDN.
* MathJax 3 is served from the installed ``django-static-mathjax`` wheel.
* sphinx-thebe (added by Jupyter Book whether or not launch buttons are on) writes an unpkg URL
  into every page; the course has no live-code buttons, so its scripts are dropped.

Student kits  Each chapter's Exercise section links ``/_build/kits/<assignment>.zip`` with the
``{download}`` role; the kits are built (``autograder.course.kits``) when the build starts, so any way
of building the book serves kits that match ``exercises/``.

MathJax  The files are copied into ``_static/mathjax`` after the
build rather than added to ``html_static_path``: Jupyter Book 1 would inject every ``.js`` found
in a static path into every page.
"""
import shutil
from pathlib import Path


def _es5_dir() -> Path:
    import mathjax  # the django-static-mathjax wheel's package: static files only
    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _build_kits(app):
    from autograder.course import kits
    kits.build_all(Path(app.srcdir) / "_build" / "kits")


def _configure(app, config):
    config.mathjax_path = "mathjax/tex-chtml.js"
    # An empty default colour mode makes pydata-sphinx-theme log a console error on every page.
    config.html_context = {**config.html_context, "default_mode": "light"}


def _copy(app, exception):
    if exception is None and app.builder.format == "html":
        dest = Path(app.outdir) / "_static" / "mathjax"
        if not (dest / "tex-chtml.js").exists():
            shutil.copytree(_es5_dir(), dest, dirs_exist_ok=True)
        _write_favicon_ico(Path(app.outdir) / "favicon.ico")


def _write_favicon_ico(path: Path) -> None:
    """Browsers ask for /favicon.ico on pages that name no icon (the root redirect page)."""
    if path.exists():
        return
    from PIL import Image, ImageDraw
    image = Image.new("RGBA", (32, 32), "#0072B2")
    ImageDraw.Draw(image).text((6, 10), "BN", fill="white")
    image.save(path, format="ICO", sizes=[(32, 32)])


def _drop_thebe(app, pagename, templatename, context, doctree):
    def is_thebe(script) -> bool:
        body = getattr(script, "attributes", {}).get("body", "") or ""
        return "thebe" in str(script) or "THEBE_JS_URL" in body
    if "script_files" in context:
        context["script_files"] = [s for s in context["script_files"] if not is_thebe(s)]


def setup(app):
    app.connect("config-inited", _configure, priority=900)
    app.connect("builder-inited", _build_kits)
    app.connect("html-page-context", _drop_thebe)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
