# Path templates, the experiment grid and input functions. The grid lives in paths: adding a width or a
# seed to the config adds only the jobs whose paths are new.
import json
import os
import re
import sys
from importlib.util import find_spec
from pathlib import Path

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
    return CHECKPOINT.replace("{seed}", str(index)) if kind == "real" else COPY.replace("{replica}", str(index))


def network_pairs():
    """(kind, a, b) of every pair of one network: disjoint pairs of trained seeds (S) and of permuted copies (S')."""
    return [(kind, a, b) for kind in ("real", "model") for a, b in pairs(kind)]


def pair_directory(kind, a, b):
    return PAIR.replace("{kind}", kind).replace("{a}", str(a)).replace("{b}", str(b))


def pair_outputs(name):
    """One file `name` of every pair of a network, for one method (templates of the network and the method)."""
    return [under(pair_directory(*pair), name) for pair in network_pairs()]


def pair_inputs(wildcards):
    """Every endpoint of the network's pairs, and the planted permutations of the S' copies (each search reports
    how many units it maps back to their true place)."""
    models, truths = set(), set()
    for kind, a, b in network_pairs():
        models.update(endpoint(kind, i).format(**wildcards) for i in (a, b))
        if kind == "model":
            truths.update(COPY_PERMUTATION.replace("{replica}", str(i)).format(**wildcards) for i in (a, b))
    return {"models": sorted(models), "truths": sorted(truths)}


def pair_plan(wildcards):
    """The pairs of the job as JSON for `lmc search-pairs --pairs`: endpoints, planted permutations, output
    directory and the identity columns of each pair's tables."""
    plan = []
    for kind, a, b in network_pairs():
        item = {"kind": kind, "pair": f"{a}-{b}", "model_a": endpoint(kind, a).format(**wildcards),
                "model_b": endpoint(kind, b).format(**wildcards),
                "out": pair_directory(kind, a, b).format(**wildcards)}
        if kind == "model":
            item["truth"] = [COPY_PERMUTATION.replace("{replica}", str(i)).format(**wildcards) for i in (a, b)]
        plan.append(item)
    return json.dumps(plan, sort_keys=True)


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


def method_labels(wildcards):
    """Identity columns shared by the tables of every pair of one (network, method) job."""
    labels = {
        "dataset": wildcards.dataset, "arch": wildcards.arch, "depth": int(wildcards.depth),
        "width": int(wildcards.width), "method": wildcards.method, "algorithm": method_variant(wildcards.method)[0],
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


def network_id(dataset, arch, depth, width):
    """The network's directory under results/ (`{dataset}/{arch}-d{depth}-w{width}`), one training wildcard."""
    return f"{dataset}/{arch}-d{depth}-w{width}"


NETWORK_ID = re.compile(r"(?P<dataset>[^/]+)/(?P<arch>[a-z0-9]+)-d(?P<depth>\d+)-w(?P<width>\d+)")


def network_fields(network):
    return NETWORK_ID.fullmatch(network).groupdict()


def seed_label(seeds):
    """`1to4` for seeds 1..4, `1to2_5` for 1, 2, 5: the part of a training rule's name that names its seeds."""
    runs = []
    for seed in seeds:
        if runs and seed == runs[-1][1] + 1:
            runs[-1][1] = seed
        else:
            runs.append([seed, seed])
    return "_".join(str(a) if a == b else f"{a}to{b}" for a, b in runs)


def seed_blocks():
    """{block's seeds: network ids}. Each network's seeds are split into blocks of `train_block` by seed number
    (block k holds seeds k*B+1 .. (k+1)*B that the network needs), from the config alone; every distinct block
    is one rule, `train_seeds_<seeds>`, whose name profiles and `--set-resources` can use."""
    size = config["train_block"]
    blocks = {}
    for net, seeds in sorted(seeds_needed().items()):
        by_block = {}
        for seed in sorted(seeds):
            by_block.setdefault((seed - 1) // size, []).append(seed)
        for block in by_block.values():
            blocks.setdefault(tuple(block), []).append(network_id(*net))
    return blocks


def trained_checkpoints(seeds):
    """Checkpoint and sidecar templates of a block's seeds, with the network as one wildcard."""
    models = [f"results/{{network}}/seed{seed}/model.safetensors" for seed in seeds]
    return models, [path.replace(".safetensors", ".json") for path in models]


def block_dataset(wildcards):
    return DATASET.format(dataset=network_fields(wildcards.network)["dataset"])


def block_protocol(wildcards):
    fields = network_fields(wildcards.network)
    return family_protocol(fields["dataset"], fields["arch"])


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


def split_figures():
    """Figures drawn once per split: the barrier figures and the optional studies' split figures."""
    return SPLIT_FIGURES + optional_split_figures()


def whole_figures():
    """Figures drawn once: both splits or none, and the figures of the optional studies present."""
    return FIGURES + [STUDY_FIGURES[name] for name in STUDY_FIGURES if config.get(name)]


def all_figures():
    return [FIGURE.format(figure=f) for f in whole_figures()] + [
        SPLIT_FIGURE.format(figure=f, split=s) for f in split_figures() for s in config["figures"]["splits"]
    ]


def figure_outputs(names, template, category, **labels):
    """One named, captioned report output per figure of a figure job."""
    return {
        name: report(template.replace("{figure}", name), caption=f"../report/captions/{name}.rst", category=category,
                     labels={"figure": name, **labels})
        for name in names
    }


# Figure jobs also rerun when the plotting code changes (the library's figure modules are their inputs).
PLOTTING_CODE = sorted(str(path) for path in Path(workflow.basedir, "src", "lmc", "plotting").glob("*.py"))


def figure_footer(wildcards):
    """The last lines of every figure caption in the report: the barrier quantity shown and SA's settings."""
    sa = config["search"]["sa"]
    split = wildcards.split if "split" in wildcards.keys() else "train/test"
    return (f"Barrier metric: {split} {config['figures']['metric']} ({config['figures']['value']}). "
            f"Simulated annealing: schedule \"{sa['schedule']}\", {sa['steps']} steps, energy = midpoint "
            f"{sa['metric']}.")


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


def used_datasets():
    """Every dataset a job of this config reads: those of the studies' networks and of the optional studies."""
    named = [dataset for dataset, *_ in experiments()]
    if config.get("all_pairs"):
        named.append(network_of({**config["all_pairs"], "width": 0})["dataset"])
    for name in ("groups", "ensembles"):
        named.extend(network_of(n)["dataset"] for n in (config.get(name) or {}).get("networks", []))
    return list(dict.fromkeys(named))


def all_study_tables():
    return [STUDY_TABLES[name] for name in STUDY_TABLES if config.get(name)]


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
