# Path templates, the experiment grid and input functions. The grid lives in paths: adding a width or a
# seed to the config adds only the jobs whose paths are new.
import json
import os
import re
import sys
from importlib.util import find_spec

# Where every `python -m lmc` job puts its tensors (cpu, cuda, auto); an environment setting, not a parameter,
# so moving a study to a GPU does not invalidate its finished results.
DEVICE = f"export LMC_DEVICE={config['resources']['device']}; "

if find_spec("lmc") is not None:
    # Jobs call `python -m lmc`: use the interpreter running Snakemake, where lmc is installed, even when its
    # environment is not activated (e.g. `.venv/bin/snakemake`). Under `--sdm conda` lmc comes from envs/.
    shell.prefix(f'set -euo pipefail; export PATH="{os.path.dirname(sys.executable)}:$PATH"; {DEVICE}')
else:
    shell.prefix(f"set -euo pipefail; {DEVICE}")

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
TABLES = {
    name: f"results/tables/{name}.csv" for name in ("barriers", "curves", "sa_traces", "models", "method_summary")
}
FIGURE = f"results/figures/{{figure}}.{config['figures']['format']}"
SPLIT_FIGURE = f"results/figures/{{split}}/{{figure}}.{config['figures']['format']}"

wildcard_constraints:
    dataset=r"[a-z0-9_]+(-noise\d+)?",
    arch="[a-z0-9]+",
    depth=r"\d+",
    width=r"\d+",
    seed=r"\d+",
    replica=r"\d+",
    a=r"\d+",
    b=r"\d+",
    kind="real|model",
    method=r"[a-z_]+(-[a-z_]+\d+)?",
    figure="[a-z_]+",
    split="train|test",


def config_error(key, message):
    raise ValueError(f"config key '{key}': {message}")


# A method name is a search algorithm, optionally with one option overridden: `sa-steps1000` is simulated
# annealing with 1,000 steps, `weight_matching-max_iter1` one sweep, `activation_matching-examples100` a
# 100-example subset (the compute sweeps of the SA scaling study).
METHOD_VARIANT = re.compile(r"(?P<algorithm>[a-z_]+?)(?:-(?P<option>[a-z_]+?)(?P<value>\d+))?")


DATA_SEARCHES = ("sa", "brute_force", "activation_matching", "functional_difference")
"""Searches that run the network on data (on the job's device, so they ask for a GPU where one is configured)."""


def method_variant(method):
    """(algorithm, option, value) of a method name; option and value are None for a plain algorithm."""
    match = METHOD_VARIANT.fullmatch(method)
    value = match["value"]
    return match["algorithm"], match["option"], None if value is None else int(value)


def study_datasets(study):
    return study.get("datasets") or config["datasets"]


def study_methods(study):
    return study.get("methods") or config["search"]["methods"]


def check_config():
    """Cross-key checks the schema cannot express; they fail before any job runs."""
    if config["reference_seed"] > config["seeds"]:
        config_error("reference_seed", f"{config['reference_seed']} is not among the {config['seeds']} seeds")
    for name, study in config["studies"].items():
        if len(set(study["widths"])) != len(study["widths"]):
            config_error(f"studies.{name}.widths", "contains duplicates")
        for method in study_methods(study):
            algorithm, option, _ = method_variant(method)
            known = set(config["search"].get(algorithm, {}))
            if option is not None and option not in known:
                where = f"studies.{name}.methods" if study.get("methods") else "search.methods"
                config_error(where, f"{method!r} overrides {option!r}, which search.{algorithm} does not have; "
                             f"it has {sorted(known) or 'no options'}")
    ensembles = config.get("ensembles")
    if ensembles and ensembles["line_method"] not in ensembles["methods"]:
        config_error("ensembles.line_method", f"{ensembles['line_method']!r} must be one of ensembles.methods "
                     f"{ensembles['methods']}: the matched line starts from its permutation")
    groups = config.get("groups")
    if groups and groups["models"] > config["permuted_copies"]:
        config_error("groups.models", f"{groups['models']} models need at least as many permuted copies "
                     f"(permuted_copies is {config['permuted_copies']})")


check_config()


def experiments():
    """{(dataset, arch, depth, width): methods of its pairs} for every network, the union over all studies."""
    grid = {}
    for s in config["studies"].values():
        for dataset in study_datasets(s):
            for depth in s["depths"]:
                for width in s["widths"]:
                    methods = grid.setdefault((dataset, s["arch"], depth, width), {})
                    methods.update(dict.fromkeys(study_methods(s)))
    return {key: list(methods) for key, methods in sorted(grid.items())}


def disjoint_pairs(n):
    """(1, 2), (3, 4), ...: the paper's disjoint pairs (5 pairs from 10 seeds)."""
    return [(i, i + 1) for i in range(1, n, 2)]


def pairs(kind):
    return disjoint_pairs(config["seeds"] if kind == "real" else config["permuted_copies"])


def net_fields(arch, depth, width):
    return dict(arch=arch, depth=depth, width=width)


