# What the config asks for, beyond its schema: the grid of networks, pairs and seeds every study asks for, and each
# network's training protocol (methods.smk: the method grammar; config.smk checks the config against both).


def temperature_scaled_curves():
    """Whether curves also carry loss_temperature_scaled (`barrier.temperature_scaled`)."""
    return config["barrier"]["temperature_scaled"]


def study_datasets(study):
    return study.get("datasets") or config["datasets"]


def study_methods(study):
    return study.get("methods") or config["search"]["methods"]


def experiments():
    """{(dataset, arch, depth, width): methods of its pairs} for every network, the union over all studies."""
    grid = {}
    for s in config["studies"].values():
        for key in study_networks(s):
            grid.setdefault(key, {}).update(dict.fromkeys(study_methods(s)))
    return {key: list(methods) for key, methods in sorted(grid.items())}


def study_networks(study):
    """(dataset, arch, depth, width) of every network of one `studies:` grid."""
    return [(dataset, study["arch"], depth, width) for dataset in study_datasets(study)
            for depth in study["depths"] for width in study["widths"]]


def disjoint_pairs(n):
    """(1, 2), (3, 4), ...: the paper's disjoint pairs (5 pairs from 10 seeds)."""
    return [(i, i + 1) for i in range(1, n, 2)]


def pairs(kind):
    return disjoint_pairs(config["seeds"] if kind == "real" else config["permuted_copies"])


def net_fields(arch, depth, width):
    return dict(arch=arch, depth=depth, width=width)


def family_of(arch):
    """The family of a model name (`vgg_ln` -> `vgg`; permlmc.model_names)."""
    return arch.partition("_")[0]


def user_model(arch):
    """The `models` entry of a network of the user's own, or None for a registered model."""
    return config["models"].get(arch)


def trace_flags(arch):
    """`check-spec` options of a network of the user's own: `--entrywise ...` and `--pin KEY:AXIS ...`."""
    trace = user_model(arch)["trace"]
    flags = ["--entrywise", *trace["entrywise"]] if trace.get("entrywise") else []
    pins = [f"{key}:{axis}" for key, axes in trace.get("pinned", {}).items() for axis in axes]
    return flags + (["--pin", *pins] if pins else [])


def family_protocol(dataset, arch, **changes):
    """Protocol of the model's family (`vgg_ln` trains as `vgg`; a network of your own as its `protocol`) with the
    dataset's overrides and `changes`, as JSON for `permlmc train-seeds --config`."""
    family = dict(config["training"][user_model(arch)["protocol"] if user_model(arch) else family_of(arch)])
    base = dataset.split("-noise")[0]  # label-noise variants train like their dataset
    overrides = family.pop("datasets", {}).get(base, {})
    return json.dumps({**family, **overrides, **changes}, sort_keys=True)


def seeds_needed():
    """{(dataset, arch, depth, width): seeds} every study trains (grids, all pairs, groups, ensembles)."""
    needed = {net: set(range(1, config["seeds"] + 1)) for net in experiments()}
    if config.get("all_pairs"):
        section = config["all_pairs"]
        for width in section["widths"]:
            net = tuple(network_of({**section, "width": width}).values())
            needed.setdefault(net, set()).update(range(1, section["seeds"] + 1))
    for net in group_networks():
        needed.setdefault(tuple(net.values()), set()).update(range(1, config["groups"]["models"] + 1))
    for name, seeds in (("ensembles", lambda s: s["pair"]),
                        ("layerwise", lambda s: range(1, config["seeds"] + 1)),  # its pair jobs: all pairs
                        ("merge_many", lambda s: range(1, max(s["models"]) + 1))):
        if config.get(name):
            for entry in config[name]["networks"]:
                needed.setdefault(tuple(network_of(entry).values()), set()).update(seeds(config[name]))
    return needed


def group_networks():
    """The networks of the group study: every network of its `studies` (each dataset, depth and width), then its
    `networks`, each once, as (dataset, arch, depth, width) dicts."""
    groups = config.get("groups") or {}
    found = [key for name in groups.get("studies", []) for key in study_networks(config["studies"][name])]
    found += [tuple(network_of(entry).values()) for entry in groups.get("networks", [])]
    return [dict(zip(("dataset", "arch", "depth", "width"), key)) for key in dict.fromkeys(found)]


def network_of(entry, dataset_key="dataset"):
    return dict(dataset=entry.get(dataset_key) or config["datasets"][0], arch=entry["arch"],
                depth=entry["depth"], width=entry["width"])


def used_datasets():
    """Every dataset a job of this config reads: those of the studies' networks and of the optional studies."""
    named = [dataset for dataset, *_ in experiments()]
    if config.get("all_pairs"):
        named.append(network_of({**config["all_pairs"], "width": 0})["dataset"])
    named.extend(net["dataset"] for net in group_networks())
    named.extend(network_of(n)["dataset"] for n in (config.get("ensembles") or {}).get("networks", []))
    return list(dict.fromkeys(named))
