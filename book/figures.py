"""One figure style for every chapter: readable sizes, a colour-blind-safe palette.

Chapters call ``use_course_style()`` once in their first code cell and take colours from
``COLORS`` (the Okabe-Ito palette), so the site looks like one course.
"""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

COLORS = {
    "blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "vermillion": "#D55E00",
    "purple": "#CC79A7", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#000000",
}
CYCLE = [COLORS[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky", "black")]

# Wide enough to be read, narrow enough to fit the book theme's text column (about 7 in at 100 dpi).
FULL_WIDTH = (7.0, 3.6)
HALF_HEIGHT = (7.0, 2.8)


def use_course_style() -> None:
    matplotlib.rcParams.update({
        "figure.figsize": FULL_WIDTH,
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "figure.constrained_layout.use": True,
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "legend.fontsize": 10,
        "axes.prop_cycle": matplotlib.cycler(color=CYCLE),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    })
    plt.rcParams["image.cmap"] = "viridis"


def plot_over_seeds(ax, x, values, color, label, marker="o", linestyle="-", diverged_at=None):
    """One configuration measured at several x with several seeds.

    ``values`` has shape ``(len(x), n_seeds)``; NaN marks a run that diverged. Draws every seed as
    a small dot, the mean over the seeds that did not diverge as a line, and, when
    ``diverged_at`` is given, a cross at that height for each x where some seed diverged, so the
    spread over seeds is always visible next to the mean.
    """
    x = np.asarray(x, dtype=float)
    values = np.asarray(values, dtype=float)
    n_seeds = values.shape[1]
    for k in range(n_seeds):
        ax.plot(x, values[:, k], marker, color=color, alpha=0.35, markersize=4, linestyle="none")
    with np.errstate(all="ignore"):
        finite = np.isfinite(values)
        mean = np.where(finite.any(axis=1), np.nansum(values, axis=1) / finite.sum(axis=1), np.nan)
    ax.plot(x, mean, linestyle=linestyle, marker=marker, color=color,
            label=f"{label} (mean of {n_seeds} seeds; dots: each seed)")
    if diverged_at is not None:
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            ax.plot(x[bad], np.full(bad.sum(), diverged_at), "x", color=color, markersize=8,
                    mew=2, label=f"{label}: a seed diverged")
    return mean