def family_protocol(dataset, arch):
    """Family protocol with the dataset's overrides, as JSON for `lmc train --config`."""
    family = dict(config["training"][arch])
    base = dataset.split("-noise")[0]  # label-noise variants train like their dataset
    overrides = family.pop("datasets", {}).get(base, {})
    return json.dumps({**family, **overrides}, sort_keys=True)


def training_config(wildcards):
    return family_protocol(wildcards.dataset, wildcards.arch)


def endpoint(kind, index):
    """Checkpoint template of one end of a pair: a trained seed or a permuted copy."""
    return CHECKPOINT.replace("{seed}", index) if kind == "real" else COPY.replace("{replica}", index)


def pair_models(wildcards):
    return {
        "model_a": endpoint(wildcards.kind, wildcards.a).format(**wildcards),
        "model_b": endpoint(wildcards.kind, wildcards.b).format(**wildcards),
    }


def search_inputs(wildcards):
    """The pair, and for S' pairs the copies' planted permutations (the search reports how many units it maps
    back to their true place)."""
    inputs = pair_models(wildcards)
    if wildcards.kind == "model":
        for end, index in (("a", wildcards.a), ("b", wildcards.b)):
            inputs[f"truth_{end}"] = COPY_PERMUTATION.replace("{replica}", index).format(**wildcards)
    return inputs


def truth_arguments(wildcards, input):
    return f"--truth {input.truth_a} {input.truth_b}" if wildcards.kind == "model" else ""


def search_settings(method):
    """(algorithm, options, examples) of a method name: the algorithm's config section with the variant's
    override; `examples` (the training subset of data-based searches) is passed separately."""
    algorithm, option, value = method_variant(method)
    options = dict(config["search"].get(algorithm, {}))
    if option is not None:
        options[option] = value
    examples = options.pop("examples", None)
    if algorithm == "sa" and options["schedule"] != "custom":
        options.pop("tmax"), options.pop("tmin")
    return algorithm, options, examples


def search_options(wildcards):
    return json.dumps(search_settings(wildcards.method)[1], sort_keys=True)


def search_examples(wildcards):
    return search_settings(wildcards.method)[2]


def search_algorithm(wildcards):
    return search_settings(wildcards.method)[0]


def sa_schedule(method):
    algorithm, options, _ = search_settings(method)
    return options["schedule"] if algorithm == "sa" else ""


def barrier_labels(wildcards):
    labels = {
        "dataset": wildcards.dataset, "arch": wildcards.arch, "depth": int(wildcards.depth),
        "width": int(wildcards.width), "kind": wildcards.kind, "pair": f"{wildcards.a}-{wildcards.b}",
        "method": wildcards.method, "algorithm": method_variant(wildcards.method)[0],
        "sa_schedule": sa_schedule(wildcards.method),
    }
    return json.dumps(labels, sort_keys=True)


def all_checkpoints():
    return [
        CHECKPOINT.format(dataset=d, seed=s, **net_fields(*n))
        for (d, *n) in experiments() for s in range(1, config["seeds"] + 1)
    ]


def seeds_needed():
    """{(dataset, arch, depth, width): seeds} every study trains (grids, all pairs, groups, ensembles)."""
    needed = {net: set(range(1, config["seeds"] + 1)) for net in experiments()}
    if config.get("all_pairs"):
        section = config["all_pairs"]
        for width in section["widths"]:
            net = tuple(network_of({**section, "width": width}).values())
            needed.setdefault(net, set()).update(range(1, section["seeds"] + 1))
    for name, seeds in (("groups", lambda s: range(1, s["models"] + 1)), ("ensembles", lambda s: s["pair"])):
        if config.get(name):
            for entry in config[name]["networks"]:
                needed.setdefault(tuple(network_of(entry).values()), set()).update(seeds(config[name]))
    return needed


TRAIN_COMMAND = (
    "python -m lmc --threads {threads} train --data {input.data} --arch {params.arch} --depth {params.depth}"
    " --width {params.width} --seed {params.seeds} --config '{params.config}'"
    " --checkpoint-every {params.checkpoint_every} --out {output.model} 2> {log}"
)


def seeds_of(output):
    """Seeds of checkpoint paths (a parameter derived from the output, so not a rerun trigger)."""
    paths = [output.model] if isinstance(output.model, str) else output.model
    return " ".join(re.search(r"/seed(\d+)/", path)[1] for path in paths)


def missing_seed_blocks():
    """Per network, the seeds whose checkpoint does not exist yet, in blocks of `train_block` (a block of one
    is left to the per-seed rule). Blocks only ever hold missing seeds, so adding seeds to a config trains only
    the new ones; a seed's weights do not depend on its block (lmc.batched_training)."""
    blocks = []
    for net, seeds in sorted(seeds_needed().items()):
        fields = dict(zip(("dataset", "arch", "depth", "width"), net))
        missing = [s for s in sorted(seeds) if not os.path.exists(CHECKPOINT.format(seed=s, **fields))]
        size = config["train_block"]
        blocks += [(fields, missing[i : i + size]) for i in range(0, len(missing), size) if len(missing[i : i + size]) > 1]
    return blocks


