"""What a search reads besides the two weight sets (``permlmc.search.REQUIRES``): a fixed training subset, the
network's function and, for activation-based matching, the features of its permuted units."""

from __future__ import annotations

import torch

from permlmc.data.dataset import Dataset, load_dataset
from permlmc.data.subsets import Purpose, fixed_subset
from permlmc.device import CPU
from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, build_model
from permlmc.permutation import PermutationSpec
from permlmc.search import REQUIRES
from permlmc.search.base import SearchData
from permlmc.search.features import unit_features
from permlmc.types import PathLike


def search_data(
    method: str, arch: Architecture, spec: PermutationSpec, data: PathLike | Dataset, examples: int | None,
    seed: int, device: torch.device = CPU,
) -> SearchData | None:
    """The inputs of ``method`` on ``examples`` training examples of ``data`` (a dataset or its file), on
    ``device``; None for methods that read the weights only."""
    needs = REQUIRES.get(method, ())
    if not needs:
        return None
    x, y = (data if isinstance(data, Dataset) else load_dataset(data)).split("train")
    idx = fixed_subset(len(x), examples, seed, Purpose.SEARCH_EXAMPLES).to(x.device)
    x, y = x[idx].to(device), y[idx].to(device)
    model = build_model(arch).to(device)
    features = unit_features(model, spec) if "features" in needs else None
    return SearchData(functional_forward(model), x, y, features=features)
