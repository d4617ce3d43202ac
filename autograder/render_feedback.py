"""``python -m autograder.render_feedback ASSIGNMENT [STUDENT ...]``: nbgrader ``generate_feedback``
for one assignment (the whole class when no student is named), in a process of its own.

``autograder.grading.write_feedback`` runs it with a clock and a memory cap, so a page that
cannot be rendered, or only at great cost, fails alone instead of stopping the batch.
"""
import sys
import warnings


def main(argv) -> int:
    warnings.filterwarnings("ignore")
    from autograder import grading
    try:
        grading.render_feedback(grading.load_config(), argv[0], argv[1:] or None)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}"[:300], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
