# Path templates, the experiment grid and input functions. The grid lives in paths: adding a width or a
# seed to the config adds only the jobs whose paths are new.
import json
import os
import sys
from importlib.util import find_spec

if find_spec("lmc") is not None:
    # Jobs call `python -m lmc`: use the interpreter running Snakemake, where lmc is installed, even when its
    # environment is not activated (e.g. `.venv/bin/snakemake`). Under `--sdm conda` lmc comes from envs/.
    shell.prefix(f'set -euo pipefail; export PATH="{os.path.dirname(sys.executable)}:$PATH"; ')

ENV = "../../envs/lmc.yaml"


def under(*parts):
    return "/".join(parts)


DATASET = "resources/datasets/{dataset}.safetensors"
NET = "results/{dataset}/{arch}-d{depth}-w{width}"
CHECKPOINT = under(NET, "seed{seed}", "model.safetensors")
COPY = under(NET, "permuted", "copy{replica}", "model.safetensors")
COPY_PERMUTATION = under(NET, "permuted", "copy{replica}", "permutation.safetensors")
PAIR = under(NET, "pairs", "{kind}", "{a}-{b}", "{method}")
SEARCH = under(PAIR, "permutation.safetensors")
BARRIER = under(PAIR, "barrier.json")
CURVE = under(PAIR, "curve.csv")
COPIES = list(range(1, config["permuted_copies"] + 1))
TABLES = {name: f"results/tables/{name}.csv" for name in ("barriers", "curves", "sa_traces", "models")}
FIGURE = f"results/figures/{{figure}}.{config['figures']['format']}"

wildcard_constraints:
    dataset="[a-z0-9_]+",
    arch="[a-z0-9]+",
    depth=r"\d+",
    width=r"\d+",
    seed=r"\d+",
    replica=r"\d+",
    a=r"\d+",
    b=r"\d+",
    kind="real|model",
    method="[a-z_]+",
    figure="[a-z_]+",


def config_error(key, message):
    raise ValueError(f"config key '{key}': {message}")


def check_config():
    """Cross-key checks the schema cannot express; they fail before any job runs."""
    if config["reference_seed"] > config["seeds"]:
        config_error("reference_seed", f"{config['reference_seed']} is not among the {config['seeds']} seeds")
    for name, study in config["studies"].items():
        if len(set(study["widths"])) != len(study["widths"]):
            config_error(f"studies.{name}.widths", "contains duplicates")


check_config()


def networks():
    """(arch, depth, width) of every network: the union over all studies, in a stable order."""
    grid = {(s["arch"], d, w) for s in config["studies"].values() for d in s["depths"] for w in s["widths"]}
    return sorted(grid)


def disjoint_pairs(n):
    """(1, 2), (3, 4), ...: the paper's disjoint pairs (5 pairs from 10 seeds)."""
    return [(i, i + 1) for i in range(1, n, 2)]


def pairs(kind):
    return disjoint_pairs(config["seeds"] if kind == "real" else config["permuted_copies"])


def net_fields(arch, depth, width):
    return dict(arch=arch, depth=depth, width=width)


def training_config(wildcards):
    """Family protocol with the dataset's overrides, as JSON for `lmc train --config`."""
    family = dict(config["training"][wildcards.arch])
    overrides = family.pop("datasets", {}).get(wildcards.dataset, {})
    return json.dumps({**family, **overrides}, sort_keys=True)


def endpoint(kind, index):
    """Checkpoint template of one end of a pair: a trained seed or a permuted copy."""
    return CHECKPOINT.replace("{seed}", index) if kind == "real" else COPY.replace("{replica}", index)


def pair_models(wildcards):
    return {
        "model_a": endpoint(wildcards.kind, wildcards.a).format(**wildcards),
        "model_b": endpoint(wildcards.kind, wildcards.b).format(**wildcards),
    }


def search_options(wildcards):
    options = dict(config["search"].get(wildcards.method, {}))
    if wildcards.method == "sa":
        options.pop("energy_examples")
        if options["schedule"] != "custom":
            options.pop("tmax"), options.pop("tmin")
    return json.dumps(options, sort_keys=True)


def sa_schedule(method):
    return config["search"]["sa"]["schedule"] if method == "sa" else ""


def barrier_labels(wildcards):
    labels = {
        "dataset": wildcards.dataset, "arch": wildcards.arch, "depth": int(wildcards.depth),
        "width": int(wildcards.width), "kind": wildcards.kind, "pair": f"{wildcards.a}-{wildcards.b}",
        "method": wildcards.method, "sa_schedule": sa_schedule(wildcards.method),
    }
    return json.dumps(labels, sort_keys=True)


def all_checkpoints():
    return [
        CHECKPOINT.format(dataset=d, seed=s, **net_fields(*n))
        for d in config["datasets"] for n in networks() for s in range(1, config["seeds"] + 1)
    ]


def all_barriers():
    return [
        BARRIER.format(dataset=d, kind=k, a=a, b=b, method=m, **net_fields(*n))
        for d in config["datasets"] for n in networks() for k in ("real", "model")
        for a, b in pairs(k) for m in config["search"]["methods"]
    ]


def all_tables():
    return list(TABLES.values())


FIGURES = [
    "barrier_vs_width", "barrier_vs_depth", "real_vs_model_before", "real_vs_model_after",
    "real_vs_model_scatter", "error_vs_barrier", "bn_modes", "interpolation_curves", "sa_energy", "training_summary",
]


def all_figures():
    return [FIGURE.format(figure=f) for f in FIGURES]


def study_axes():
    """Per arch: the depth its width study fixes and the width its depth study fixes (a study with one depth
    and several widths is a width study; one width and several depths, a depth study)."""
    fixed_depth, fixed_width = {}, {}
    for s in config["studies"].values():
        if len(s["depths"]) == 1:
            fixed_depth.setdefault(s["arch"], s["depths"][0])
        if len(s["widths"]) == 1 and len(s["depths"]) > 1:
            fixed_width.setdefault(s["arch"], s["widths"][0])
    return fixed_depth, fixed_width


def figure_options(wildcards):
    """Figure options as JSON: the display keys of `figures` plus, per arch, the depth of its width study
    (`depth`) and the width of its depth study (`width`)."""
    options = {k: v for k, v in config["figures"].items() if k != "format"}
    options["depth"], options["width"] = study_axes()
    return json.dumps(options, sort_keys=True)
