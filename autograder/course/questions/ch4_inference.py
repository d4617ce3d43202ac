"""ch4_inference: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_test_time_statistics',
        prompt=(
            'Why can a trained network not use batch statistics at test time? Give the two failures '
            'the chapter shows.'
        ),
        answer=(
            "With batch statistics, an example's prediction depends on the other examples in its "
            'batch: the same input gets different outputs in different batches. And for a batch of '
            'one, $\\mu_B = x$ and $\\sigma_B^2 = 0$, so $\\hat x = 0$ and every output is $\\beta$, '
            'whatever the input. Running averages of the training statistics give one fixed '
            'normalization instead.'
        ),
        rubric=(
            '1 point: predictions depend on the rest of the batch (not a function of the input '
            'alone). 1 point: N = 1 collapses the output to beta (zero variance). Naming the running '
            'averages as the fix is expected but earns no extra point.'
        ),
        points=2,
    ),
]
