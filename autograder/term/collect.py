"""Collect: nbgrader's ``zip_collect`` with the course's extractor and collector.

nbgrader's ``ZipCollectApp`` with a ``FileNameCollectorPlugin`` whose regular expression comes from
``Term.lms`` (Canvas, Moodle, plain ``<student>/<file>``) or ``Term.pattern``.  The course's
collector also accepts renamed copies of the notebook (``ch2_forward (1).ipynb``,
``ch2_forward-1.ipynb``) when exactly one of the assignment's notebooks matches, and takes each
file's submission time from the platform's name or the archive's metadata (Canvas's ``LATE``
marker included) into ``timestamp.txt``.  nbgrader keeps the newest of several submissions by one
student; a student collected before is replaced only by a newer submission (the replaced copy is
kept under ``downloaded/<a>/replaced/``).

Only what the platform put in the download decides who and when: the pattern is matched from
the top of each path, the course's extractor unpacks the download itself and nothing inside it,
its bounds (size, files, compression ratio) are read from the zip's directory before anything
is written, and student ids are held to a safe alphabet (``safety.safe_id``).
"""
import datetime as dt
import json
import logging
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from traitlets import Dict, Integer, Unicode

from autograder.grader.safety import SAFE_ID_RULE, safe_id, safe_text
from autograder.term.roster import due_date
from autograder.term.settings import Term, _utc


@dataclass
class CollectReport:
    collected: list = field(default_factory=list)    # (student, file name in the download)
    replaced: list = field(default_factory=list)     # (student, why)
    kept: list = field(default_factory=list)         # (student, why): an existing submission stayed
    unmatched: list = field(default_factory=list)    # (file, reason)

    def summary(self, assignment: str) -> str:
        lines = [f"{assignment}: collected {len(self.collected)} submission(s), replaced "
                 f"{len(self.replaced)}, kept {len(self.kept)} earlier, unmatched {len(self.unmatched)} file(s)"]
        lines += [f"  replaced  {s}: {why}" for s, why in self.replaced]
        lines += [f"  kept      {s}: {why}" for s, why in self.kept]
        lines += [f"  unmatched {f}: {why}" for f, why in self.unmatched]
        return "\n".join(lines)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())



class DownloadRefused(Exception):
    """The bulk download is past a bound, or not one: nothing of it is extracted."""


def _unsafe_name(name: str) -> str:
    """Why an entry's name cannot be written below the extraction folder ('' when it can)."""
    parts = re.split(r"[\\/]", name)
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "an absolute path"
    if ".." in parts:
        return "a '..' in the path"
    if "\0" in name or any(ord(ch) < 32 for ch in name):
        return "a control character in the name"
    return ""


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


# The ratio is judged only past this size: a few MiB of a notebook printing one line again and
# again compresses 300 times and is no bomb; a bomb is one by what it expands to.
RATIO_FROM = 8 << 20


def check_download(source: Path, max_bytes: int, max_files: int, max_ratio: int) -> None:
    """Refuse a download past the bounds, from the zip's central directory (or the folder's
    listing), before anything is written. Raises :class:`DownloadRefused` with the reason."""
    if source.is_dir():
        files = size = 0
        for root, _, names in os.walk(source):
            for name in names:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    files += 1
                    size += os.lstat(path).st_size
        packed = None
    else:
        try:
            with zipfile.ZipFile(source) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise DownloadRefused(f"cannot read the zip's directory: {exc}") from None
        files, size = len(infos), sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos)
        for info in infos:
            if info.file_size > RATIO_FROM and info.file_size > max_ratio * max(info.compress_size, 1):
                raise DownloadRefused(
                    f"{safe_text(info.filename, newlines=False)[:120]} would expand {info.compress_size} bytes "
                    f"to {info.file_size} ({info.file_size // max(info.compress_size, 1)} times; at most "
                    f"{max_ratio}): a zip bomb, refused before extraction")
    if files > max_files:
        raise DownloadRefused(f"{files} files (at most {max_files}, Term.max_download_files)")
    if size > max_bytes:
        raise DownloadRefused(f"{size / 2**20:.0f} MiB once extracted (at most {max_bytes / 2**20:.0f} MiB, "
                              f"Term.max_download_bytes)")
    if packed is not None and size > 8 * RATIO_FROM and size > max_ratio * max(packed, 1):
        raise DownloadRefused(f"{packed / 2**10:.0f} KiB would expand to {size / 2**20:.0f} MiB "
                              f"({size // max(packed, 1)} times; at most {max_ratio}): a zip bomb, "
                              f"refused before extraction")


