"""ch4_inference: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_running_mean_spread',
        prompt=(
            'Long after its start-up bias has died out, a running mean still fluctuates: every '
            'batch moves it. Take one channel, batches of $n$ values drawn independently from a '
            'distribution with mean $\\mu$ and variance $\\sigma^2$, and PyTorch\'s momentum $m$. '
            '(a) Derive the variance of `running_mean` around $\\mu$ once it no longer depends on '
            'the starting value, as a function of $m$, $n$ and $\\sigma^2$. (b) Predict its '
            'standard deviation for $m = 0.1$, $n = 4$, $\\sigma^2 = 9$, then measure it with your '
            '`BatchNorm` (for example 20000 batches, the first 1000 discarded) and give both '
            'numbers. (c) Which momentum halves that standard deviation? Show the step.'
        ),
        answer=(
            'Let $r_t$ be the running mean after batch $t$ and $b_t$ the batch mean, so '
            '$r_t = (1-m)\\,r_{t-1} + m\\,b_t$ with $\\operatorname{Var} b_t = \\sigma^2/n$. '
            '$b_t$ is independent of $r_{t-1}$, which only depends on earlier batches, so '
            '$V_t = (1-m)^2 V_{t-1} + m^2\\sigma^2/n$. At the fixed point $V = (1-m)^2 V + '
            'm^2\\sigma^2/n$, i.e. $V = \\frac{m^2}{1-(1-m)^2}\\frac{\\sigma^2}{n} = '
            '\\frac{m}{2-m}\\frac{\\sigma^2}{n}$ (equivalently $V = m^2\\sum_k (1-m)^{2k}\\,'
            '\\sigma^2/n$ from the unrolled sum). (b) $V = \\frac{0.1}{1.9}\\cdot\\frac94 = 0.118$, '
            'standard deviation $0.344$; a run of 19000 batches measures about $0.34$ (sampling '
            'error of a few per cent, since neighbouring values are correlated). (c) Halving the '
            'standard deviation quarters the variance: $\\frac{m}{2-m} = \\frac14\\cdot'
            '\\frac{0.1}{1.9} = 0.01316$, so $m = \\frac{2\\cdot 0.01316}{1.01316} = 0.026$, not '
            '$0.025$ and not $0.05$.'
        ),
        rubric=(
            '2 points: the recurrence for the variance with the independence of $b_t$ and '
            '$r_{t-1}$ stated, solved to $\\frac{m}{2-m}\\frac{\\sigma^2}{n}$ (1 point if the '
            'result is right but independence is not used or the batch-mean variance is taken as '
            '$\\sigma^2$). 1 point: the prediction 0.34 and a measured value from their own layer '
            'within about 10 % of it. 1 point: $m \\approx 0.026$ from quartering the variance '
            '(0.025 from the approximation $V \\approx \\frac m2\\frac{\\sigma^2}{n}$ earns the '
            'point if the approximation is named).'
        ),
        points=4,
    ),
]
