"""CPU-vs-GPU agreement of the reference: every case's reference values and known-mistake values.

Grades must be identical on CPU and GPU.  The judge compares a student's values with the
reference at a case's tolerance (rtol, atol), so the two devices agree for grading when their
reference values differ by far less than that tolerance.  A maintainer with a GPU runs::

    BN_REFERENCE_DEVICE=cpu  python -m autograder.tools.agreement dump cpu.npz
    BN_REFERENCE_DEVICE=cuda python -m autograder.tools.agreement dump cuda.npz
    python -m autograder.tools.agreement compare cpu.npz cuda.npz

``compare`` prints, per function, the largest absolute difference and the largest difference as
a fraction of the case's tolerance (``|a - b| / (atol + rtol * |b|)``), and exits 1 when a reference
value reaches 10 % of its tolerance (known-mistake values are shown apart: they only name a
mistake in a message, never change a score).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

LIMIT = 0.1  # a fraction of the grading tolerance


def dump(path: str) -> None:
    from autograder.course import cases, checks
    from autograder.course import reference as R
    arrays: dict[str, np.ndarray] = {}
    for function, check in cases.CHECKS.items():
        for case in check.cases:
            rtol = case.rtol if case.rtol is not None else check.rtol
            atol = case.atol if case.atol is not None else check.atol
            tol = np.array([rtol, atol])
            for k, value in enumerate(checks.expected_outputs(check, case)):
                arrays[f"{function}|{case.name}|expected{k}"] = value
                arrays[f"{function}|{case.name}|expected{k}|tol"] = tol
            for known, values in checks.known_outputs(check, case):
                for k, value in enumerate(values):
                    arrays[f"{function}|{case.name}|{known.name}{k}"] = value
                    arrays[f"{function}|{case.name}|{known.name}{k}|tol"] = tol
    np.savez(path, **arrays)
    print(f"{len(arrays) // 2} reference values on {R.DEVICE} -> {path}")


def compare(path_a: str, path_b: str) -> int:
    a, b = np.load(path_a), np.load(path_b)
    keys = sorted(k for k in a.files if not k.endswith("|tol"))
    missing = sorted(set(keys) ^ {k for k in b.files if not k.endswith("|tol")})
    # function -> [worst fraction for the expected values, for the known mistakes' values]
    worst: dict[str, list[float]] = {}
    for key in keys:
        if key not in b.files:
            continue
        function, _, value = key.split("|")
        column = 0 if value.startswith("expected") else 1
        rtol, atol = a[key + "|tol"]
        x, y = a[key].astype(np.float64), b[key].astype(np.float64)
        if x.shape != y.shape or not np.array_equal(np.isfinite(x), np.isfinite(y)):
            frac = np.inf
        elif not np.isfinite(x).any():
            frac = 0.0
        else:
            both = np.isfinite(x)
            frac = float(np.max(np.abs(x[both] - y[both]) / (atol + rtol * np.abs(y[both]))))
        row = worst.setdefault(function, [0.0, 0.0])
        row[column] = max(row[column], frac)
    print(f"{len(keys)} values compared; {len(missing)} present on one side only")
    print("largest |a - b| as a fraction of the grading tolerance (atol + rtol*|b|):")
    print(f"{'function':32} {'reference':>10} {'known mistakes':>15}")
    for function, (grading, diagnosis) in sorted(worst.items()):
        print(f"{function:32} {grading:10.2e} {diagnosis:15.2e}")
    bad = [f for f, (grading, _) in worst.items() if not grading < LIMIT]
    if bad or missing:
        print(f"DISAGREE (reference values): {', '.join(bad + missing[:5])}")
        return 1
    print(f"agree: every reference value within {LIMIT:.0%} of its grading tolerance "
          f"(known-mistake values only name mistakes; they never change a score)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.tools.agreement", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dump").add_argument("path")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    args = parser.parse_args(argv)
    if args.command == "dump":
        dump(args.path)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
