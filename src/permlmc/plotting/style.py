"""One shared look for every figure: theme, panel size, dpi, figure legend, atomic saving.

Colours, markers and display names of each category live in :mod:`permlmc.plotting.palette`.

The theme is applied through :func:`figure_context` (an ``rc_context``), so importing this module or
drawing a figure never changes matplotlib's global settings for the caller.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from permlmc.artifacts.files import atomic_path

__all__ = [
    "DPI",
    "PANEL_SIZE",
    "figure_context",
    "figure_warning",
    "grid_shape",
    "legend_below",
    "make_grid",
    "no_data_figure",
    "save_figure",
]

DPI = 150
"""Raster resolution; vector formats ignore it."""

PANEL_SIZE = (3.4, 2.6)
"""Width and height (inches) of one panel; a figure is a grid of these."""

THEME: dict[Any, Any] = {  # matplotlib types its keys as a Literal of every rc name
    # white panels in a light grey frame and grid, drawn below the data; dark grey text; ticks as labels only
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "axes.edgecolor": ".8",
    "axes.linewidth": 1.0,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": ".8",
    "grid.linestyle": "-",
    "grid.linewidth": 0.8,
    "axes.labelcolor": ".15",
    "text.color": ".15",
    "xtick.color": ".15",
    "ytick.color": ".15",
    "xtick.direction": "out",
    "ytick.direction": "out",
    "xtick.bottom": False,
    "xtick.top": False,
    "ytick.left": False,
    "ytick.right": False,
    "xtick.major.width": 1.0,
    "ytick.major.width": 1.0,
    "xtick.minor.width": 0.8,
    "ytick.minor.width": 0.8,
    "xtick.major.size": 4.8,
    "ytick.major.size": 4.8,
    "xtick.minor.size": 3.2,
    "ytick.minor.size": 3.2,
    "font.family": ["sans-serif"],
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
    "lines.solid_capstyle": "round",
    "patch.edgecolor": "w",
    "patch.force_edgecolor": True,
    "patch.linewidth": 0.8,
    # sizes for panels of PANEL_SIZE
    "font.size": 9.6,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 11,
    "lines.linewidth": 1.6,
    "lines.markersize": 4.5,
    # output
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
    "pdf.fonttype": 42,
    "svg.fonttype": "none",
    "svg.hashsalt": "permlmc",  # the ids of an SVG's elements the same in every run (uuid4 otherwise)
}
"""The project's matplotlib settings (:func:`figure_context`)."""


@contextmanager
def figure_context() -> Iterator[None]:
    """Apply the project theme for the duration of the block only."""
    with matplotlib.rc_context(THEME):
        yield


def make_grid(
    nrows: int,
    ncols: int,
    *,
    panel: tuple[float, float] = PANEL_SIZE,
    sharex: bool = False,
    sharey: bool = False,
) -> tuple[Figure, list[list[Axes]]]:
    """A constrained-layout figure of ``nrows`` x ``ncols`` panels (``legend_below`` adds room below)."""
    nrows, ncols = max(nrows, 1), max(ncols, 1)
    width = panel[0] * ncols + 0.4
    height = panel[1] * nrows + 0.8
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), squeeze=False, sharex=sharex, sharey=sharey,
        layout="constrained",
    )  # fmt: skip
    grid: list[list[Axes]] = [[axes[r][c] for c in range(ncols)] for r in range(nrows)]
    return fig, grid