class CourseExtractor(ExtractorPlugin):
    """Extracts the bulk download itself and nothing inside it: an archive a student uploaded
    stays a file (never unpacked into the class), names with ``..`` or an absolute path and
    links are refused, modes are the course's own (0644 files, 0755 folders: no setuid bit, no
    folder nobody can enter), each file's time is the platform's (the zip entry's, or the
    folder's file's), and every file is bounded as it is written, whatever its header says."""

    archive_timezone = Unicode("UTC").tag(config=True)
    max_bytes = Integer(4 << 30).tag(config=True)
    max_files = Integer(20000).tag(config=True)
    max_ratio = Integer(100).tag(config=True)

    def extract(self, archive_path, extracted_path):
        from dateutil import tz
        zone = tz.gettz(self.archive_timezone) or tz.UTC
        refused = getattr(getattr(self, "parent", None), "report", None)
        refused = refused.unmatched if refused is not None else []
        for entry in sorted(os.listdir(archive_path)):  # one: the download, as collect() copied it
            src = Path(archive_path) / entry
            check_download(src, self.max_bytes, self.max_files, self.max_ratio)
            if src.is_dir():
                self._copy_folder(src, Path(extracted_path) / entry, refused)
            else:
                self._unzip(src, Path(extracted_path) / src.stem, zone, refused)

    def _unzip(self, src: Path, dest: Path, zone, refused: list) -> None:
        budget = self.max_bytes
        with zipfile.ZipFile(src) as zf:
            for info in zf.infolist():
                name = info.filename
                why = _unsafe_name(name) or ("a link, not a file" if _is_link(info) else "")
                if why:
                    refused.append((safe_text(name, newlines=False)[:200], f"refused: {why}"))
                    continue
                target = dest.joinpath(*[p for p in re.split(r"[\\/]", name) if p not in ("", ".")])
                if info.is_dir():
                    _mkdirs(target, dest)
                    continue
                try:
                    _mkdirs(target.parent, dest)
                    with zf.open(info) as fin, open(target, "wb") as fout:
                        os.fchmod(fout.fileno(), 0o644)
                        while chunk := fin.read(1 << 20):
                            budget -= len(chunk)
                            if budget < 0:
                                raise DownloadRefused(f"more than {self.max_bytes} bytes once extracted")
                            fout.write(chunk)
                except (OSError, zipfile.BadZipFile) as exc:  # e.g. a file and a folder of one name
                    refused.append((safe_text(name, newlines=False)[:200],
                                    f"refused: cannot be extracted ({type(exc).__name__})"))
                    continue
                when = dt.datetime(*info.date_time, tzinfo=zone).timestamp()
                os.utime(target, (when, when))

    def _copy_folder(self, src: Path, dest: Path, refused: list) -> None:
        for root, _, names in os.walk(src):
            rel = Path(root).relative_to(src)
            _mkdirs(dest / rel, dest)
            for name in names:
                path = Path(root) / name
                if path.is_symlink() or not path.is_file():
                    refused.append((str(rel / name), "refused: a link or special file, not a file"))
                    continue
                target = dest / rel / name
                shutil.copyfile(path, target)
                target.chmod(0o644)
                st = path.stat()
                os.utime(target, (st.st_atime, st.st_mtime))


