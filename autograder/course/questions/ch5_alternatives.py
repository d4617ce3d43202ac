"""ch5_alternatives: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_batch_of_two',
        prompt=(
            'Why does batch normalization fail with a batch of two examples? What does a feature of '
            '$\\hat x$ look like for $N = 2$, and how does group normalization avoid it?'
        ),
        answer=(
            'With two examples, each feature is normalized by the mean and spread of just those two '
            'values: $\\hat x = \\pm 1$ (up to $\\epsilon$) whatever they are, so only the sign of their'
            ' difference survives and the statistics are as noisy as they can be, far from the '
            'running averages used at inference. Group normalization computes its statistics within '
            'each example (over a group of channels and the spatial positions), so it does not depend'
            ' on the batch size at all.'
        ),
        rubric=(
            '1 point: for N = 2 each feature of x_hat is +1 / -1 (information lost, statistics very '
            'noisy, mismatch with inference). 1 point: GN (or LN) normalizes within one example, '
            'independent of N.'
        ),
        points=2,
    ),
]
