"""ch6_folding: its written questions (see ``autograder.course.questions``)."""
from autograder.course.questions import Question

QUESTIONS = [
    Question(
        grade_id='written_zero_gamma_border',
        prompt=(
            'Part 4 assumed that no $\\gamma_c$ is 0. Take a BN (eval mode) before a $3\\times 3$ '
            'convolution with stride 1 and zero padding 1 on $H\\times W$ images, and let input '
            'channel $c$ have $\\gamma_c = 0$ and $\\beta_c \\neq 0$. (a) Write the contribution of '
            'channel $c$ to output channel $o$ at an interior position and at the top-left corner, '
            'in terms of the weights $W_{o,c,k}$ and $\\beta_c$, and explain why no `pad_value` makes '
            'a folded convolution (one weight tensor, one bias per output channel) exact. (b) '
            'Predict which of the $H\\cdot W$ output positions any such fold gets wrong, how many '
            'they are, and the error at the corner if the bias takes the interior value. (c) Say how '
            'a deployment can stay exact. Check (b) numerically with `run_layers`.'
        ),
        answer=(
            '(a) With $\\gamma_c = 0$, BN maps every $x_c$ to the constant $\\beta_c$, so inside the '
            'image the conv reads $u_c = \\beta_c$ and in the padding it reads 0. At an interior '
            'position all nine taps are inside: the contribution is $\\beta_c\\sum_{k} W_{o,c,k}$, '
            'a constant. At the top-left corner only the four taps $(1,1),(1,2),(2,1),(2,2)$ (0-based, '
            'of the $3\\times3$ window) are inside: $\\beta_c\\sum_{k\\in\\text{inside}} W_{o,c,k}$. '
            'The contribution depends on the position near the border and not on $x$. The folded '
            'weights for channel $c$ are $s_c W = 0$, so whatever the input is padded with is '
            'multiplied by 0: no pad value can add anything, and equivalently no input value is '
            'mapped to 0 by BN (its image is $\\beta_c$ for every input). A bias per output channel '
            'is one number for all positions, so it can match the interior value only. (b) Wrong '
            'are exactly the outputs whose window overlaps the padding: the border ring, '
            '$2H + 2W - 4$ positions (all of them when $H$ or $W$ is at most 2). With the bias '
            'holding the interior value $\\beta_c\\sum_k W_{o,c,k}$, the error at position $p$ is '
            '$\\beta_c\\sum_{k\\text{ in the padding}} W_{o,c,k}$; at the corner the five taps of '
            'the first row and first column: $\\beta_c(W_{o,c,0,0}+W_{o,c,0,1}+W_{o,c,0,2}+W_{o,c,1,0}'
            '+W_{o,c,2,0})$ (the fold overestimates by that much). (c) Fold every other channel and '
            'keep channel $c$ out of the weights: its contribution is a fixed map per output '
            'channel ($\\beta_c$ times the conv of an all-ones image, zero padded, with $W_{o,c}$), '
            'which can be precomputed and added as a bias *map* of shape $(C_\\text{out}, H, W)$; or '
            'keep the BN unfolded; or use padding 0 (valid convolution), where a scalar bias is exact.'
        ),
        rubric=(
            '1 point (a): interior vs corner contributions written with the weights of the taps '
            'inside the image, and the reason no pad value helps (channel c\'s folded weights are 0 '
            '/ BN maps every input to beta_c, never to 0). 1 point (b): exactly the border ring, '
            '2H + 2W - 4 positions, error = beta_c times the sum of the weights of the taps in the '
            'padding (five at a corner), with a numerical check. 1 point (c): an exact deployment '
            '(a per-position bias map, the BN kept for that channel, or padding 0).'
        ),
        points=3,
    ),
]
