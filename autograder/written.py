"""The written (manually graded) questions: appended as the LAST cells of every solution notebook.

Each question is two cells in nbgrader's own format: a locked markdown prompt, and a markdown
"manually graded answer" cell (``grade`` + ``solution``, with points) whose source holds a model
answer and a rubric between ``### BEGIN SOLUTION`` / ``### END SOLUTION``: nbgrader's
``ClearSolutions`` replaces that region with "YOUR ANSWER HERE" at release, so students never see
it; graders read it in ``solutions/<a>/<a>.ipynb`` (formgrader's "Manage assignments" opens it).

``python -m autograder.written`` (re)applies them: idempotent, it removes any earlier copy of these
cells and appends them at the end, touching no other cell.  Then ``python -m autograder release``
and ``kits`` regenerate the release.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
POINTS = 2

# assignment -> [(grade_id, question, model answer, rubric)]
QUESTIONS: dict[str, list[tuple[str, str, str, str]]] = {
    "ch1_covariate_shift": [(
        "written_condition_number",
        "Standardizing the inputs of a least-squares problem made plain gradient descent converge "
        "in far fewer steps. In two or three sentences: what does the condition number of the "
        "loss's Hessian measure, and why does a large one slow down gradient descent with a single "
        "step size?",
        "The condition number is the ratio of the largest to the smallest curvature (eigenvalue of "
        "the Hessian, here $X^\\top X / N$): how stretched the loss's contours are. The step size must "
        "stay below about $2/\\lambda_{\\max}$ or the steep direction diverges, so along the flat "
        "direction each step shrinks the error only by a factor of about $1 - \\lambda_{\\min}/\\lambda_{\\max}$: "
        "the number of steps grows with the condition number. Standardizing makes the curvatures "
        "similar, so the ratio is near 1.",
        "1 point: condition number = largest / smallest curvature (eigenvalue) of the Hessian, or "
        "elongated contours. 1 point: one step size is capped by the steepest direction, so the "
        "flattest direction progresses slowly (zig-zag). No point for \"it makes the numbers "
        "smaller\" alone.")],
    "ch2_forward": [(
        "written_biased_variance",
        "In training mode, batch normalization divides the batch variance by $N$, not by the "
        "$N-1$ of the unbiased estimate. Why is that the right choice, and what would the "
        "variance of $\\hat x$ be for a batch of two if it divided by $N-1$?",
        "In training mode BN is not estimating a population variance: it is a deterministic "
        "function whose job is to give *this* batch zero mean and unit variance, and the variance "
        "of the $N$ numbers themselves is the biased one. Dividing by $N-1$ leaves the normalized "
        "batch with variance $(N-1)/N$ (ignoring $\\epsilon$), which is $1/2$ for $N = 2$.",
        "1 point: BN normalizes the batch it sees (unit variance of these N values), it does not "
        "estimate the population. 1 point: $(N-1)/N$, i.e. 0.5 for N = 2. Mentioning that the "
        "unbiased variance belongs to the running estimate (chapter 4) is fine but not required.")],
    "ch3_backward": [(
        "written_gradient_sums_to_zero",
        "For each feature, the gradient $\\partial L/\\partial x_i$ that batch normalization "
        "passes back sums to zero over the batch. Explain why without computing it.",
        "Adding the same constant to every example's value of a feature changes the batch mean "
        "by that constant and leaves $x - \\mu_B$, the variance and so the output unchanged. The "
        "loss is therefore constant along the all-ones direction, and the gradient's component "
        "along it, $\\sum_i \\partial L/\\partial x_i$, is zero.",
        "1 point: the output is invariant to shifting every example of a feature by the same "
        "amount (the mean is subtracted). 1 point: so the directional derivative along (1, ..., 1), "
        "which is the sum of the gradient, is zero. A correct derivation from the compact formula "
        "earns both points.")],
    "ch4_inference": [(
        "written_test_time_statistics",
        "Why can a trained network not use batch statistics at test time? Give the two failures "
        "the chapter shows.",
        "With batch statistics, an example's prediction depends on the other examples in its "
        "batch: the same input gets different outputs in different batches. And for a batch of "
        "one, $\\mu_B = x$ and $\\sigma_B^2 = 0$, so $\\hat x = 0$ and every output is $\\beta$, "
        "whatever the input. Running averages of the training statistics give one fixed "
        "normalization instead.",
        "1 point: predictions depend on the rest of the batch (not a function of the input "
        "alone). 1 point: N = 1 collapses the output to beta (zero variance). Naming the running "
        "averages as the fix is expected but earns no extra point.")],
    "ch5_alternatives": [(
        "written_batch_of_two",
        "Why does batch normalization fail with a batch of two examples? What does a feature "
        "of $\\hat x$ look like for $N = 2$, and how does group normalization avoid it?",
        "With two examples, each feature is normalized by the mean and spread of just those two "
        "values: $\\hat x = \\pm 1$ (up to $\\epsilon$) whatever they are, so only the sign of their "
        "difference survives and the statistics are as noisy as they can be, far from the "
        "running averages used at inference. Group normalization computes its statistics within "
        "each example (over a group of channels and the spatial positions), so it does not depend "
        "on the batch size at all.",
        "1 point: for N = 2 each feature of x_hat is +1 / -1 (information lost, statistics very "
        "noisy, mismatch with inference). 1 point: GN (or LN) normalizes within one example, "
        "independent of N.")],
    "ch6_folding": [(
        "written_fold_eval_only",
        "Folding batch normalization into the convolution before it is exact in eval mode but "
        "impossible in training mode. Why?",
        "In eval mode BN uses the stored running mean and variance, so it is a fixed affine map "
        "per channel, $y = a_c z + b_c$; composed with the affine convolution it is again one "
        "affine map, with weights $a_c W_c$ and bias $a_c (b_c^{conv} - \\mu_c) + \\beta_c$. In "
        "training mode the mean and variance are those of the current batch, so the scale and shift "
        "applied to an example depend on the other examples: no fixed $W'$, $b'$ reproduces that.",
        "1 point: eval mode uses constants (running statistics), so BN is an affine map that "
        "composes with the conv. 1 point: training-mode statistics depend on the batch, so no "
        "fixed folded weights exist.")],
}


def cells_for(assignment: str) -> list:
    out = []
    for k, (gid, question, answer, rubric) in enumerate(QUESTIONS[assignment]):
        header = "## Written question\n\n" if k == 0 else ""
        out.append(nbformat.v4.new_markdown_cell(
            f"{header}**Question ({POINTS} points, graded by a person).** {question}\n\n"
            "Answer in the cell below, in a few sentences of your own.",
            metadata={"nbgrader": {"grade": False, "grade_id": f"{gid}_prompt", "locked": True,
                                   "schema_version": 3, "solution": False}}))
        out.append(nbformat.v4.new_markdown_cell(
            f"### BEGIN SOLUTION\n**Model answer.** {answer}\n\n**Rubric ({POINTS} points).** {rubric}\n"
            "### END SOLUTION",
            metadata={"nbgrader": {"grade": True, "grade_id": gid, "locked": False,
                                   "points": POINTS, "schema_version": 3, "solution": True}}))
    for cell in out:  # ids from the grade_id, so re-applying leaves the notebook byte-identical
        cell["id"] = cell.metadata["nbgrader"]["grade_id"].replace("_", "-")
    return out


def written_ids(assignment: str) -> set[str]:
    return {g for g, *_ in QUESTIONS[assignment]} | {f"{g}_prompt" for g, *_ in QUESTIONS[assignment]}


def apply(assignment: str) -> Path:
    path = REPO / "solutions" / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    ours = written_ids(assignment)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ours]
    nb.cells += cells_for(assignment)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    for a in sys.argv[1:] or list(QUESTIONS):
        print("appended written questions to", apply(a))
