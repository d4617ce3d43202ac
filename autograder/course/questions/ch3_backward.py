"""ch3_backward: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_masked_derivation',
        prompt=(
            'Derive, on paper, the backward pass you wrote in Part 2. For one feature, let '
            '$m_i \\in \\{0, 1\\}$ say whether entry $i$ is observed, $M = \\sum_i m_i$, and '
            '$\\mu$, $\\sigma^2$, $s = \\sqrt{\\sigma^2+\\epsilon}$, $\\hat x_i$ the statistics and '
            'normalized values over the observed entries; $y_i = \\gamma\\hat x_i + \\beta$ where '
            '$m_i = 1$ and $y_i = 0$ where $m_i = 0$. (a) Give $\\partial\\mu/\\partial x_j$ and '
            '$\\partial\\sigma^2/\\partial x_j$ for an observed $j$, and say which fact about '
            '$x_k - \\mu$ simplifies the second. (b) Derive $d\\gamma$, $d\\beta$ and $dx_j$ for an '
            'observed $j$ in closed form, and $dx_j$ for a missing $j$; say where the `dout` of a '
            'missing entry goes. (c) Predict $dx$, $d\\gamma$ and $d\\beta$ for a feature observed '
            'exactly once, from your formula, and check the prediction with your function (give '
            'the numbers you got). Write each step; a result without its derivation earns no '
            'points for (a) and (b).'
        ),
        answer=(
            'Sums run over the observed entries $O = \\{i : m_i = 1\\}$. (a) $\\mu = \\frac1M\\sum_'
            '{k\\in O} x_k$, so $\\partial\\mu/\\partial x_j = \\frac1M$. $\\sigma^2 = \\frac1M\\sum_'
            '{k\\in O}(x_k-\\mu)^2$, so $\\partial\\sigma^2/\\partial x_j = \\frac2M\\sum_{k\\in O}'
            '(x_k-\\mu)(\\delta_{kj} - \\frac1M) = \\frac2M(x_j-\\mu)$, because $\\sum_{k\\in O}'
            '(x_k - \\mu) = 0$ (the deviations of the observed entries from their own mean sum to '
            'zero). Hence $\\partial s/\\partial x_j = \\frac{1}{2s}\\frac2M(x_j-\\mu) = \\hat x_j/M$ '
            'and, by the quotient rule, $\\partial\\hat x_i/\\partial x_j = \\frac1s(\\delta_{ij} - '
            '\\frac1M - \\frac{\\hat x_i\\hat x_j}{M})$ for $i, j \\in O$. (b) A missing entry\'s '
            'output is the constant 0: $\\partial y_i/\\partial(\\cdot) = 0$, so its `dout` is '
            'multiplied by 0 in every chain-rule sum and goes nowhere. So $d\\beta = \\sum_{i\\in O} '
            'dy_i$, $d\\gamma = \\sum_{i\\in O} dy_i\\hat x_i$, and for $j\\in O$, $dx_j = \\sum_{i\\in '
            'O}\\gamma\\,dy_i\\,\\partial\\hat x_i/\\partial x_j = \\frac{\\gamma}{s}\\big(dy_j - '
            '\\frac1M\\sum_{i\\in O} dy_i - \\hat x_j\\frac1M\\sum_{i\\in O} dy_i\\hat x_i\\big) = '
            '\\frac{\\gamma}{Ms}\\big(M\\,dy_j - d\\beta - \\hat x_j\\,d\\gamma\\big)$, with this '
            'feature\'s own $M$ and $s$. A missing $x_j$ enters neither the statistics nor any '
            'output, so $dx_j = 0$. (c) $M = 1$: $\\sigma^2 = 0$, $\\hat x_j = 0$, so $d\\gamma = 0$, '
            '$d\\beta = dy_j$ (that entry\'s `dout`) and $dx_j = \\frac{\\gamma}{s}(dy_j - dy_j - 0) '
            '= 0$: the output is $\\beta$ whatever $x_j$ is. The function gives exactly 0 for '
            '$dx$ and $d\\gamma$ (or about 1e-16) and $d\\beta$ equal to that `dout`.'
        ),
        rubric=(
            '6 points. (a) 1 point: $\\partial\\mu/\\partial x_j = 1/M$ with $M$ the feature\'s '
            'own count; 1 point: $\\partial\\sigma^2/\\partial x_j = \\frac2M(x_j-\\mu)$ with the '
            'zero sum of the observed deviations named (a result without the simplification '
            'step: 0). (b) 1 point: $d\\gamma$, $d\\beta$ as sums over observed entries, with the '
            'reason a missing entry\'s `dout` drops out (its output is constant); 1 point: $dx_j$ '
            'for observed $j$ assembled from the three paths (direct, through $\\mu$, through '
            '$\\sigma^2$) with per-feature $M$ and $s$, any equivalent form; 1 point: $dx_j = 0$ at '
            'a missing entry, with the reason. (c) 1 point: $dx = 0$, $d\\gamma = 0$, $d\\beta = '
            'dy_j$ predicted from the formula AND numbers from their own function that agree. '
            'A formula copied from the chapter for the fully observed case, with $N$ in place of '
            '$M$ or sums over all $N$ rows, earns at most the (a) points.'
        ),
        points=6,
    ),
]
