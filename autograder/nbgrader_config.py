"""nbgrader configuration for the course.

nbgrader reads this file from the current directory only, so run stock nbgrader commands from
``autograder/`` (``cd autograder && nbgrader ...``); ``python -m autograder`` loads it from anywhere.
It maps nbgrader's standard steps onto this repository's layout:

    solutions/<assignment>/    nbgrader "source"   (instructor notebooks, committed)
    exercises/<assignment>/    nbgrader "release"  (student notebooks, generated, committed)
    autograder/submitted/<student>/<assignment>/   what students hand in (instance data)
    autograder/autograded/, feedback/, gradebook.db                      (instance data)

Autograding replaces nbgrader's in-kernel test execution with the sandboxed run + trusted judge
(``autograder.grader.plugins``); every other step is nbgrader's own.
"""
import os

from autograder.grader.plugins import AUTOGRADE_PREPROCESSORS, SanitizeOnce

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Instance data (submitted/, autograded/, feedback/, gradebook.db, grades.csv) lives here;
# BN_GRADER_ROOT moves it elsewhere (the test suite grades in a scratch folder).
ROOT = os.environ.get("BN_GRADER_ROOT", HERE)

c = get_config()  # noqa: F821  (injected by traitlets)

c.CourseDirectory.course_id = "bn-course"
c.CourseDirectory.root = ROOT
c.CourseDirectory.source_directory = os.path.join(REPO, "solutions")
c.CourseDirectory.release_directory = os.path.join(REPO, "exercises")
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# SQLite by default; point this at PostgreSQL for a large course (see README).
c.CourseDirectory.db_url = os.environ.get("BN_GRADEBOOK_URL", "sqlite:///" + os.path.join(ROOT, "gradebook.db"))

# nbgrader's sanitize preprocessors and the course's repairs (plugins.sanitize_preprocessors),
# done once per submission when the grading run's pre-pass already did them.
c.Autograde.sanitize_preprocessors = [SanitizeOnce]
c.Autograde.autograde_preprocessors = AUTOGRADE_PREPROCESSORS
# nbconvert validates the whole notebook against nbformat's schema after every preprocessor
# (a tenth of nbgrader's time per notebook); once, after the last, still refuses an invalid result.
c.Exporter.optimistic_validation = True
# Every page nbconvert renders from a submission (feedback, formgrader's views) is sanitized:
# student markdown and outputs may hold raw HTML, scripts or javascript: links.
c.HTMLExporter.sanitize_html = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# ---- a term (autograder/term/; README "A term with this course") ----------------------------
from autograder.term.late import CoursePenalty  # noqa: E402

# Which platform the bulk downloads come from: "canvas", "moodle" or "plain" (<student>/<file>);
# c.Term.pattern takes a regular expression for any other layout.
c.Term.lms = "canvas"
# Due dates (UTC unless a zone is given); `python -m autograder due A WHEN` sets one instead.
c.Term.due = {
    # "ch2_forward": "2026-10-05 23:59 UTC",
}
# Late penalty, through nbgrader's late-submission plugin: after 15 minutes' grace, 10 % of the
# score per started day late, at most 50 %.
c.AssignLatePenalties.plugin_class = CoursePenalty
c.CoursePenalty.grace_minutes = 15
c.CoursePenalty.percent_per_day = 10
c.CoursePenalty.max_percent = 50
