"""ch2_forward: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_largest_normalized_value',
        prompt=(
            'How far from 0 can a normalized value $\\hat x_i$ land in a batch of $N$? Take '
            '$\\epsilon = 0$. (a) Using only the two batch moments of $\\hat x$ that the chapter '
            'derives, prove an upper bound on $|\\hat x_i|$ that depends on $N$ alone, and say for '
            'which batches it is reached. (b) Predict, before running anything, the three values '
            '$\\hat x$ of a batch of three in which two samples coincide, e.g. the feature values '
            '$(5, 5, 2)$; then check your prediction with your `ghost_batchnorm_forward` (one '
            'ghost batch) and quote what it returned. (c) What does (a) say about ghost batch norm '
            'with ghost batches of 4 rows, and how does $\\epsilon > 0$ change the bound?'
        ),
        answer=(
            '(a) With $\\epsilon = 0$ the chapter\'s moments give $\\sum_i \\hat x_i = 0$ and '
            '$\\sum_i \\hat x_i^2 = N$. Fix $i = 1$. The other $N-1$ values sum to $-\\hat x_1$ and '
            'their squares sum to $N - \\hat x_1^2$; by Cauchy-Schwarz, '
            '$\\hat x_1^2 = (\\sum_{i>1} \\hat x_i)^2 \\le (N-1)\\sum_{i>1}\\hat x_i^2 = (N-1)(N - '
            '\\hat x_1^2)$, so $N \\hat x_1^2 \\le N(N-1)$ and $|\\hat x_1| \\le \\sqrt{N-1}$. '
            'Equality holds in Cauchy-Schwarz exactly when the other $N-1$ values are equal: the '
            'bound is reached when one sample differs and all the others coincide. '
            '(b) That is the case $(5, 5, 2)$: mean 4, deviations $(1, 1, -2)$, biased variance '
            '$6/3 = 2$, so $\\hat x = (1/\\sqrt2, 1/\\sqrt2, -\\sqrt2) \\approx (0.707, 0.707, '
            '-1.414)$, the lone sample at the bound $\\sqrt{3-1}$, and it does not depend on the '
            'values 5 and 2 (any $(a, a, b)$ with $a > b$ gives the same). With $\\epsilon = '
            '10^{-5}$ the function returns these to about 5 digits (0.707105, 0.707105, -1.414210). '
            '(c) In ghost batches of 4 rows no normalized value can exceed $\\sqrt3 \\approx 1.73$ '
            'in size, however extreme the input: an outlier row is squashed to at most 1.73 '
            '(times $\\gamma$), so the next layer never sees a large activation in training. '
            'With $\\epsilon > 0$ the second moment is $N\\sigma^2/(\\sigma^2+\\epsilon)$, so the '
            'bound becomes $\\sqrt{N-1}\\,\\sqrt{\\sigma^2/(\\sigma^2+\\epsilon)}$, slightly smaller.'
        ),
        rubric=(
            '2 points: starts from $\\sum\\hat x_i = 0$ and $\\sum \\hat x_i^2 = N$ (or '
            'equivalent). 2 points: a correct argument (Cauchy-Schwarz, Lagrange multipliers, or '
            'the variance of the other values being $\\ge 0$) reaching $\\sqrt{N-1}$, with the '
            'equality case (the other $N-1$ values equal). 1 point: (b) predicted $(1/\\sqrt2, '
            '1/\\sqrt2, -\\sqrt2)$ and a quoted check that agrees. 1 point: (c) $\\sqrt3$ for '
            'ghost batches of 4 and the factor $\\sqrt{\\sigma^2/(\\sigma^2+\\epsilon)}$ (or "a '
            'little smaller") for $\\epsilon > 0$. A bound stated without derivation earns at '
            'most the (b) and (c) points.'
        ),
        points=6,
    ),
]
