"""The course's nbgrader configuration (``autograder/nbgrader_config.py``, which stock nbgrader
reads from ``autograder/``) and nbgrader's API over it, from any working directory."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

CONFIG_FILE = Path(__file__).resolve().parents[1] / "nbgrader_config.py"


def load_config() -> Config:
    from traitlets.config.loader import PyFileConfigLoader
    return PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()


def make_api(config: Config | None = None) -> NbGraderAPI:
    from nbgrader.apps import NbGraderAPI
    config = config if config is not None else load_config()
    return NbGraderAPI(coursedir=_course_directory(config), config=config)


def _course_directory(config):
    """nbgrader's CourseDirectory, except that a submission's unreadable ``timestamp.txt`` (a
    stray byte, a huge file) counts as no timestamp instead of failing the whole submission."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import parse_utc

    class LenientCourseDirectory(CourseDirectory):
        def get_existing_timestamp(self, dest_path):
            path = os.path.join(dest_path, "timestamp.txt")
            try:
                with open(path, "rb") as f:
                    text = f.read(200).decode().strip()
                return parse_utc(text) if text else None
            except FileNotFoundError:
                return None
            except Exception:
                self.log.warning("unreadable timestamp, graded as having none: %s", path)
                return None

    return LenientCourseDirectory(config=config)