def all_barriers():
    return [
        BARRIER.format(dataset=d, kind=k, a=a, b=b, method=m, **net_fields(*n))
        for (d, *n), methods in experiments().items() for k in ("real", "model")
        for a, b in pairs(k) for m in methods
    ]


def all_tables():
    return list(TABLES.values()) + all_study_tables()


# Barrier figures are drawn once per split in `figures.splits` (the paper's train figures and the test ones of
# its App. E.4/E.5); the others show both splits or none.
SPLIT_FIGURES = [
    "barrier_vs_width", "barrier_vs_depth", "real_vs_model_before", "real_vs_model_after",
    "real_vs_model_scatter", "error_vs_barrier", "bn_modes", "planted_recovery", "method_comparison",
]
FIGURES = ["interpolation_curves", "sa_energy", "training_summary"]


def optional_split_figures():
    """Study figures drawn only when the config has their study: compute sweeps (method variants such as
    `sa-steps100`) and label noise (datasets such as `fashion_mnist-noise20`)."""
    names = [(d, m) for (d, *_), methods in experiments().items() for m in methods]
    figures = []
    if any("-" in m for _, m in names):
        figures += ["sa_scaling", "barrier_vs_compute"]
    if any("-noise" in d for d, _ in names):
        figures.append("label_noise")
    return figures


def all_figures():
    return [FIGURE.format(figure=f) for f in FIGURES] + [
        SPLIT_FIGURE.format(figure=f, split=s)
        for f in SPLIT_FIGURES + optional_split_figures() for s in config["figures"]["splits"]
    ]


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
    options = {k: v for k, v in config["figures"].items() if k not in ("format", "splits")}
    if "split" in wildcards.keys():
        options["split"] = wildcards.split
    options["depth"], options["width"] = study_axes()
    return json.dumps(options, sort_keys=True)


# Studies spanning many models per job (optional config sections; each absent section adds nothing).
ALL_PAIRS = under(NET, "all_pairs", "{method}.json")
THEOREM = "results/theorem/{method}.json"
GROUP = under(NET, "groups", "{kind}", "n{models}", "{method}.json")
ENSEMBLES = under(NET, "ensembles", "{a}-{b}.json")
STUDY_TABLES = {name: f"results/tables/{name}.csv" for name in ("all_pairs", "theorem", "groups", "ensembles")}
STUDY_FIGURES = {"all_pairs": "all_pairs", "theorem": "theorem_rate", "groups": "group_searches",
                 "ensembles": "ensembles"}


def network_of(entry, dataset_key="dataset"):
    return dict(dataset=entry.get(dataset_key) or config["datasets"][0], arch=entry["arch"],
                depth=entry["depth"], width=entry["width"])


def study_outputs(name):
    """The JSON files of optional study `name` (empty when its config section is absent)."""
    section = config.get(name)
    if not section:
        return []
    if name == "all_pairs":
        return [ALL_PAIRS.format(method=section["method"], **network_of({**section, "width": w}))
                for w in section["widths"]]
    if name == "theorem":
        return [THEOREM.format(method=section["method"])]
    if name == "groups":
        return [GROUP.format(kind=k, models=section["models"], method=m, **network_of(n))
                for n in section["networks"] for k in ("real", "model") for m in section["methods"]]
    a, b = section["pair"]
    return [ENSEMBLES.format(a=a, b=b, **network_of(n)) for n in section["networks"]]


def all_study_tables():
    return [STUDY_TABLES[name] for name in STUDY_TABLES if config.get(name)]


def all_study_figures():
    return [FIGURE.format(figure=STUDY_FIGURES[name]) for name in STUDY_FIGURES if config.get(name)]


def group_models(wildcards):
    n = int(wildcards.models)
    if wildcards.kind == "real":
        return [CHECKPOINT.format(seed=s, **wildcards) for s in range(1, n + 1)]
    return [COPY.format(replica=c, **wildcards) for c in range(1, n + 1)]


def group_method(wildcards):
    """sa1/sa2 search the group jointly; a pairwise method aligns every model to the first."""
    return wildcards.method if wildcards.method in ("sa1", "sa2") else f"pairwise:{wildcards.method}"


def group_options(wildcards):
    algorithm = "sa" if wildcards.method in ("sa1", "sa2") else wildcards.method
    return json.dumps(search_settings(algorithm)[1], sort_keys=True)


def ensemble_permutations(wildcards):
    return {m: SEARCH.format(kind="real", method=m, **wildcards) for m in config["ensembles"]["methods"]}


def line_config(wildcards):
    settings = json.loads(training_config(wildcards))
    return json.dumps({**settings, "max_epochs": config["ensembles"]["line_epochs"]}, sort_keys=True)


def network_labels(wildcards):
    return json.dumps({"dataset": wildcards.dataset, "arch": wildcards.arch, "depth": int(wildcards.depth),
                       "width": int(wildcards.width)}, sort_keys=True)
