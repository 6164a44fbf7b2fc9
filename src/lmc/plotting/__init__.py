"""Figures of the paper drawn from tidy result tables (never from checkpoints).

``FIGURES`` maps each figure's name to a function ``(tables, out, options) -> None``; see
:mod:`lmc.plotting.figures`. The shared look lives in :mod:`lmc.plotting.style`.
"""

from lmc.plotting.figures import FIGURES, FigureFunction

__all__ = ["FIGURES", "FigureFunction"]
