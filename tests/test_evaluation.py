"""One measure of logits for the whole library: error (argmax's first-maximal-class rule on ties) and mean
cross-entropy, for one network or K stacked ones, classes last or first."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from permlmc.evaluation import loss_sum, measure, wrong_count

LAYOUTS = [  # (shape of the measured tensor, its class dim, how it is made from (K, N, classes))
    ("one, classes last", 1, lambda t: t[0]),
    ("one, classes first", 0, lambda t: t[0].T.contiguous()),
    ("K, classes last", 2, lambda t: t),
    ("K, classes first", 1, lambda t: t.transpose(1, 2).contiguous()),
]


def _logits(ties: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randint(-2, 3, (3, 500, 10), generator=g).double() if ties  # many exact ties
              else torch.randn(3, 500, 10, generator=g, dtype=torch.float64))
    return logits, torch.randint(0, 10, (500,), generator=g)


def _reference(logits: torch.Tensor, y: torch.Tensor, metric: str) -> list[float]:
    """Per network of (K, N, classes), one by one with the plain definitions."""
    if metric == "error":
        return [float((net.argmax(dim=1) != y).double().mean()) for net in logits]
    return [float(F.cross_entropy(net, y)) for net in logits]


@pytest.mark.parametrize(("layout", "class_dim", "make"), LAYOUTS, ids=[layout[0] for layout in LAYOUTS])
@pytest.mark.parametrize("metric", ["error", "loss"])
@pytest.mark.parametrize("ties", [True, False], ids=["ties", "no ties"])
def test_measure_is_the_plain_definition_in_every_layout(layout: str, class_dim: int, make, metric: str,
                                                         ties: bool) -> None:
    logits, y = _logits(ties)
    expected = _reference(logits, y, metric)
    value = measure(make(logits), y, metric, class_dim=class_dim)
    assert value.dtype == torch.float64
    got = value.tolist() if value.ndim else [float(value)]
    assert got == pytest.approx(expected[: len(got)], abs=1e-12)
    if ties and metric == "error":  # the tie rule matters here: the first maximal class is the prediction
        assert (logits == logits.amax(2, keepdim=True)).sum(2).gt(1).sum() > 100


def test_error_counts_are_exact_and_the_loss_sums_as_cross_entropy_sums() -> None:
    logits, y = _logits(ties=False)
    single = logits[0].float()
    assert int(wrong_count(single, y)) == int((single.argmax(1) != y).sum())
    assert torch.equal(loss_sum(single, y), F.cross_entropy(single, y, reduction="sum").double())  # bitwise


def test_bad_metric_and_shapes_are_named() -> None:
    logits, y = _logits(ties=False)
    with pytest.raises(ValueError, match="'accuracy'"):
        measure(logits, y, "accuracy")
    with pytest.raises(ValueError, match="network axis"):
        measure(logits, y, "error", class_dim=0)
    with pytest.raises(ValueError, match=r"\(7,\)"):
        measure(torch.zeros(7), y, "error")
