"""ch2_forward: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_biased_variance',
        prompt=(
            'In training mode, batch normalization divides the batch variance by $N$, not by the '
            '$N-1$ of the unbiased estimate. Why is that the right choice, and what would the '
            'variance of $\\hat x$ be for a batch of two if it divided by $N-1$?'
        ),
        answer=(
            'In training mode BN is not estimating a population variance: it is a deterministic '
            'function whose job is to give *this* batch zero mean and unit variance, and the variance'
            ' of the $N$ numbers themselves is the biased one. Dividing by $N-1$ leaves the '
            'normalized batch with variance $(N-1)/N$ (ignoring $\\epsilon$), which is $1/2$ for $N = '
            '2$.'
        ),
        rubric=(
            '1 point: BN normalizes the batch it sees (unit variance of these N values), it does not '
            'estimate the population. 1 point: $(N-1)/N$, i.e. 0.5 for N = 2. Mentioning that the '
            'unbiased variance belongs to the running estimate (chapter 4) is fine but not required.'
        ),
        points=2,
    ),
]
