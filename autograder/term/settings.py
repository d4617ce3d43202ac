"""The term's settings (``c.Term`` in ``autograder/nbgrader_config.py``) and the platforms' file names."""
from __future__ import annotations

import datetime as dt

from traitlets import Dict, Enum, Integer, Unicode
from traitlets.config import Configurable

# Matched from the start of each file's path inside the download ("folder/file"), so the
# platform's own top-level entry decides the student and the time: nothing a student uploaded
# (a folder, an archive, a file named like another student's) can.
PATTERNS = {
    # Canvas "Download Submissions": its zipper joins the sortable name ("Lovelace, Ada"; a
    # "_<digits>_" in it becomes "-<digits>-"), " LATE_" or "_", and the user id, turns spaces
    # and every other non-word character into "-", downcases all of it, then appends
    # "_<attachment id>_<file name>":  lovelace--ada-late_41049_900091_ch2_forward.ipynb.
    # (Older downloads wrote "_LATE_"; both are read, in any case.)
    "canvas": r"^(?P<name>[^/]*?)(?:[-_ ](?P<late>(?i:late)))?_(?P<student_id>\d+)_(?P<submission_id>\d+)_"
              r"(?P<file_id>[^/]+)$",
    # <Full Name>_<participant id>_assignsubmission_file_[/]<filename>   (Moodle "Download all
    # submissions", flat or "in folders")
    "moodle": r"^(?P<name>[^/]+?)_(?P<student_id>\d+)_assignsubmission_file_/?(?P<file_id>[^/]+)$",
    # <student>/<filename>
    "plain": r"^(?P<student_id>[^/]+)/(?P<file_id>[^/]+)$",
}


class Term(Configurable):
    """The term's settings, in ``autograder/nbgrader_config.py`` (``c.Term...``)."""

    lms = Enum(list(PATTERNS), "canvas",
               help="Which learning platform the bulk downloads come from").tag(config=True)
    pattern = Unicode("", help="A regular expression for another platform's file names, matched "
                               "from the start of each file's path inside the download; it must define "
                               "the groups student_id and file_id, and may define timestamp and "
                               "late").tag(config=True)
    due = Dict({}, help="Due date per assignment, e.g. {'ch2_forward': '2026-10-05 23:59 UTC'}; "
                        "nbgrader parses it, a time without a zone is UTC").tag(config=True)
    archive_timezone = Unicode("UTC", help="Time zone of the times stored in platform zips").tag(config=True)
    # Read from the download's central directory before anything is written: a bulk download
    # past these is refused whole (a zip bomb, or not a download of one assignment).
    max_download_bytes = Integer(4 << 30, help="Most bytes a bulk download may hold, "
                                               "uncompressed").tag(config=True)
    max_download_files = Integer(20000, help="Most files a bulk download may hold").tag(config=True)
    max_compression_ratio = Integer(100, help="Most a file of a bulk download (past 8 MiB) or the "
                                              "whole download (past 64 MiB) may expand over its "
                                              "compressed size").tag(config=True)

    def regex(self, lms: str | None = None, pattern: str | None = None) -> str:
        return pattern or self.pattern or PATTERNS[lms or self.lms]



def _utc(value) -> dt.datetime:
    from nbgrader.utils import parse_utc
    return parse_utc(value)
