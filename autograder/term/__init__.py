"""A term with the course, around the grader: collect from a learning platform, the roster, due
dates, the late policy, written answers, LMS exports and the term's commands.

Everything here configures or wraps nbgrader's own machinery (``zip_collect``, the
``LateSubmissionPlugin``, manually graded cells, formgrader) and calls the grader
(``autograder.grader``) with the term's hooks (``autograder.term.grading``).  It may import the
grader, the course and the student side; nothing below imports it.
"""
