"""Feedback pages: nbgrader ``generate_feedback`` with the course's template, in a subprocess with a
clock per request and a memory cap (``python -m autograder.grader.feedback --serve``, kept between
requests: ``Renderer``; ``python -m autograder.grader.feedback ASSIGNMENT [STUDENT ...]`` renders
once), so a page that cannot be rendered, or only at great cost, fails alone instead of stopping
the batch.
"""
from __future__ import annotations

import copy
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from traitlets.config import Config

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"


FEEDBACK_SECONDS = 120.0          # one feedback run, plus FEEDBACK_PER_STUDENT per student
FEEDBACK_PER_STUDENT = 10.0
FEEDBACK_MEMORY = 4 << 30          # address space of a feedback run


MATHJAX_SRC = "../../_mathjax/"   # where a feedback page finds MathJax (templates/bn_feedback)


def mathjax_wheel() -> Path:
    """MathJax 3 from the django-static-mathjax wheel (static files only)."""
    import mathjax as wheel
    return Path(wheel.__file__).parent / "static" / "mathjax" / "es5"


def offline_mathjax() -> list[tuple[Path, str]]:
    """(file, path in a zip) of what a feedback page needs to render its math with no network:
    the TeX-to-CHTML component, the safe extension, the fonts, and the TeX extensions it may
    autoload, less those the page refuses to load (html, unicode). About 2 MB."""
    es5 = mathjax_wheel()
    picked = [es5 / "tex-chtml.js", es5 / "ui" / "safe.js",
              *sorted((es5 / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff")),
              *sorted(p for p in (es5 / "input" / "tex" / "extensions").glob("*.js")
                      if p.stem not in ("html", "unicode", "all-packages"))]
    return [(p, "_mathjax/" + p.relative_to(es5).as_posix()) for p in picked]


def write_feedback(config: Config, assignment: str, who: list[str], whole_class: bool) -> dict[str, str]:
    """nbgrader ``generate_feedback`` with the course's template, in a subprocess with a clock and
    a memory cap. One run for the class first; if it fails, one run per student, so a page that
    cannot be rendered costs its own student only. Returns {student: one-line reason} of those
    whose feedback could not be written."""
    if not who:
        return {}
    seconds = FEEDBACK_SECONDS + FEEDBACK_PER_STUDENT * len(who)
    ok, _ = _feedback_process(assignment, None if whole_class else who, seconds)
    if ok:
        return {}
    failed = {}
    for student in who:
        ok, why = _feedback_process(assignment, [student], FEEDBACK_SECONDS)
        if not ok:
            failed[student] = why
    return failed


def _feedback_process(assignment: str, students, seconds: float, env: dict | None = None) -> tuple[bool, str]:
    """Render with this thread's renderer (``Renderer``); (True, "") or (False, one-line reason)."""
    renderer = getattr(_RENDERERS, "renderer", None)
    if renderer is None:
        renderer = _RENDERERS.renderer = Renderer()
    return renderer.render(assignment, students, seconds, env)


_RENDERERS = threading.local()


def close_renderer() -> None:
    """Stop this thread's renderer (at the end of a grading run; a Dask worker keeps its own)."""
    renderer = getattr(_RENDERERS, "renderer", None)
    if renderer is not None:
        renderer.close()


def live_renderer_cpu() -> float:
    """CPU seconds this thread's live renderer has spent so far (for the bench: a live process's
    CPU is not in ``RUSAGE_CHILDREN`` until it has exited and been waited for)."""
    renderer = getattr(_RENDERERS, "renderer", None)
    return renderer.cpu if renderer is not None and renderer.proc is not None else 0.0


_ENV_PREFIX = "BN_"  # what a request carries of its environment (the root, the gradebook, ...)


class Renderer:
    """A feedback process kept between requests (``python -m autograder.grader.feedback --serve``):
    its imports (nbgrader, nbconvert, SQLAlchemy: ~1.4 core-s) are paid once per grading process
    and thread, not once per assignment or, on a cluster, once per submission. Each request has
    its clock; the process has the memory cap. A request that fails or runs out of time takes the
    process with it, so the next request, such as the per-student retries, starts a fresh one
    that no bad page has touched. It dies with the thread that started it."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.err = None
        self.cpu = 0.0  # the live process's own CPU seconds, as of its last reply

    def _start(self) -> None:
        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (FEEDBACK_MEMORY, FEEDBACK_MEMORY))
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.grader.feedback", "--serve"],
                                     cwd=str(HERE.parents[1]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, preexec_fn=limit)

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout, self.err):
                f.close()
        self.proc = self.err = None
        self.cpu = 0.0

    def render(self, assignment: str, students: list[str] | None, seconds: float,
               env: dict | None = None) -> tuple[bool, str]:
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        source = os.environ if env is None else env
        request = {"assignment": assignment, "students": list(students) if students else None,
                   "env": {k: v for k, v in source.items() if k.startswith(_ENV_PREFIX)}}
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            ready = select.select([self.proc.stdout], [], [], seconds)[0]
            line = self.proc.stdout.readline() if ready else None
        except OSError:
            line = b""
        if line is None:
            self.close()
            return False, f"rendering took longer than {seconds:g} s"
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if isinstance(reply, dict) and reply.get("ok") is True:
            if isinstance(reply.get("cpu"), (int, float)):
                self.cpu = float(reply["cpu"])
            return True, ""
        why = reply.get("why") if isinstance(reply, dict) else None
        if not why:
            self.proc.kill()
            self.proc.wait()
            self.err.seek(0)
            lines = [ln for ln in self.err.read()[-4096:].decode(errors="replace").splitlines() if ln.strip()]
            why = lines[-1] if lines else f"exit status {self.proc.returncode}"
        self.close()
        return False, str(why)[:200]


def serve() -> int:
    """The renderer's side: one JSON request per line on stdin, one reply per line on the
    original stdout (anything printed while rendering goes to stderr)."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from autograder.grader.config import load_config
    for line in sys.stdin:
        try:
            request = json.loads(line)
            for key in [k for k in os.environ if k.startswith(_ENV_PREFIX)]:
                del os.environ[key]
            os.environ.update({str(k): str(v) for k, v in request["env"].items()})
            render_feedback(load_config(), request["assignment"], request["students"])
            used = resource.getrusage(resource.RUSAGE_SELF)
            reply = {"ok": True, "cpu": used.ru_utime + used.ru_stime}
        except BaseException as exc:
            reply = {"ok": False, "why": f"{type(exc).__name__}: {exc}"[:300]}
        finally:
            from autograder.grader.config import release_gradebook_connections
            release_gradebook_connections()  # a worker's renderer holds none between requests
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
        if not reply["ok"]:
            return 1  # a fresh process for whatever comes next
    return 0


def place_mathjax(feedback_dir: Path) -> None:
    """MathJax beside the feedback pages (``feedback/_mathjax``), which load it from there."""
    mathjax = feedback_dir / "_mathjax"
    if not (mathjax / "tex-chtml.js").exists():
        shutil.copytree(mathjax_wheel(), mathjax, dirs_exist_ok=True)


def template_dirs() -> list[str]:
    """Where ``bn_feedback`` and the nbgrader feedback template it extends are found."""
    import nbgrader
    return [str(TEMPLATES), str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates")]


IMAGE_ALT = "No description has been provided for this image"
_EXPORTER: list = []


def feedback_exporter() -> type:
    """nbconvert's ``HTMLExporter`` less its BeautifulSoup pass over the finished page: more than
    half of a page's rendering time (parse and reserialize) for two edits, of which the classic
    template nbgrader's feedback extends needs one: an ``alt`` text on images that have none,
    given here in the output's metadata before the template renders (the template writes it).
    The other, ``tabindex`` on JupyterLab-template cells, matches nothing in this template."""
    if _EXPORTER:
        return _EXPORTER[0]
    from nbconvert.exporters import HTMLExporter, TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class FeedbackExporter(HTMLExporter):
        def _create_environment(self):
            environment = super()._create_environment()
            environment.bytecode_cache = _compiled_templates()
            return environment

        def from_notebook_node(self, nb, resources=None, **kw):
            for cell in nb.cells:
                if cell.get("metadata", {}).get("alt"):
                    continue
                for output in cell.get("outputs", []):
                    _give_images_alt(output)
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            self.register_filter("highlight_code", self.filters.get(
                "highlight_code", RememberedHighlight(pygments_lexer=lexer, parent=self)))
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    class RememberedHighlight(Highlight2HTML):
        """nbconvert's code highlighting, remembered per source: most of a class's code cells
        (the given code, the check cells) are the same in every student's page, and pygments was
        a third of the feedback process's time. The HTML depends on nothing but what the key
        holds: the source, the language, a cell's ``magics_language`` and the formatter's
        options."""

        def __call__(self, source, language=None, metadata=None):
            magics = metadata.get("magics_language") if isinstance(metadata, dict) else None
            key = (source, language or self.pygments_lexer, magics,
                   repr(sorted(self.extra_formatter_options.items())))
            found = _HIGHLIGHTED.get(key)
            if found is None:
                found = super().__call__(source, language, metadata)
                size = len(source) + len(found)
                if size <= _HIGHLIGHT_BUDGET // 64:  # a very long cell is highlighted each time
                    if _HIGHLIGHT_HELD[0] + size > _HIGHLIGHT_BUDGET:
                        _HIGHLIGHTED.clear()
                        _HIGHLIGHT_HELD[0] = 0
                    _HIGHLIGHTED[key] = found
                    _HIGHLIGHT_HELD[0] += size
            return found

    _EXPORTER.append(FeedbackExporter)
    return FeedbackExporter


def _compiled_templates():
    """Jinja's bytecode cache, in this process's memory: each feedback run (one per assignment)
    makes a new exporter, whose new environment compiled the same nine templates again (0.15
    core-s a run). A template is taken from here only while its source is the same (Jinja keys
    it by name and file, and checks the source's checksum)."""
    if not _TEMPLATE_CODE:
        from jinja2 import BytecodeCache

        class InMemory(BytecodeCache):
            def __init__(self):
                self.code: dict[str, bytes] = {}

            def load_bytecode(self, bucket):
                if bucket.key in self.code:
                    bucket.bytecode_from_string(self.code[bucket.key])

            def dump_bytecode(self, bucket):
                self.code[bucket.key] = bucket.bytecode_to_string()

            def clear(self):
                self.code.clear()
        _TEMPLATE_CODE.append(InMemory())
    return _TEMPLATE_CODE[0]


_TEMPLATE_CODE: list = []
_HIGHLIGHTED: dict[tuple, str] = {}  # (source, language, magics, options) -> HTML, this process
_HIGHLIGHT_BUDGET = 32 << 20  # characters of source and HTML held; past it, the memory starts again
_HIGHLIGHT_HELD = [0]


def _give_images_alt(output) -> None:
    data = output.get("data")
    if not isinstance(data, dict):
        return
    metadata = output.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        return
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            per = metadata.get(mime)
            if not isinstance(per, dict):
                metadata[mime] = {}
                per = metadata[mime]  # (a NotebookNode stores a copy of the dict it is given)
            if not per.get("alt") and not metadata.get("alt"):
                per["alt"] = IMAGE_ALT


def feedback_config() -> Config:
    """What a feedback run sets over the course's config: the course's template and exporter
    (``feedback_exporter``), and the gradebook read in two queries per page (``GetGradesAtOnce``,
    in place of nbgrader's ``GetGrades``)."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from traitlets.config import Config

    from autograder.grader.plugins import GetGradesAtOnce
    template = Config()
    template.HTMLExporter.template_name = "bn_feedback"
    template.GenerateFeedback.exporter_class = feedback_exporter()
    template.GenerateFeedback.preprocessors = [GetGradesAtOnce, CSSHTMLHeaderPreprocessor]
    return template


def render_feedback(config: Config, assignment: str, students: list[str] | None) -> None:
    """nbgrader ``generate_feedback`` in this process (``students`` None: the whole class), with the
    course's template (sanitized, MathJax served from ``feedback/_mathjax`` rather than a CDN)."""
    config = copy.deepcopy(config)
    config.HTMLExporter.template_name = "bn_feedback"
    config.HTMLExporter.extra_template_basedirs = template_dirs()
    from autograder.grader.config import make_api
    api = make_api(config)
    place_mathjax(Path(api.coursedir.root) / api.coursedir.feedback_directory)
    from nbgrader.apps.api import capture_log
    from nbgrader.converters import GenerateFeedback
    from nbgrader.utils import temp_attrs
    # What NbGraderAPI.generate_feedback does, but with the course's template (the API pins
    # nbgrader's own, which loads MathJax from a CDN).
    template = feedback_config()
    for student in (students or [None]):  # None: one nbgrader run for the whole class
        attrs = {"assignment_id": assignment, **({"student_id": student} if student else {})}
        with temp_attrs(api.coursedir, **attrs):
            app = GenerateFeedback(coursedir=api.coursedir, parent=api)
            app.update_config(template)
            app.force = True
            result = capture_log(app)
        if not result["success"]:
            text = (result.get("error") or "") + (result.get("log") or "")
            lines = [ln for ln in text.splitlines() if "Error" in ln or "error" in ln] or text.splitlines() or [""]
            raise RuntimeError(f"generate_feedback failed for {assignment}: {lines[-1].strip()[:200]}")


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    if argv == ["--serve"]:
        return serve()
    from autograder.grader.config import load_config
    try:
        render_feedback(load_config(), argv[0], argv[1:] or None)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}"[:300], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
