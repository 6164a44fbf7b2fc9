"""One process per (network, method): the pair job writes each pair's files exactly as one job per pair would,
and the verbs that only tabulate or draw start without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from permlmc.artifacts.checkpoints import load_permutation, save_checkpoint
from permlmc.cli.data import run_prepare_dataset
from permlmc.cli.interpolate_pair import run_interpolate_pair
from permlmc.cli.main import main
from permlmc.cli.search_pair import run_search_pair
from permlmc.cli.search_pairs import run_search_pairs
from permlmc.interpolation.setup import alpha_grid
from permlmc.models import Architecture, permutation_spec
from permlmc.training.loop import initialise

ARCH = Architecture("mlp", 1, 8, (1, 8, 8), 10)
SA = {"steps": 100, "schedule": "calibrated", "metric": "loss"}  # loss: random networks tie on error
CURVES = {"alphas": alpha_grid(5), "train_examples": 300, "test_examples": 200}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pairs")
    data = root / "digits.safetensors"
    run_prepare_dataset("digits", "unused", data, download=False, image_size=None, train_subset=None)
    paths = {"data": data}
    for seed in (1, 2, 3):
        paths[f"seed{seed}"] = root / f"seed{seed}" / "model.safetensors"
        save_checkpoint(paths[f"seed{seed}"], ARCH, initialise(ARCH, seed).state_dict(), {"seed": seed})
    return paths


def pair(files: dict[str, Path], a: int, b: int, out: Path) -> dict[str, str]:
    return {"kind": "real", "pair": f"{a}-{b}", "model_a": str(files[f"seed{a}"]),
            "model_b": str(files[f"seed{b}"]), "out": str(out / f"{a}-{b}")}


def search_pairs(files: dict[str, Path], pairs: list[dict[str, str]]) -> None:
    run_search_pairs("sa", pairs, files["data"], options=SA, seed=0, search_examples=200, labels={"method": "sa"},
                     expect="mlp-d1-w8", **CURVES)


def test_a_pairs_files_do_not_depend_on_the_pairs_before_it(files: dict[str, Path], tmp_path: Path) -> None:
    together, alone = tmp_path / "together", tmp_path / "alone"
    search_pairs(files, [pair(files, 1, 2, together), pair(files, 1, 3, together)])
    search_pairs(files, [pair(files, 1, 3, alone)])
    spec = permutation_spec(ARCH)
    b = initialise(ARCH, 3).state_dict()
    first = load_permutation(together / "1-3" / "permutation.safetensors", spec, b)
    second = load_permutation(alone / "1-3" / "permutation.safetensors", spec, b)
    assert all(torch.equal(first[name], second[name]) for name in first)  # SA draws from a fresh stream per pair
    assert not torch.equal(first["hidden.0"], torch.arange(8))  # it did search
    assert (together / "1-3" / "curve.csv").read_bytes() == (alone / "1-3" / "curve.csv").read_bytes()
    record = json.loads((together / "1-3" / "barrier.json").read_text())
    assert record["kind"] == "real" and record["pair"] == "1-3" and record["method"] == "sa"
    assert set(record["curve_seconds"]) == {"interpolate"} and record["curve_seconds"]["interpolate"] > 0


def test_a_pair_job_writes_what_a_search_and_a_barrier_job_write(files: dict[str, Path], tmp_path: Path) -> None:
    search_pairs(files, [pair(files, 1, 2, tmp_path / "job")])
    single = tmp_path / "single"
    run_search_pair("sa", files["seed1"], files["seed2"], files["data"], single / "permutation.safetensors", options=SA,
               seed=0, search_examples=200)
    run_interpolate_pair(files["seed1"], files["seed2"], single / "permutation.safetensors", files["data"],
                single / "barrier.json", single / "curve.csv", labels={}, **CURVES)
    assert (tmp_path / "job" / "1-2" / "curve.csv").read_bytes() == (single / "curve.csv").read_bytes()
    job = json.loads((tmp_path / "job" / "1-2" / "barrier.json").read_text())
    assert job["barriers"] == json.loads((single / "barrier.json").read_text())["barriers"]


BAD_ITEMS = [({"kind": "real"}, "lacks ['model_a', 'model_b', 'out', 'pair']"),
             ({"colour": "red"}, "unknown keys ['colour']"), ({"truth": ["only-a"]}, "'truth' must list two")]


@pytest.mark.parametrize("change,needle", BAD_ITEMS, ids=["missing", "unknown", "truth"])
def test_a_bad_pair_item_names_the_problem(files: dict[str, Path], tmp_path: Path, change: dict, needle: str) -> None:
    bad = change if "kind" in change else {**pair(files, 1, 2, tmp_path), **change}
    argv = ["search-pairs", "--method", "none", "--pairs", json.dumps([bad]), "--data", str(files["data"])]
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    message = str(stopped.value.code)
    assert message.startswith("permlmc search-pairs: error: --pairs item 1") and needle in message, message


def test_a_bad_pair_item_ends_the_process_with_the_errors_status(files: dict[str, Path], tmp_path: Path) -> None:
    """Through `python -m permlmc`, which ends the process early (permlmc.cli.main.run): status 1, the error's line."""
    argv = ["search-pairs", "--method", "none", "--pairs", json.dumps([{"kind": "real"}]), "--data", str(files["data"])]
    result = subprocess.run([sys.executable, "-m", "permlmc", *argv], capture_output=True, text=True)
    assert result.returncode == 1
    assert "permlmc search-pairs: error: --pairs item 1 lacks" in result.stderr, result.stderr


