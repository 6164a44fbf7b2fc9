"""Lines a figure carries about the networks behind it: which stopped at the epoch cap (subtitles) and which did
not train or stopped short of their target (a warning above every figure, :func:`permlmc.plotting.draw`)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from permlmc.plotting.selection import CONFIG

SHOWN = 4
"""Networks a note names before it counts the rest."""


def _listed(names: list[str], where: str = "") -> str:
    """The first :data:`SHOWN` names, then how many more (and ``where`` they are listed)."""
    return ", ".join(names[:SHOWN] + ([f"{len(names) - SHOWN} more{where}"] if len(names) > SHOWN else []))


def stopping_note(tables: Mapping[str, pd.DataFrame]) -> str:
    """Which trained networks the paper's stopping rule ended (epoch mean train cross-entropy <= the target,
    ``stopped_by == "target_loss"``) and which stopped at the epoch cap, for figure subtitles; e.g. ``stopping rule
    (train CE <= target) reached by 7 of 9 networks; epoch cap: mlp-d1-w16 (4/4 seeds)``. Empty without models."""
    models = tables.get("models")
    if models is None or models.empty or "stopped_by" not in models.columns:
        return ""
    real = models[models["kind"] == "real"]
    several = real["dataset"].nunique() > 1  # then a capped network names its dataset
    capped = []
    for (dataset, arch, depth, width), sub in real.groupby(CONFIG):
        short = int((sub["stopped_by"] != "target_loss").sum())
        if short:
            where = f" on {dataset}" if several else ""
            capped.append(f"{arch}-d{depth}-w{width}{where} ({short}/{len(sub)} seeds)")
    networks = real.groupby(CONFIG).ngroups
    note = f"stopping rule (train CE \u2264 target) reached by {networks - len(capped)} of {networks} networks"
    return note + (f"; epoch cap: {_listed(capped, ' (models.csv)')}" if capped else "")


def training_note(tables: Mapping[str, pd.DataFrame]) -> str:
    """The networks in ``tables`` that did not train (``trained == "no"``) or stopped short of their target
    (``"short"``), from ``models`` (or, without it, the pairs of ``barriers``), for the warning above every figure;
    e.g. ``did not train: mlp-d1-w64 (seeds 1, 2), their barriers of ~0 are not connectivity (models.csv, column
    trained)``. Empty when every network trained or the tables do not say."""
    models, barriers = tables.get("models"), tables.get("barriers")
    if models is not None and not models.empty and "trained" in models.columns:
        rows, source = models[models["kind"] == "real"].assign(unit=lambda f: "seed " + f["seed"].astype(str)), \
            "models.csv"
    elif barriers is not None and not barriers.empty and "trained" in barriers.columns:
        rows = barriers.drop_duplicates([*CONFIG, "kind", "pair"])
        rows, source = rows.assign(unit=rows["kind"].astype(str) + " pair " + rows["pair"].astype(str)), "barriers.csv"
    else:
        return ""
    several = rows["dataset"].nunique() > 1
    parts = []
    for verdict, words, meaning in (
        ("no", "did not train", "their barriers of ~0 are not connectivity"),
        ("short", "short of the target loss", "their results describe networks part-way through training"),
    ):
        flagged = rows[rows["trained"].fillna("").astype(str) == verdict]
        names = [f"{arch}-d{depth}-w{width}{f' on {dataset}' if several else ''} ({', '.join(sub['unit'])})"
                 for (dataset, arch, depth, width), sub in flagged.groupby(CONFIG)]
        if names:
            parts.append(f"{words}: {_listed(names)}, {meaning}")
    return f"{'; '.join(parts)} ({source}, column trained)" if parts else ""