def _mkdirs(path: Path, top: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    while True:  # each folder made here: 0755, whatever was asked
        path.chmod(0o755)
        if path == top or top not in path.parents:
            break
        path = path.parent


class CourseCollector(FileNameCollectorPlugin):
    """nbgrader's file-name collector with the course's platform patterns, renamed copies of the
    notebook, the submission time, and a reason for every file it skips."""

    lms = Unicode("canvas").tag(config=True)
    extracted = Unicode("").tag(config=True)       # the extracted folder: names are matched relative to it
    assignment = Unicode("").tag(config=True)
    notebooks = Dict({}).tag(config=True)          # normalized name -> release notebook file name
    due = Unicode("").tag(config=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seen: dict[str, dict | str] = {}      # relative path -> info (matched) or reason

    def relative(self, path: str) -> str:
        """The file's path inside the download: below extracted/<download's own name>/."""
        rel = (os.path.relpath(path, self.extracted) if self.extracted else path).replace(os.sep, "/")
        return rel.split("/", 1)[1] if self.extracted and "/" in rel else rel

    def collect(self, submitted_file):
        rel = self.relative(submitted_file)
        info = self._why_not(rel, submitted_file)
        self.seen[rel] = info
        return info if isinstance(info, dict) else None

    def _why_not(self, rel: str, path: str):
        parts = rel.split("/")
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):
            return "hidden or system file"
        match = re.match(self.named_regexp, rel)  # from the download's top level only
        if not match or not match.groupdict().get("student_id") or not match.groupdict().get("file_id"):
            return f"name does not fit the {self.lms} pattern"
        info = {k: v for k, v in match.groupdict().items() if v is not None}
        if not safe_id(info["student_id"]):
            return f"student id {safe_text(info['student_id'], newlines=False)[:80]!r} refused ({SAFE_ID_RULE})"
        stem, ext = os.path.splitext(info["file_id"])
        if ext.lower() != ".ipynb":
            return f"not a notebook ({ext or 'no extension'})"
        file_id = self._notebook_for(stem)
        if file_id is None:
            names = ", ".join(sorted(self.notebooks.values()))
            return f"not a notebook of {self.assignment} (expected {names})"
        if file_id == "":
            return "ambiguous: the name fits more than one of the assignment's notebooks"
        when = _utc(info["timestamp"]) if info.get("timestamp") else \
            dt.datetime.fromtimestamp(os.stat(path).st_mtime, dt.timezone.utc).replace(tzinfo=None)
        if info.get("late") and self.due:
            due = _utc(self.due)
            if when <= due:  # the platform says late; its zip time says otherwise: trust the platform
                when = due + dt.timedelta(seconds=1)
        return {"student_id": info["student_id"], "file_id": file_id,
                "timestamp": when.isoformat(" "), "name": info.get("name", ""),
                "submission_id": info.get("submission_id", ""), "late": bool(info.get("late"))}

    def _notebook_for(self, stem: str):
        """The release notebook this (possibly renamed) file is a copy of; '' when ambiguous."""
        key = _norm(stem)
        if key in self.notebooks:
            return self.notebooks[key]
        hits = {v for k, v in self.notebooks.items() if k and k in key}
        if len(hits) == 1:
            return hits.pop()
        return "" if hits else None


def _zip_collect_app():
    from nbgrader.apps import ZipCollectApp

    class CourseZipCollect(ZipCollectApp):
        """nbgrader's ZipCollectApp; transferring never overwrites silently: a student collected
        before is replaced only by a newer submission, and every decision is reported."""

        report = None

        def _collect_files(self, src_files):
            data = super()._collect_files(src_files)
            seen = self.collector_plugin_inst.seen
            kept = {f for d in data.values() for f in d["src_files"]}
            for path in src_files:
                rel = self.collector_plugin_inst.relative(path)
                info = seen.get(rel)
                if isinstance(info, str):
                    self.report.unmatched.append((rel, info))
                elif isinstance(info, dict) and path not in kept:
                    self.report.unmatched.append(
                        (rel, f"older submission of {info['student_id']} (a newer one was collected)"))
            return data

        def _transfer_files(self, collected_data):
            todo = {}
            for student, data in collected_data.items():
                dest = Path(self.coursedir.format_path(self.coursedir.submitted_directory, student,
                                                       self.coursedir.assignment_id))
                names = [self.collector_plugin_inst.relative(p) for p in data["src_files"]]
                if dest.exists() and any(dest.iterdir()):
                    old = self.coursedir.get_existing_timestamp(str(dest))
                    new = data["timestamp"]
                    if old is not None and new is not None and new <= old:
                        self.report.kept.append((student, f"the submission collected before ({old:%Y-%m-%d %H:%M}) "
                                                          f"is not older than {', '.join(names)}"))
                        continue
                    backup = (Path(self._format_collect_path("replaced")) / student
                              / (old.strftime("%Y%m%dT%H%M%S") if old else "undated"))
                    backup.parent.mkdir(parents=True, exist_ok=True)
                    shutil.rmtree(backup, ignore_errors=True)
                    shutil.move(str(dest), str(backup))
                    change = f"{old:%Y-%m-%d %H:%M} -> {new:%Y-%m-%d %H:%M}" if old and new else "undated copy"
                    self.report.replaced.append((student, f"{change} (the earlier copy is kept in {backup})"))
                todo[student] = data
                self.report.collected.append((student, ", ".join(names)))
            super()._transfer_files(todo)

    return CourseZipCollect


def collect(api, assignment: str, source: Path, lms: str | None = None, pattern: str | None = None,
            config=None) -> CollectReport:
    """Collect an LMS bulk download (a zip, or a folder) of ``assignment`` into nbgrader's
    ``submitted/<student>/<assignment>/``.  ``source`` is only read."""
    from nbgrader.utils import capture_log, temp_attrs
    from traitlets.config import Config
    source = Path(source)
    if not source.exists():
        raise SystemExit(f"error: {source} does not exist")
    if source.is_file() and not zipfile.is_zipfile(source):
        raise SystemExit(f"error: {source} is neither a folder nor a zip archive")
    term = Term(config=config or api.config)
    lms = lms or term.lms
    regex = term.regex(lms, pattern)
    try:
        re.compile(regex)
    except re.error as exc:
        raise SystemExit(f"error: --pattern is not a regular expression: {exc}") from None
    try:  # from the zip's central directory, before anything is written
        check_download(source, term.max_download_bytes, term.max_download_files, term.max_compression_ratio)
    except DownloadRefused as exc:
        raise SystemExit(f"error: {source.name}: refused: {exc}") from None
    root = Path(api.coursedir.root)
    work = root / "downloaded" / assignment
    archive = work / "archive"
    shutil.rmtree(archive, ignore_errors=True)
    shutil.rmtree(work / "extracted", ignore_errors=True)
    archive.mkdir(parents=True)
    if source.is_dir():
        shutil.copytree(source, archive / source.name, symlinks=False,
                        ignore=lambda d, names: [n for n in names if os.path.islink(os.path.join(d, n))])
    else:
        shutil.copy2(source, archive / source.name)
    release = Path(api.coursedir.format_path(api.coursedir.release_directory, ".", assignment))
    notebooks = {_norm(p.stem): p.name for p in release.glob("*.ipynb")}
    if not notebooks:
        raise SystemExit(f"error: no released notebook for {assignment} in {release}")

    cfg = Config()
    cfg.CourseCollector.named_regexp = regex
    cfg.CourseCollector.lms = lms if not pattern else "--pattern"
    cfg.CourseCollector.extracted = str(work / "extracted")
    cfg.CourseCollector.assignment = assignment
    cfg.CourseCollector.notebooks = notebooks
    cfg.CourseCollector.due = str(due_date(api, assignment, term) or "")
    cfg.CourseExtractor.archive_timezone = term.archive_timezone
    cfg.CourseExtractor.max_bytes = term.max_download_bytes
    cfg.CourseExtractor.max_files = term.max_download_files
    cfg.CourseExtractor.max_ratio = term.max_compression_ratio
    App = _zip_collect_app()
    report = CollectReport()
    with temp_attrs(api.coursedir, assignment_id=assignment):
        app = App(coursedir=api.coursedir, parent=api)
        app.update_config(cfg)
        app.extractor_plugin = CourseExtractor
        app.collector_plugin = CourseCollector
        app.report = report
        level = app.log.level
        app.log.setLevel(logging.ERROR)  # the summary below says what happened, file by file
        try:
            result = capture_log(app)
        finally:
            app.log.setLevel(level)
    if not result["success"]:
        raise SystemExit("error: nbgrader zip_collect failed: "
                         + ((result.get("error") or "") + (result.get("log") or "")).strip()[-800:])
    _remember(work / "collected.json", app.collector_plugin_inst.seen, report)
    return report


def _remember(path: Path, seen: dict, report: CollectReport) -> None:
    """What the platform called each collected student (for feedback named the platform's way)."""
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    collected = {s for s, _ in report.collected}
    for info in seen.values():
        if isinstance(info, dict) and info["student_id"] in collected:
            known[info["student_id"]] = {k: info[k] for k in ("name", "submission_id", "timestamp", "late")}
    path.write_text(json.dumps(known, indent=1, sort_keys=True))


def collected_names(api, assignment: str) -> dict:
    try:
        return json.loads((Path(api.coursedir.root) / "downloaded" / assignment / "collected.json").read_text())
    except (OSError, ValueError):
        return {}

