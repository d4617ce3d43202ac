"""ch6_folding: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_fold_eval_only',
        prompt=(
            'Folding batch normalization into the convolution before it is exact in eval mode but '
            'impossible in training mode. Why?'
        ),
        answer=(
            'In eval mode BN uses the stored running mean and variance, so it is a fixed affine map '
            'per channel, $y = a_c z + b_c$; composed with the affine convolution it is again one '
            'affine map, with weights $a_c W_c$ and bias $a_c (b_c^{conv} - \\mu_c) + \\beta_c$. In '
            'training mode the mean and variance are those of the current batch, so the scale and '
            "shift applied to an example depend on the other examples: no fixed $W'$, $b'$ reproduces"
            ' that.'
        ),
        rubric=(
            '1 point: eval mode uses constants (running statistics), so BN is an affine map that '
            'composes with the conv. 1 point: training-mode statistics depend on the batch, so no '
            'fixed folded weights exist.'
        ),
        points=2,
    ),
]
