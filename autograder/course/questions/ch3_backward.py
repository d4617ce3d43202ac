"""ch3_backward: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_gradient_sums_to_zero',
        prompt=(
            'For each feature, the gradient $\\partial L/\\partial x_i$ that batch normalization passes'
            ' back sums to zero over the batch. Explain why without computing it.'
        ),
        answer=(
            "Adding the same constant to every example's value of a feature changes the batch mean by"
            ' that constant and leaves $x - \\mu_B$, the variance and so the output unchanged. The '
            "loss is therefore constant along the all-ones direction, and the gradient's component "
            'along it, $\\sum_i \\partial L/\\partial x_i$, is zero.'
        ),
        rubric=(
            '1 point: the output is invariant to shifting every example of a feature by the same '
            'amount (the mean is subtracted). 1 point: so the directional derivative along (1, ..., '
            '1), which is the sum of the gradient, is zero. A correct derivation from the compact '
            'formula earns both points.'
        ),
        points=2,
    ),
]
