"""ch1_covariate_shift: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_condition_number',
        prompt=(
            'Standardizing the inputs of a least-squares problem made plain gradient descent converge'
            ' in far fewer steps. In two or three sentences: what does the condition number of the '
            "loss's Hessian measure, and why does a large one slow down gradient descent with a "
            'single step size?'
        ),
        answer=(
            'The condition number is the ratio of the largest to the smallest curvature (eigenvalue '
            "of the Hessian, here $X^\\top X / N$): how stretched the loss's contours are. The step "
            'size must stay below about $2/\\lambda_{\\max}$ or the steep direction diverges, so along '
            'the flat direction each step shrinks the error only by a factor of about $1 - '
            '\\lambda_{\\min}/\\lambda_{\\max}$: the number of steps grows with the condition number. '
            'Standardizing makes the curvatures similar, so the ratio is near 1.'
        ),
        rubric=(
            '1 point: condition number = largest / smallest curvature (eigenvalue) of the Hessian, or'
            ' elongated contours. 1 point: one step size is capped by the steepest direction, so the '
            'flattest direction progresses slowly (zig-zag). No point for "it makes the numbers '
            'smaller" alone.'
        ),
        points=2,
    ),
]
