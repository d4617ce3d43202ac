"""ch1_covariate_shift: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_condition_number',
        prompt=(
            'The chapter says that an offset "creates one direction with a huge eigenvalue" and '
            'that standardizing does not make $\\kappa = 1$, without deriving either. Derive both. '
            '(a) For least squares on ONE feature with mean $m$ and (biased) variance $v$ plus a '
            'bias, write the Hessian $H = \\frac1N A^\\top A$ as a $2\\times 2$ matrix in $m$ and '
            '$v$, find $\\kappa(m, v)$ in closed form, and give its behaviour for large $|m|$. '
            '(b) Predict $\\kappa$ for $m = 8$, $v = 4$ (a digits-like pixel), then check it with '
            'your `condition_number` on a feature you build with exactly that mean and variance. '
            '(c) For $D$ standardized features, show which matrix $\\kappa$ then measures, and why it '
            'is 1 only for uncorrelated features.'
        ),
        answer=(
            '(a) $A = [x, \\mathbf 1]$ gives $H = \\begin{pmatrix} v + m^2 & m \\\\ m & 1 '
            '\\end{pmatrix}$ (the mean of $x^2$ is $v + m^2$). Its trace is $T = 1 + v + m^2$ and '
            'its determinant $v + m^2 - m^2 = v$, so $\\lambda_\\pm = \\tfrac12\\bigl(T \\pm '
            '\\sqrt{T^2 - 4v}\\bigr)$ and $\\kappa = \\lambda_+/\\lambda_- = (T + \\sqrt{T^2-4v})^2 / '
            '(4v)$. For large $|m|$, $\\kappa \\approx T^2/v \\approx m^4/v$: the offset enters to '
            'the fourth power, and $m = 0$ leaves $\\kappa = \\max(v,1)/\\min(v,1)$. '
            '(b) $T = 69$, $\\det = 4$: $\\lambda_\\pm = (69 \\pm \\sqrt{4745})/2 = 68.94$ and '
            '$0.0580$, $\\kappa \\approx 1188$ (the approximation $T^2/v$ gives 1190). '
            '`condition_number(8 + 2 * z[:, None])` with $z$ of mean 0 and biased std 1 returns '
            '1188.25. (c) Standardized features have mean 0, so $H = \\begin{pmatrix} C & 0 \\\\ 0 '
            '& 1\\end{pmatrix}$ with $C$ their correlation matrix; $C$ has unit diagonal, so its '
            'eigenvalues average 1 and the block 1 never sets the extremes: $\\kappa = '
            '\\lambda_{\\max}(C)/\\lambda_{\\min}(C)$, which is 1 exactly when $C = I$. Correlated '
            'pixels (the digits) keep it far above 1; only whitening removes that.'
        ),
        rubric=(
            '1 point: $H$ with entries $v + m^2$, $m$, $m$, 1. 1 point: a correct closed form '
            'for $\\kappa$ (from trace and determinant, or the quadratic) and its growth for large '
            '$|m|$ (like $m^4/v$, or "grows without bound"). 1 point: (b) about 1188, with a check '
            'run that agrees. 1 point: (c) the block form with the correlation matrix and '
            '$\\kappa = \\lambda_{\\max}(C)/\\lambda_{\\min}(C)$, 1 only without correlations. '
            '"Standardizing makes kappa 1" earns no point for (c).'
        ),
        points=4,
    ),
    Question(
        grade_id='written_weight_scale_sweep',
        prompt=(
            'Before you run the weight-scale sweep, write down your predictions for its eight '
            'curves: (a) the loss at step 1 with BN, across the four scales, and (b) which curves '
            'end clearly below 1 nat. Then run it, quote the printed numbers, and explain in a few '
            'sentences each: (i) any curve that stays flat (at what value, what does that value '
            'mean, and why does nothing change?); (ii) why, with BN, the step-1 losses agree and where '
            'they do not; (iii) the '
            'order of the four BN curves at the end, although BN makes the output independent of '
            'the scale of W1 and W2.'
        ),
        answer=(
            'Printed (std: step 1, mean of the last 20 steps): without BN 0.01: 2.390, 2.322; '
            '0.1: 2.391, 2.065; 1: 2.370, 1.136; 10: 2.363, 1.501. With BN 0.01: 2.346, 0.522; '
            '0.1: 2.345, 0.540; 1: 2.345, 1.160; 10: 2.345, 1.295. '
            '(i) Without BN at std 0.01 the pre-activations are about $0.01\\sqrt{61}\\approx '
            '0.08$, so every sigmoid outputs about 0.5 for every image: the network sees the '
            'same hidden vector for all inputs and can only learn the class frequencies, a loss '
            'of $\\ln 10 = 2.303$ (2.32 on these batches). The gradient reaching W1 and W2 is multiplied by $\\sigma\' '
            '\\le 1/4$ and by the tiny weights of the layer above at each layer, so it vanishes '
            'and the hidden layers never start. '
            '(ii) With BN, $\\mathrm{BN}(xW)$ does not depend on the scale of W (the batch mean '
            'and standard deviation scale with it), so the first forward pass is the same network '
            'for every scale: 2.345. The exception is std 0.01 (2.346): there the variance of '
            '$xW$ is about $6\\cdot10^{-3}$ and $\\epsilon = 10^{-5}$ is no longer negligible '
            'next to it, so $\\hat z$ is about 0.1 % smaller. '
            '(iii) Scale invariance makes the gradient with respect to W inversely proportional '
            'to its scale $s$ while an SGD step of the same learning rate then changes W by a '
            'fraction proportional to $1/s^2$: large weights turn slowly (effective learning rate '
            '$\\mathrm{lr}/s^2$), small ones fast. So the BN curves end in the order 0.01 < 0.1 < '
            '1 < 10, all training, none stuck; without BN std 0.01 never starts and std 0.1 barely '
            'moves in 100 steps.'
        ),
        rubric=(
            '1 point: (i) 2.30 = ln 10, the loss of predicting the class frequencies, because '
            'the hidden units output the same value for every input and their gradients vanish. '
            '1 point: (ii) BN removes the scale of W1 and W2 from the forward pass, and eps '
            'explains the small-variance exception (or any correct account of the numbers '
            'quoted). 1 point: (iii) the gradient scales like $1/s$ and the relative step like '
            '$1/s^2$ (an effective learning rate), giving the observed order. Predictions that '
            'turned out wrong lose nothing if the explanation of the run is right.'
        ),
        points=3,
    ),
]