def test_tables_and_figures_start_without_torch_and_record_their_start_up(tmp_path: Path) -> None:
    timings = tmp_path / "timings.jsonl"
    script = ("import sys; from permlmc.cli.main import main; main(sys.argv[1:]); "
              "assert 'torch' not in sys.modules, 'a table verb imported torch'")
    for argv in (["tabulate-models", "--out", str(tmp_path / "models.csv")],
                 ["plot-figures", "--figure", "training_summary", "--tables", str(tmp_path / "models.csv"),
                  "--out", str(tmp_path / "training_summary.png")]):
        subprocess.run([sys.executable, "-c", script, *argv], check=True, env={"LMC_TIMINGS": str(timings),
                       "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"})
    lines = [json.loads(line) for line in timings.read_text().splitlines()]
    assert [line["verb"] for line in lines] == ["tabulate-models", "plot-figures"]
    for line in lines:
        assert line["started"] <= line["ready"] <= line["finished"] and line["status"] == "ok"
    assert (tmp_path / "training_summary.png").stat().st_size > 1000


def test_stream0_searches_with_the_residual_streams_left_in_place(tmp_path: Path) -> None:
    """``stream: 0`` keeps the streams at the identity and finds, elsewhere, what the search finds on the spec
    without them (for a ViT: the internal mode's); networks without streams refuse it."""
    from permlmc import seeding
    from permlmc.cli.search_pair import search_and_save
    from permlmc.models import residual_streams
    from permlmc.search import get_search
    from permlmc.search.pair import streams_left

    vit = Architecture("vit", 2, 8, (1, 8, 8), 10)
    a, b = initialise(vit, 1).state_dict(), initialise(vit, 2).state_dict()
    spec = permutation_spec(vit)
    assert streams_left(vit, {"stream": 0}) == residual_streams(vit) == ("residual",)
    out = tmp_path / "permutation.safetensors"
    found = search_and_save("weight_matching", spec, a, b, None, out, options={"stream": 0}, seed=0, residual="full",
                            sources=("a", "b"), left=streams_left(vit, {"stream": 0}))
    assert torch.equal(found["residual"], torch.arange(8))
    internal = get_search("weight_matching")(permutation_spec(vit, "internal"), a, b,
                                             generator=seeding.generator(0, seeding.SEARCH))
    assert all(torch.equal(found[name], internal[name]) for name in internal)
    assert json.loads(out.with_suffix(".json").read_text())["options"] == {"stream": 0}
    assert streams_left(vit, {}) == ()
    with pytest.raises(ValueError, match="no residual streams"):
        streams_left(ARCH, {"stream": 0})
    with pytest.raises(ValueError, match="internal leaves them in place"):
        search_and_save("weight_matching", permutation_spec(vit, "internal"), a, b, None, out, options={"stream": 0},
                        seed=0, residual="internal", sources=("a", "b"), left=("residual",))


def test_the_stream_variant_is_spelled_alike_by_the_workflow_the_jobs_and_the_figures() -> None:
    from permlmc.plotting import palette
    from permlmc.plotting.streams import STREAM_VARIANT
    from permlmc.search.pair import STREAM

    workflow = (Path(__file__).parents[1] / "workflow" / "rules" / "methods.smk").read_text()
    assert f'STREAM = "{STREAM}"' in workflow and f"-{STREAM}0" == STREAM_VARIANT
    assert "left in place" in palette.method_label(f"weight_matching{STREAM_VARIANT}")
