"""ch5_alternatives: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_sweep_prediction',
        prompt=(
            '(a) Before running the sweep cell of Part 4, write down your prediction: at which batch '
            'sizes will BN\'s test accuracy fall below GN\'s, and how will GN\'s curve depend on B? '
            'Then run it, include the figure, and say where you were right or wrong. (b) Take one '
            'BN feature whose pre-activations in a batch of $B = 2$ are two independent draws with '
            'variance $\\sigma^2$. Derive the expected value of the biased batch variance that '
            'training normalizes with, and of the variance that PyTorch\'s running variance averages. '
            'What is then, at test time in eval mode, the variance of that feature\'s normalized value '
            '(ignore $\\epsilon$ and the noise of the running mean), and what would it be had the '
            'running variance averaged the biased estimate? (c) With (b), explain why BN at $B = 2$ '
            'scores badly at test time although the eval-mode scale is right on average: what did '
            'training show the layer after BN?'
        ),
        answer=(
            '(a) Prediction and outcome: BN falls clearly below GN at B = 2 and is close to (or '
            'above) GN from B = 4 or 8 on; GN has no batch dependence of its own, so its curve '
            'changes with B only through the training schedule: one epoch means fewer, larger '
            'steps for large B, and at B = 64 (15 steps) the solution\'s GN run drops sharply, '
            'while BN\'s does not (a large step on few steps; it is not a batch-statistics '
            'effect, since GN has none). In the solution\'s run BN scores about 69 % at B = 2 against 93 % '
            'for GN, and the two are within a few points of each other from B = 4 to 32. '
            'A student\'s answer is judged on the prediction being stated before the run and '
            'compared honestly with the figure. (b) For two draws, the biased variance is '
            '$((x_1 - x_2)/2)^2$, with $E[(x_1-x_2)^2] = 2\\sigma^2$, so its expectation is '
            '$\\sigma^2/2$ (in general $(B-1)\\sigma^2/B$). PyTorch\'s running variance averages '
            'the unbiased estimate $(x_1 - x_2)^2/2$, whose expectation is $\\sigma^2$; an '
            'exponential average of unbiased estimates has expectation $\\sigma^2$ too. At test '
            'time $\\hat x = (x - \\hat\\mu)/\\sqrt{\\hat\\sigma^2}$ therefore has variance about 1. '
            'Had the running variance averaged the biased estimate, it would be about '
            '$\\sigma^2/2$ and the test-time $\\hat x$ would have variance about 2 (a spread '
            '$\\sqrt 2$ too wide). (c) In training with B = 2 every normalized value is exactly '
            '$\\pm 1$ (up to $\\epsilon$): the next layer only ever saw the sign of the difference '
            'of the two examples, i.e. binary features with mean 0 and variance 1. At test time '
            'it receives continuous values with the same mean and variance but another '
            'distribution (values near 0, values beyond $\\pm 1$), and which sign a test example '
            'gets no longer depends on a partner example. The weights learned for sign inputs '
            'do not fit these: the failure is a mismatch of distribution, not of scale, which is '
            'why correcting the variance (or batch renorm\'s $r$, $d$) cannot remove it fully, '
            'while GN never depends on the batch at all.'
        ),
        rubric=(
            '1 point (a): a prediction stated before the run, the figure included, and an honest '
            'comparison (BN below GN at the smallest batch sizes, GN without a batch dependence of '
            'its own). 2 points (b): expectation sigma^2/2 of the biased and sigma^2 of the unbiased '
            'estimate with a derivation (1), hence test-time variance about 1, and about 2 with '
            'the biased running variance (1). 1 point (c): training shows only +-1 (signs), test '
            'shows continuous values of the same variance: a mismatch of distribution, not of scale.'
        ),
        points=4,
    ),
]