def legend_below(
    fig: Figure, handles: Sequence[Artist], labels: Sequence[str], title: str | None = None
) -> None:
    """One legend for the whole figure, centred below the panels; the figure grows to make room.

    Below rather than beside, so that it never collides with the suptitle; as many columns as fit.
    """
    if not handles:
        return
    entry_width = 0.7 + 0.07 * max(len(label) for label in labels)  # inches, at the 8 pt legend font
    ncol = max(1, min(len(handles), int(fig.get_figwidth() // entry_width)))
    rows = math.ceil(len(handles) / ncol) + (1 if title else 0)
    fig.set_figheight(fig.get_figheight() + 0.2 * rows + 0.2)
    fig.legend(handles, labels, loc="outside lower center", ncols=ncol, title=title, frameon=False)


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    """Rows and columns for ``n`` panels wrapped at ``max_cols`` columns."""
    ncols = max(1, min(n, max_cols))
    return max(1, math.ceil(n / ncols)), ncols


def _format_of(path: Path) -> str:
    fmt = path.suffix.lstrip(".").lower()
    if not fmt:
        raise ValueError(f"{path}: figure path needs a suffix naming its format (.png, .pdf, .svg)")
    return fmt


_WARNING: ContextVar[str] = ContextVar("figure_warning", default="")


@contextmanager
def figure_warning(text: str) -> Iterator[None]:
    """Every figure saved within the block carries ``text`` in red above its title (a result that rests on an
    assumption that failed, e.g. networks that did not train: :func:`permlmc.plotting.draw`)."""
    token = _WARNING.set(text)
    try:
        yield
    finally:
        _WARNING.reset(token)


def save_figure(fig: Figure, out: str | Path) -> None:
    """Write ``fig`` atomically to ``out`` (format from the suffix) and close it; with the block's
    :func:`figure_warning` above its title."""
    target = Path(out)
    warning = _WARNING.get()
    if warning:
        _place_warning(fig, f"Warning: {warning}")
    try:
        fmt = _format_of(target)
        metadata: dict[str, Any] | None = None
        if fmt == "pdf":
            metadata = {"CreationDate": None}
        elif fmt == "svg":
            metadata = {"Date": None}
        box = _laid_out_box(fig)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches=box, metadata=metadata)
    finally:
        plt.close(fig)


def _laid_out_box(fig: Figure, pad: float = 0.1) -> Bbox | str:
    """Lay ``fig`` out (its constrained layout, fixed from then on) and return what saving it keeps, in inches: the
    figure and every panel title, figure text and figure legend that reaches beyond it (a suptitle wider than one
    panel, the warning above it), with ``pad`` around. The layout keeps the panels' other decorations inside the
    figure, so only these few artists are measured, not every tick label as ``bbox_inches="tight"`` measures them.
    Where the layout could not be applied (panels too small for their labels), ``"tight"``: the whole drawing."""
    fig.set_dpi(DPI)  # laid out at the resolution it is saved at
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.draw_without_rendering()
    if any("constrained_layout not applied" in str(warning.message) for warning in caught):
        return "tight"  # saving lays it out again, and warns again
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)  # laid out: saving draws once, without a second layout
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    titles = (ax.title for ax in fig.axes if ax.get_visible())
    texts = [text for text in [*fig.texts, *titles] if text.get_visible() and text.get_text()]  # suptitle: a text
    boxes = [fig.bbox, *(artist.get_window_extent(renderer) for artist in [*texts, *fig.legends])]
    return Bbox.union(boxes).transformed(fig.dpi_scale_trans.inverted()).padded(pad)


WARNING_POINTS = 8
"""Font size of a figure's warning."""


def _place_warning(fig: Figure, text: str) -> None:
    """``text`` in red, wrapped to the figure's width, just above the figure's texts (the title): the texts are
    placed in figure coordinates, so their extents are known before the layout is drawn (the layout moves only the
    figure's suptitle and sup-labels, never above its top)."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    title = getattr(fig, "_suptitle", None)  # matplotlib keeps the suptitle apart from fig.texts
    drawn = [text for text in [*fig.texts, title] if text is not None and text.get_text()]
    top = max([1.0] + [text.get_window_extent(renderer).transformed(fig.transFigure.inverted()).y1 for text in drawn])
    characters = max(40, int(fig.get_figwidth() * 72 / (0.55 * WARNING_POINTS)))  # average glyph ~0.55 em
    fig.text(0.5, top + 0.01, textwrap.fill(text, characters), color="#b00000", fontsize=WARNING_POINTS,
             ha="center", va="bottom")


def no_data_figure(out: str | Path, what: str, title: str | None = None) -> None:
    """A one-panel placeholder saying ``no data for <what>``; the workflow always asks for every figure."""
    with figure_context():
        fig, grid = make_grid(1, 1)
        ax = grid[0][0]
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"no data for {what}", ha="center", va="center", wrap=True, transform=ax.transAxes)
        if title:
            fig.suptitle(title)
        save_figure(fig, out)
