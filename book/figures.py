"""One figure style for every chapter: readable sizes, a colour-blind-safe palette.

Chapters call ``use_course_style()`` once in their first code cell and take colours from
``COLORS`` (the Okabe-Ito palette), so the site looks like one course.
"""
import matplotlib
import matplotlib.pyplot as plt

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
