"""Tables the paper prints, derived from the tidy tables like the figures are: Table 2 (SA's barrier per number of
steps and its change per tenfold steps) and Table 3 (test accuracy of each way of ensembling a trained pair).

``PAPER_TABLES`` maps a table's name to the tidy table it reads and a function ``(tables, options) -> DataFrame``;
options are the figures' (``split``, ``metric``, ``value``, ...; Table 2 defaults to the paper's train split).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from permlmc.plotting import selection
from permlmc.plotting.search_studies import COLUMNS, sa_scaling_table, sa_steps

__all__ = ["PAPER_TABLES", "ensemble_summary", "sa_scaling_summary"]



def sa_scaling_summary(tables: Mapping[str, pd.DataFrame], options: Mapping[str, Any]) -> pd.DataFrame:
    """Paper Table 2: per network (real pairs) and number of SA steps, the mean barrier (column ``barrier``, of the
    quantity the options pick: by default the train error barrier at alpha = 1/2), ``delta`` = the barrier at the
    previous (tenfold fewer) steps / this one, the mean search seconds and the pairs averaged; plus the quantity
    as text in ``quantity``."""
    rows, label = selection.barrier_rows(tables, {"split": "train", **options}, columns=COLUMNS, variants=True)
    table = sa_scaling_table(sa_steps(rows[rows["kind"] == "real"]))
    return table.assign(steps=table["steps"].astype(int), quantity=label)


def ensemble_summary(tables: Mapping[str, pd.DataFrame], options: Mapping[str, Any]) -> pd.DataFrame:
    """Paper Table 3 in its rows (one per network: architecture, width, dataset) with one column per way of
    ensembling the trained pair, in test accuracy (%): the weight average after each search (``FD`` in the
    paper is ``functional_difference``), the midpoint of a subspace-learning line from scratch (``SL``) and from
    the matched pair (``functional_difference + SL``); beside them the endpoints' mean and the output ensemble."""
    frame = tables.get("ensembles")
    if frame is None or frame.empty:
        return pd.DataFrame(columns=selection.CONFIG)
    frame = frame.assign(accuracy=100 * pd.to_numeric(frame["test_accuracy"]))
    trained = frame[frame["ensemble"].str.startswith("trained pair")]
    columns = {
        "endpoints": trained[trained["member"].isin(["model A", "model B"])],
        "output ensemble": trained[trained["member"] == "output ensemble"],
    }
    for ensemble, part in frame[frame["member"] == "weight average"].groupby("ensemble", sort=False):
        columns[str(ensemble).removeprefix("trained pair, ")] = part
    parts = [part.groupby(selection.CONFIG)["accuracy"].mean().rename(name) for name, part in columns.items()]
    return pd.concat(parts, axis=1).reset_index()


PAPER_TABLES: dict[str, tuple[str, Callable[[Mapping[str, pd.DataFrame], Mapping[str, Any]], pd.DataFrame]]] = {
    "sa_scaling": ("barriers", sa_scaling_summary),
    "ensemble_summary": ("ensembles", ensemble_summary),
}
