"""The Snakemake workflow: lint, dry runs, a tiny end-to-end run, incremental reruns, bad configs."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tests.workflow_runs import (
    REPO,
    SNAKEMAKE,
    TINY,
    TINY_NETWORKS,
    dry_run,
    job_counts,
    planned_jobs,
    planning_error,
    snakemake,
)

pytestmark = pytest.mark.workflow


def training_jobs(jobs: dict[str, int]) -> dict[str, int]:
    """Jobs of the training rules, one per distinct block of seeds (`train_seeds_1to8`, `train_seeds_9to10`)."""
    return {rule: n for rule, n in jobs.items() if rule.startswith("train")}


FIGURE_JOBS = {"plot_figures": 1, "plot_split_figures": 1}
"""One job draws the figures shown once, one per split the barrier figures (TINY's one split: train)."""


def test_lint_is_clean() -> None:
    result = subprocess.run([SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


CONFIGS = [
    "config.yaml", "config/digits.yaml", "config/paper_mlp.yaml", "config/conv_cpu.yaml", "config/paper_conv.yaml",
    "config/studies.yaml", "config/beyond.yaml", "config/conv_evidence.yaml",
]


def expected_grid(config: dict) -> dict[tuple, set[str]]:
    """(dataset, arch, depth, width) -> methods, computed independently of the workflow's own code."""
    grid: dict[tuple, set[str]] = {}
    for study in config["studies"].values():
        for dataset in study.get("datasets", config["datasets"]):
            for depth in study["depths"]:
                for width in study["widths"]:
                    methods = study.get("methods", config["search"]["methods"])
                    grid.setdefault((dataset, study["arch"], depth, width), set()).update(methods)
    layers = config.get("layerwise")  # the layer-wise study reads its networks' pair permutations
    for net in layers["networks"] if layers else []:
        key = (net.get("dataset") or config["datasets"][0], net["arch"], net["depth"], net["width"])
        grid.setdefault(key, set()).update(layers.get("methods", ["none", "weight_matching"]))
    return grid


def trained_networks(config: dict) -> set[tuple]:
    """Networks with trained seeds: the pair grid's and the merged ones."""
    merging = config.get("merge_many")
    extra = {(net.get("dataset") or config["datasets"][0], net["arch"], net["depth"], net["width"])
             for net in (merging["networks"] if merging else [])}
    return set(expected_grid(config)) | extra


@pytest.mark.parametrize("configfile", CONFIGS)
def test_dry_run_builds_the_dag(configfile: str, shipped_plan: Callable[[str], str]) -> None:
    config = yaml.safe_load((REPO / configfile).read_text())
    jobs = job_counts(shipped_plan(configfile))
    grid = expected_grid(config)
    assert jobs["search_pairs"] == sum(len(methods) for methods in grid.values())  # one job per (network, method)
    if "all_pairs" not in config:  # the all-pairs study trains more seeds of its own networks
        block = config.get("train_block", 8)
        assert sum(training_jobs(jobs).values()) == len(trained_networks(config)) * -(-config["seeds"] // block)
    blocks = {f"train_seeds_{a}to{b}" for a in range(1, 100) for b in range(a + 1, 101)}
    assert jobs.keys() <= RULES | blocks | {f"train_seeds_{a}" for a in range(1, 101)}
    if configfile in COARSE:  # every job of the paper grids pays for its start-up
        assert sum(jobs.values()) <= COARSE[configfile]


COARSE = {"config/paper_mlp.yaml": 600, "config/paper_conv.yaml": 1200}
"""At most this many jobs in the paper grids: one per (network, method) for the pairs, one per block of seeds."""


RULES = {"prepare_dataset", "permute_copies", "search_pairs", "tabulate_barriers", "tabulate_models",
         "tabulate_study", "plot_figures", "plot_split_figures", "compare_all_pairs", "check_theorem", "search_group",
         "compare_ensembles", "compare_layers", "merge_models", "compare_spawns",
         "compare_epochs", "tabulate_sa_scaling", "tabulate_ensemble_summary", "all"}


BAD_CONFIGS = [
    ({"datasets": ["imagenet22k"]}, "imagenet22k"),
    ({"studies": {"width": {"arch": "mlp", "depths": [1], "widths": [0]}}}, "widths"),
    ({"studies": {"width": {"arch": "mlp", "depths": [-1], "widths": [4]}}}, "depths"),
    ({"studies": {"width": {"arch": "transformer", "depths": [1], "widths": [4]}}}, "arch"),
    ({"seeds": 0}, "seeds"),
    ({"seeds": 2, "reference_seed": 3}, "reference_seed"),
    ({"search": {"methods": ["sa", "magic"]}}, "methods"),
    ({"search": {"methods": ["sa-temperature5"]}}, "search.methods"),
    ({"search": {"methods": ["weight_matching-statistics7"]}}, "weight_matching-statistics0"),
    ({"datasets": ["digits-noisy"]}, "digits-noisy"),
    ({"groups": {"networks": [{"arch": "mlp", "depth": 1, "width": 4}], "models": 3}}, "groups.models"),
    ({"groups": {"studies": ["widths"], "models": 2}}, "groups.studies"),
    ({"groups": {"models": 2}}, "groups"),
    ({"barrier": {"alphas": 4}}, "barrier.alphas"),
    ({"ensembles": {"networks": [{"arch": "mlp", "depth": 1, "width": 4}], "methods": ["none"]}},
     "ensembles.line_method"),
    ({"theorem": {"method": "sa"}}, "theorem"),
    ({"trainig": {}}, "trainig"),
    ({"barrier": {"batched": True}}, "barrier.stacked"),
    ({"barrier": {"calibrated": True}}, "'barrier.calibrated' is now 'barrier.temperature_scaled'"),
]


@pytest.mark.parametrize("change,key", BAD_CONFIGS, ids=[k for _, k in BAD_CONFIGS])
def test_bad_config_fails_before_any_job_naming_the_key(change: dict, key: str, tmp_path: Path) -> None:
    assert key in planning_error(tmp_path, {**TINY, **change})
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("change,key", [case for case in BAD_CONFIGS if case[1] in ("imagenet22k", "reference_seed")],
                         ids=["schema", "cross-key"])
def test_snakemake_stops_on_a_bad_config_naming_the_key(change: dict, key: str, tmp_path: Path) -> None:
    """The command line shows what `planning_error` finds in this process: a schema's error and one of the config's
    own checks, before any job."""
    result = snakemake(tmp_path, {**TINY, **change}, "-n", check=False)
    assert result.returncode != 0 and key in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_a_good_config_has_no_planning_error(tmp_path: Path) -> None:
    assert planning_error(tmp_path, TINY) == ""


def test_groups_over_studies_search_every_network_of_them_once(tmp_path: Path) -> None:
    """`groups.studies` names grids: every network of them (and of `networks`, each once) gets one group job per
    method for both kinds, and SA2 along a width or depth study draws `group_vs_pairs`."""
    groups = {"studies": ["width", "depth"], "networks": [{"arch": "mlp", "depth": 1, "width": 8}], "models": 2,
              "methods": ["sa2", "weight_matching"]}
    out = dry_run(tmp_path, {**TINY, "groups": groups}, commands=True)
    commands = [line for line in out.splitlines() if "permlmc" in line and "search-group" in line]
    assert len(commands) == TINY_NETWORKS * 2
    assert all(c.count("--group real ") == 1 and c.count("--group model ") == 1 for c in commands)
    plots = next(line for line in out.splitlines() if "plot-figures" in line and "group_vs_pairs" in line)
    assert "group_searches" in plots
    without_sa2 = {**groups, "methods": ["sa1"]}
    out = dry_run(tmp_path, {**TINY, "groups": without_sa2}, commands=True)
    assert "group_vs_pairs" not in out


def test_an_option_at_its_neutral_default_is_not_passed(tmp_path: Path) -> None:
    """Weight matching's `statistics` option reaches a job only when off: finished weight-matching jobs keep their
    params (and are not rerun) now that the option exists."""
    methods = ["weight_matching", "weight_matching-statistics0"]
    config = {**TINY, "search": {**TINY.get("search", {}), "methods": methods}}
    out = dry_run(tmp_path, config, commands=True)
    commands = [line for line in out.splitlines() if "permlmc" in line and "search-pairs" in line]
    plain = [c for c in commands if "--method weight_matching " in c and "statistics0" not in c]
    variant = [c for c in commands if "statistics0" in c]
    assert plain and variant
    assert all("statistics" not in c.split("--options")[1].split("'")[1] for c in plain)
    assert all('"statistics": 0' in c for c in variant)


def test_a_configfile_replaces_the_default_instead_of_merging(tmp_path: Path) -> None:
    only_width = {**TINY, "studies": {"w": {"arch": "mlp", "depths": [1], "widths": [4]}}}
    jobs = planned_jobs(tmp_path, only_width)
    assert training_jobs(jobs) == {"train_seeds_1to2": 1}  # the default's studies do not leak in


def test_tiny_run_produces_every_table_and_figure(tiny_run: Path) -> None:
    tables = {name: pd.read_csv(tiny_run / "results" / "tables" / f"{name}.csv")
              for name in ("barriers", "curves", "sa_traces", "models")}
    barriers = tables["barriers"]
    networks = TINY_NETWORKS
    assert len(tables["models"]) == networks * 2
    assert len(barriers) == networks * 2 * 3 * 2 * 2  # networks x pairs(real, model) x methods x splits x metrics
    assert set(barriers["method"]) == {"none", "weight_matching", "sa"}
    assert (barriers["barrier"] >= -1e-12).all()
    # S' pairs are permutations of one network: weight matching undoes them exactly
    wm_model = barriers[(barriers.kind == "model") & (barriers.method == "weight_matching")]
    assert wm_model["barrier"].abs().max() < 1e-6
    recovered = barriers[barriers.kind == "model"].groupby("method")["recovery"].min()
    assert recovered["weight_matching"] == 1.0 and recovered["none"] < 1.0  # planted permutations undone
    assert barriers.loc[barriers.kind == "real", "recovery"].isna().all()  # no truth for independent seeds
    assert len(tables["curves"]) == len(barriers) * 5  # one row per alpha of each (split, metric) curve
    assert not tables["sa_traces"].empty
    for figure in ("interpolation_curves", "sa_energy", "training_summary"):
        assert (tiny_run / "results" / "figures" / f"{figure}.png").stat().st_size > 1000
    for figure in ("barrier_vs_width", "barrier_vs_depth", "real_vs_model_before", "real_vs_model_after",
                   "real_vs_model_scatter", "error_vs_barrier", "planted_recovery", "method_comparison"):
        assert (tiny_run / "results" / "figures" / "train" / f"{figure}.png").stat().st_size > 1000
    assert not (tiny_run / "results" / "figures" / "test").exists()  # a split the config leaves out is not drawn
    assert not list((tiny_run / "results" / "figures").rglob("bn_modes.*"))  # MLPs only: nothing to show
    for table in ("method_summary", "models"):  # shown as tables in the report
        assert "<table" in (tiny_run / "results" / "tables" / f"{table}.html").read_text()
    model_json = tiny_run / "results/digits/mlp-d1-w4/seed1/model.json"
    meta = yaml.safe_load(model_json.read_text())
    assert meta["epochs"] == 2 and meta["provenance"]["versions"]["torch"]


def test_tiny_run_reruns_nothing(tiny_run: Path) -> None:
    assert planned_jobs(tiny_run, TINY) == {}


def test_adding_a_seed_trains_only_its_block_and_the_networks_pairs(tiny_run: Path) -> None:
    blocks = {**TINY, "train_block": 2}  # the finished seeds 1-2 fill the first block of two
    jobs = planned_jobs(tiny_run, {**blocks, "seeds": 3})  # no new pair: only the training
    assert jobs == {"train_seeds_3": 3, "tabulate_models": 1, **FIGURE_JOBS, "all": 1}
    jobs = planned_jobs(tiny_run, {**blocks, "seeds": 4})  # new pair (3, 4): each network's pair jobs
    assert jobs == {"train_seeds_3to4": 3, "search_pairs": 3 * 3, "tabulate_models": 1, "tabulate_barriers": 1,
                    **FIGURE_JOBS, "all": 1}


def test_growing_a_partial_block_retrains_it_as_one_block(tiny_run: Path) -> None:
    jobs = planned_jobs(tiny_run, {**TINY, "seeds": 3})  # seeds 1-2 of block 1-8 are retrained with seed 3
    assert training_jobs(jobs) == {"train_seeds_1to3": 3}


def test_a_training_change_retrains_in_blocks(tiny_run: Path) -> None:
    jobs = planned_jobs(tiny_run, {**TINY, "training": {"mlp": {"max_epochs": 3}}})
    assert training_jobs(jobs) == {"train_seeds_1to2": 3}  # one stacked job per network, not one per seed
    assert jobs["search_pairs"] == 3 * 3


def test_adding_a_width_schedules_only_the_new_networks(tiny_run: Path) -> None:
    studies = {**TINY["studies"], "width": {"arch": "mlp", "depths": [1], "widths": [4, 8, 16]}}
    jobs = planned_jobs(tiny_run, {**TINY, "studies": studies})
    assert training_jobs(jobs) == {"train_seeds_1to2": 1}  # both seeds of the new network, one block
    assert jobs["permute_copies"] == 1
    assert jobs["search_pairs"] == 3  # one per method, each with the network's real and S' pairs
    assert "prepare_dataset" not in jobs


def test_adding_a_method_schedules_only_its_jobs(tiny_run: Path) -> None:
    methods = {**TINY["search"], "methods": ["none", "weight_matching", "sa", "activation_matching"]}
    jobs = planned_jobs(tiny_run, {**TINY, "search": methods})
    assert jobs == {"search_pairs": 3, "tabulate_barriers": 1, **FIGURE_JOBS, "all": 1}


def test_changing_sa_options_reruns_only_sa_jobs(tiny_run: Path) -> None:
    jobs = planned_jobs(tiny_run, {**TINY, "search": {"sa": {"steps": 40, "examples": 200}}})
    assert jobs == {"search_pairs": 3, "tabulate_barriers": 1, **FIGURE_JOBS, "all": 1}
    reasons = dry_run(tiny_run, {**TINY, "search": {"sa": {"steps": 40, "examples": 200}}})
    assert "/sa.log" in reasons and "/weight_matching.log" not in reasons


def test_adding_a_split_draws_only_its_figures(tiny_run: Path) -> None:
    jobs = planned_jobs(tiny_run, {**TINY, "figures": {"splits": ["train", "test"]}})
    assert jobs == {"plot_split_figures": 1, "all": 1}


def test_changing_a_figure_option_reruns_only_figures(tiny_run: Path) -> None:
    jobs = planned_jobs(tiny_run, {**TINY, "figures": {**TINY["figures"], "metric": "loss"}})
    assert jobs == {**FIGURE_JOBS, "all": 1}


STUDIES = {
    **TINY,
    "studies": {
        "exact": {"arch": "mlp", "depths": [1], "widths": [4],
                  "methods": ["none", "weight_matching", "activation_matching", "functional_difference",
                              "sa-steps10", "sa-steps20", "brute_force"]},
        "noise": {"arch": "mlp", "depths": [1], "widths": [4], "datasets": ["digits", "digits-noise20"],
                  "methods": ["none", "weight_matching"]},
    },
    "permuted_copies": 3,
    "search": {"sa": {"steps": 30, "examples": 200}, "brute_force": {"examples": 200}},
    # all pairs of the groups' networks (the same width and seeds): no training job of its own
    "all_pairs": {"arch": "mlp", "depth": 1, "widths": [4], "seeds": 3, "examples": 200},
    "theorem": {"widths": [4, 16], "input_dims": [2], "draws": 2, "inputs": 50},
    "groups": {"studies": ["exact"], "networks": [{"arch": "mlp", "depth": 1, "width": 4}], "models": 3,
               "methods": ["sa1", "sa2", "weight_matching"], "examples": 200},
    "ensembles": {"networks": [{"arch": "mlp", "depth": 1, "width": 4}],
                  "methods": ["none", "weight_matching", "functional_difference"], "line_epochs": 2},
    "figures": {"splits": ["test"]},  # the split figures of the test set: the studies' (App. E.4/E.5)
}


@pytest.fixture(scope="module")
def studies_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("studies")
    snakemake(workdir, STUDIES, "--cores", "2")
    return workdir


def test_studies_run_end_to_end_with_their_tables_and_figures(studies_run: Path) -> None:
    tables = {name: pd.read_csv(studies_run / "results" / "tables" / f"{name}.csv")
              for name in ("barriers", "models", "all_pairs", "theorem", "groups", "ensembles")}
    barriers = tables["barriers"]
    assert set(barriers["method"]) == set(STUDIES["studies"]["exact"]["methods"])
    assert set(barriers.loc[barriers.method == "sa-steps20", "algorithm"]) == {"sa"}
    assert set(barriers["dataset"]) == {"digits", "digits-noise20"}
    assert set(tables["models"]["dataset"]) == {"digits", "digits-noise20"}
    pairs = tables["all_pairs"]
    assert len(pairs) == 3 * 2  # 3 pairs of 3 seeds, before and after
    assert {"indirect_loss_barrier", "indirect_error_barrier_mid"} <= set(pairs.columns)
    assert pairs["independent"].sum() == 2  # one pair of 3 networks, before and after
    theorem = tables["theorem"]
    assert len(theorem) == 2 * 2 and (theorem[["gap_before", "gap_after"]] > 0).all().all()
    groups = tables["groups"]
    assert len(groups) == 3 * 2 * 2  # methods x kinds x (before, after): the study's one network and `networks`
    lifted = groups[(groups.kind == "model") & (groups.method == "weight_matching") & (groups.stage == "after")]
    assert lifted["loss_barrier"].abs().max() < 1e-6  # copies of one network: aligned exactly
    ensembles = tables["ensembles"]
    assert {"trained pair, none", "SL", "functional_difference + SL"} <= set(ensembles["ensemble"])
    assert ensembles["test_accuracy"].between(0, 1).all()
    for figure in ("all_pairs", "theorem_rate", "group_searches", "ensembles"):
        assert (studies_run / "results" / "figures" / f"{figure}.png").stat().st_size > 1000
    for figure in ("sa_scaling", "barrier_vs_compute", "label_noise"):
        assert (studies_run / "results" / "figures" / "test" / f"{figure}.png").stat().st_size > 1000
    assert not (studies_run / "results" / "figures" / "test" / "planted_recovery.png").exists()  # no width study
    table2 = pd.read_csv(studies_run / "results" / "tables" / "sa_scaling.csv")
    assert sorted(table2["steps"].unique()) == [10, 20] and table2["delta"].notna().any()
    table3 = pd.read_csv(studies_run / "results" / "tables" / "ensemble_summary.csv")
    assert len(table3) == 1 and {"SL", "functional_difference + SL", "endpoints"} <= set(table3.columns)
    for name in ("sa_scaling", "ensemble_summary"):
        assert "<table" in (studies_run / "results" / "tables" / f"{name}.html").read_text()


def test_every_figure_has_a_report_caption() -> None:
    from permlmc.plotting import FIGURES

    captions = {path.stem for path in (REPO / "workflow" / "report" / "captions").glob("*.rst")}
    assert captions == set(FIGURES)  # a figure without one would fail only at `snakemake --report`


def test_fetch_data_fetches_the_datasets_the_config_uses(tmp_path: Path) -> None:
    out = dry_run(tmp_path, STUDIES, "fetch_data", commands=True)
    command = next(line for line in out.splitlines() if "permlmc fetch-data" in line)
    assert command.split("--names ")[1].split(" --root")[0].split() == ["digits", "digits-noise20"]


def test_the_report_holds_the_summary_tables_and_every_figure(tiny_run: Path) -> None:
    snakemake(tiny_run, TINY, "--report", "report.html")
    html = (tiny_run / "report.html").read_text()
    assert "Summary" in html and "method_summary.html" in html and "models.html" in html
    assert "barrier_vs_width.png" in html and "training_summary.png" in html
    # the front page says what the figures plot (the config's quantity, alpha and splits) and names the headline table
    assert "What the figures show" in html and "<strong>error barrier</strong>" in html
    assert "\\u03b1 = \\u00bd" in html and "Headline table" in html


def test_the_workflow_draws_exactly_the_registered_figures() -> None:
    """The workflow's lists of figures (targets.smk, paths.smk) name every figure of `permlmc.plotting.FIGURES` once."""
    from permlmc.plotting import FIGURES

    targets = (REPO / "workflow" / "rules" / "targets.smk").read_text()
    paths = (REPO / "workflow" / "rules" / "paths.smk").read_text()
    blocks = [re.search(r"^SPLIT_FIGURES = \[(.*?)\]", targets, re.S | re.M)[1],
              re.search(r"^FIGURES = \[(.*?)\]", targets, re.M)[1],
              re.search(r"^STUDY_FIGURES = \{(.*?)\}", paths, re.S | re.M)[1]]
    named = re.findall(r'"([a-z_]+)"(?!:)', "".join(blocks))
    assert sorted(named) == sorted(FIGURES)
    needs = re.search(r"^FIGURE_NEEDS = \{(.*?)^\}", targets, re.S | re.M)[1]
    conditioned = re.findall(r'^    "([a-z_]+)":', needs, re.M)
    assert conditioned and set(conditioned) <= set(named)  # a condition for each listed figure that may lack data


def test_the_workflows_names_follow_the_library() -> None:
    """Constants the workflow keeps (it never imports the library) are the library's: compute options, the families
    with a norm option, the model-name pattern."""
    from permlmc.models import MODELS, model_names
    from permlmc.plotting.selection import COMPUTE_OPTIONS

    rules = REPO / "workflow" / "rules"
    targets, paths = (rules / "targets.smk").read_text(), (rules / "paths.smk").read_text()

    def constant(text: str, name: str) -> object:
        return ast.literal_eval(re.search(rf"^{name} = (.*)$", text, re.M)[1])

    assert constant(targets, "COMPUTE_OPTIONS") == COMPUTE_OPTIONS
    assert set(constant(targets, "NORMALISED_FAMILIES")) == {name for name, family in MODELS.items() if family.norms}
    from permlmc.plotting.paper_tables import PAPER_TABLES

    assert set(constant(paths, "PAPER_TABLE_LABELS")) == set(PAPER_TABLES)
    assert set(re.findall(r'"([a-z_]+)":', re.search(r"^PAPER_TABLES = (.*)$", paths, re.M)[1])) == set(PAPER_TABLES)
    pattern = re.compile(str(constant(paths, "MODEL_NAME")))
    assert all(pattern.fullmatch(name) for name in model_names())
    import inspect

    from permlmc.search import get_search

    methods = (rules / "methods.smk").read_text()
    neutral = ast.literal_eval(re.search(r"^NEUTRAL_OPTIONS = (.*)$", methods, re.M)[1])
    for algorithm, options in neutral.items():  # an option left out of a job means the library's default
        defaults = inspect.signature(get_search(algorithm)).parameters
        assert all(defaults[key].default == value for key, value in options.items()), algorithm
    assert not any(pattern.fullmatch(bad) for bad in ("vgg-ln", "vgg_", "_ln", "VGG"))


def test_make_data_fetches_the_configs_datasets(tmp_path: Path) -> None:
    """`make data` as `make run` calls it, in a directory of its own (the repository's files linked in)."""
    for name in ("Snakefile", "workflow", "profiles"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "digits.yaml").write_text(yaml.safe_dump(TINY))
    venv = Path(sys.prefix)
    result = subprocess.run(["make", "-f", str(REPO / "Makefile"), "-o", str(venv / ".installed"), "data",
                             f"VENV={venv}", "CONFIG=digits.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "digits: present" in result.stdout + result.stderr
