"""The term's settings (``c.Term`` in ``autograder/nbgrader_config.py``) and the platforms' file names."""
from __future__ import annotations

import datetime as dt

from traitlets import Dict, Enum, Unicode
from traitlets.config import Configurable

# Searched in each file's path inside the download ("folder/file"); must end at the file name.
PATTERNS = {
    # <studentname>_[LATE_]<userid>_<submissionid>_<filename>   (Canvas "Download Submissions")
    "canvas": r"(?:^|/)(?P<name>[^/_]+)_(?:(?P<late>LATE)_)?(?P<student_id>\d+)_(?P<submission_id>\d+)_"
              r"(?P<file_id>[^/]+)$",
    # <Full Name>_<participant id>_assignsubmission_file_[/]<filename>   (Moodle "Download all
    # submissions", flat or "in folders")
    "moodle": r"(?:^|/)(?P<name>[^/_]+)_(?P<student_id>\d+)_assignsubmission_file_/?(?P<file_id>[^/]+)$",
    # <student>/<filename>
    "plain": r"(?:^|/)(?P<student_id>[^/]+)/(?P<file_id>[^/]+)$",
}


class Term(Configurable):
    """The term's settings, in ``autograder/nbgrader_config.py`` (``c.Term...``)."""

    lms = Enum(list(PATTERNS), "canvas",
               help="Which learning platform the bulk downloads come from").tag(config=True)
    pattern = Unicode("", help="A regular expression for another platform's file names, searched "
                               "in each file's path inside the download; it must define the groups "
                               "student_id and file_id, and may define timestamp and late").tag(config=True)
    due = Dict({}, help="Due date per assignment, e.g. {'ch2_forward': '2026-10-05 23:59 UTC'}; "
                        "nbgrader parses it, a time without a zone is UTC").tag(config=True)
    archive_timezone = Unicode("UTC", help="Time zone of the times stored in platform zips").tag(config=True)

    def regex(self, lms: str | None = None, pattern: str | None = None) -> str:
        return pattern or self.pattern or PATTERNS[lms or self.lms]



def _utc(value) -> dt.datetime:
    from nbgrader.utils import parse_utc
    return parse_utc(value)
