"""The library on users' own modules: align, barrier, merge (permlmc.api) and the verb check-spec."""

from __future__ import annotations

import json
from copy import deepcopy
from pathlib import Path

import pytest
import torch
from tests.traced_models import TRACED
from torch.utils.data import DataLoader, TensorDataset

from permlmc import api
from permlmc.cli.main import main
from permlmc.permutation import apply_permutation, invert, random_permutation
from permlmc.search.features import unit_features
from permlmc.tracing import derive_spec


def _network(name: str, seed: int) -> tuple[torch.nn.Module, torch.Tensor]:
    cls, shape = TRACED[name]
    torch.manual_seed(seed)
    return cls().eval(), torch.randn(*shape)


def _loader(shape: tuple[int, ...], rows: int = 48) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(rows, *shape[1:], generator=g), torch.randint(0, 5, (rows,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=16)


def _permuted_copy(model: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    spec = derive_spec(model, example).spec
    copy = deepcopy(model).eval()
    copy.load_state_dict(apply_permutation(spec, random_permutation(spec, model.state_dict(),
                                                                    torch.Generator().manual_seed(3)),
                                           model.state_dict()))
    return copy


@pytest.mark.parametrize("name", sorted(TRACED))
def test_align_undoes_a_planted_permutation(name: str) -> None:
    a, example = _network(name, 0)
    b = _permuted_copy(a, example)
    aligned = api.align(a, b, example, method="weight_matching")
    assert aligned.report.ok
    expected = a.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in aligned.model.state_dict().items())
    assert all(torch.equal(value, b.state_dict()[key]) for key, value in b.state_dict().items())  # b untouched


def test_searches_that_read_data_take_it_from_a_loader() -> None:
    a, example = _network("concat", 0)
    b, _ = _network("concat", 1)
    with pytest.raises(ValueError, match="'sa' needs data"):
        api.align(a, b, example, method="sa")
    aligned = api.align(a, b, example, method="sa", data=_loader(example.shape), examples=32, steps=20)
    assert set(aligned.permutation) == set(aligned.spec.names)
    with pytest.raises(ValueError, match="unknown"):
        api.align(a, b, example, method="annealing")


@pytest.mark.parametrize("bn_mode", ["interpolate", "reset", "repair"])
def test_the_barrier_of_a_network_with_itself_is_zero(bn_mode: str) -> None:
    a, example = _network("gated_conv", 0)
    curve = api.barrier(a, a, _loader(example.shape), alphas=5, bn_mode=bn_mode, statistics_batches=2)
    assert len(curve.alphas) == len(curve.loss) == len(curve.error) == 5
    assert curve.error_barrier == 0.0 and curve.loss_barrier == pytest.approx(0.0, abs=1e-6)
    assert curve.bn_mode == bn_mode


def test_merging_a_network_with_a_permuted_copy_gives_the_network() -> None:
    a, example = _network("tokens", 0)
    merged = api.merge([a, _permuted_copy(a, example)], example)
    expected = a.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in merged.state_dict().items())


def _factory_module(directory: Path) -> None:
    (directory / "user_nets.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        "def mlp(width=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(12, width), nn.ReLU(), nn.Linear(width, 3))\n"
        "class Cumulative(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.layer = nn.Linear(12, 3)\n"
        "    def forward(self, x):\n"
        "        return self.layer(torch.cumsum(x.flatten(1), 1))\n")


def test_check_spec_reports_a_factorys_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _factory_module(tmp_path)
    monkeypatch.chdir(tmp_path)
    main(["check-spec", "--model", "user_nets:mlp", "--kwargs", '{"width": 6}', "--input-shape", "3", "4",
          "--json", "report.json"])
    printed = capsys.readouterr().out
    assert "1 permutations" in printed and "OK: every permutation" in printed and "model output" in printed
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] and [p["name"] for p in report["permutations"]] == ["1"]
    assert report["permutations"][0]["units"] == 6


@pytest.mark.parametrize(("model", "message"), [
    ("user_nets:Cumulative", "cumsum.*Ways out"),
    ("user_nets:missing", "'user_nets' has no 'missing'"),
    ("no_such_module:mlp", "cannot import 'no_such_module'"),
    ("user_nets", "must read 'package.module:function'"),
])
def test_check_spec_refuses_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str,
                                          message: str) -> None:
    _factory_module(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=message):
        main(["check-spec", "--model", model, "--input-shape", "3", "4"])


def test_activation_matching_reads_units_where_each_layer_writes_them() -> None:
    a, example = _network("concat", 0)  # a Conv1d writes units on axis 1, the LayerNorm after it on the last axis
    b = _permuted_copy(a, example)
    loader = _loader(example.shape)
    found = api.align(a, b, example, method="activation_matching", data=loader, examples=48).permutation
    spec = derive_spec(a, example).spec
    truth = invert(random_permutation(spec, a.state_dict(), torch.Generator().manual_seed(3)))  # _permuted_copy's
    features = unit_features(a, spec)(a.state_dict(), api.take(loader, 48)[0])
    for name in spec.names:  # every unit that is ever active is found; units dead on all inputs tie
        live = features[name].std(0) > 0
        assert live.sum() >= 4 and torch.equal(found[name][live], truth[name][live]), name


def test_activation_matching_names_what_it_cannot_read() -> None:
    a, example = _network("qk_norm", 0)  # attention heads move as blocks: no layer writes them whole
    with pytest.raises(ValueError, match=r"\['q'\] have no module whose weight carries them whole"):
        api.align(a, _network("qk_norm", 1)[0], example, method="activation_matching", data=_loader(example.shape))
