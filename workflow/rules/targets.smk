# What `all` asks for: every table and figure the config's studies produce (no figure without its data:
# FIGURE_NEEDS).


def all_checkpoints():
    return [
        CHECKPOINT.format(dataset=d, seed=s, **net_fields(*n))
        for (d, *n) in experiments() for s in range(1, config["seeds"] + 1)
    ]


def pair_sidecars():
    """The sidecars of the trained networks behind every pair (the barrier table says whether both trained): the
    two seeds of a pair of S, the reference seed of the copies of S'."""
    seeds = {i for kind, a, b in network_pairs() for i in ((a, b) if kind == "real" else (config["reference_seed"],))}
    return sorted(
        sidecar(CHECKPOINT.format(dataset=d, seed=i, **net_fields(*n)))
        for (d, *n) in experiments() for i in seeds
    )


def all_barriers():
    return [
        BARRIER.format(dataset=d, kind=k, a=a, b=b, method=m, **net_fields(*n))
        for (d, *n), methods in experiments().items() for k in ("real", "model")
        for a, b in pairs(k) for m in methods
    ]


def paper_tables():
    """The paper's printed tables the config has data for: Table 2 with an SA step sweep (two step counts or
    more), Table 3 with the ensembles study."""
    names = []
    if FIGURE_NEEDS["sa_scaling"]():  # the figure of the same sweep
        names.append("sa_scaling")
    if config.get("ensembles"):
        names.append("ensemble_summary")
    return [f"results/tables/{name}.csv" for name in names]


def all_specs():
    """The spec report of every network of the user's own (rule check_spec)."""
    return [SPEC.format(dataset=d, **net_fields(*n)) for (d, *n) in experiments() if user_model(n[0])]


def all_tables():
    """The tidy tables (the figures' inputs)."""
    return list(TABLES.values()) + all_study_tables()


# Barrier figures are drawn once per split in `figures.splits` (the paper's train figures and the test ones of
# its App. E.4/E.5); the others show both splits or none.
SPLIT_FIGURES = [
    "barrier_vs_width", "barrier_vs_depth", "real_vs_model_before", "real_vs_model_after",
    "real_vs_model_scatter", "error_vs_barrier", "task_grid", "bn_modes", "planted_recovery", "method_comparison",
    "stream_comparison",
    "sa_scaling", "barrier_vs_compute", "label_noise", "temperature_scaled_barriers", "midpoint_accuracy",
]
FIGURES = ["interpolation_curves", "sa_energy", "training_summary", "training_vs_depth", "group_vs_pairs"]


COMPUTE_OPTIONS = ("steps", "max_iter", "examples")
"""Search options that set a method's compute (permlmc.plotting.selection.COMPUTE_OPTIONS): their variants
(`sa-steps100`) make a compute sweep."""
SA_STEPS = ("sa", "steps")
"""The variant of the paper's Table 2 / Fig. 14 sweep."""
NORMALISED_FAMILIES = ("vgg", "resnet")
"""Families with a norm option (BatchNorm, LayerNorm, none): their networks compare midpoint accuracy stage by stage,
given curves of methods `MIDPOINT_METHODS`."""
MIDPOINT_METHODS = {"none", "weight_matching"}


def study_of_axis(axis, method=None):
    """Whether the networks (of `method`, if given) form a study along `axis`: several widths at one (dataset,
    arch, depth), or several depths at one (dataset, arch, width), pooled over the config's studies as the
    figures pool them."""
    return varies([key for key, methods in experiments().items() if method is None or method in methods], axis)


def varies(networks, axis):
    """Whether some (dataset, arch, depth, width) of `networks` differ in `axis` alone."""
    varied = {"depth": 2, "width": 3}[axis]  # its index in (dataset, arch, depth, width); the others are held
    seen = {}
    for key in networks:
        seen.setdefault(key[:varied] + key[varied + 1:], set()).add(key[varied])
    return any(len(values) > 1 for values in seen.values())


def group_study():
    """Whether SA2 (the paper's group search) runs over networks that form a width or depth study."""
    if "sa2" not in (config.get("groups") or {}).get("methods", []):
        return False
    networks = [tuple(net.values()) for net in group_networks()]
    return varies(networks, "width") or varies(networks, "depth")


def any_study(method=None):
    return study_of_axis("width", method) or study_of_axis("depth", method)


def any_method(test):
    return any(test(m) for methods in experiments().values() for m in methods)


def sa_step_counts():
    """The distinct step counts of the `sa-stepsN` variants: a sweep needs at least two."""
    return {method_variant(m)[2] for methods in experiments().values() for m in methods
            if method_variant(m)[:2] == SA_STEPS}


def batchnorm_networks():
    """Whether a network may have BatchNorm (a VGG or ResNet with its default norm, or a network of the user's own,
    whose pair jobs skip the modes when it has none) and a mode besides interpolate."""
    has_bn = any(arch in NORMALISED_FAMILIES or user_model(arch) for (_, arch, *_) in experiments())
    return has_bn and set(config["barrier"]["bn_modes"]) - {"interpolate"}


FIGURE_NEEDS = {
    "barrier_vs_width": lambda: study_of_axis("width", "none"),
    "barrier_vs_depth": lambda: study_of_axis("depth", "none"),
    "real_vs_model_before": lambda: any_study("none"),
    "real_vs_model_after": lambda: any_study() and any_method(lambda m: m != "none"),
    "error_vs_barrier": lambda: any_method(lambda m: m == "none"),
    "task_grid": lambda: any_method(lambda m: m == "none"),
    "bn_modes": batchnorm_networks,
    "planted_recovery": lambda: study_of_axis("width") and any_method(lambda m: m != "none"),
    "method_comparison": lambda: study_of_axis("width"),
    "stream_comparison": lambda: study_of_axis("width") and any_method(lambda m: method_variant(m)[1] == STREAM),
    "sa_energy": lambda: any_method(lambda m: method_variant(m)[0] == "sa"),
    "training_summary": lambda: study_of_axis("width"),
    "training_vs_depth": lambda: study_of_axis("depth"),
    "group_vs_pairs": group_study,
    # the optional studies' figures: compute sweeps (variants of a compute option such as `sa-steps100`), label
    # noise (datasets such as `fashion_mnist-noise20`), temperature-scaled barriers, midpoint accuracy (VGG and
    # ResNet)
    "sa_scaling": lambda: len(sa_step_counts()) > 1,
    "barrier_vs_compute": lambda: any_method(lambda m: method_variant(m)[1] in COMPUTE_OPTIONS),
    "label_noise": lambda: any("-noise" in dataset for (dataset, *_) in experiments()),
    "temperature_scaled_barriers": temperature_scaled_curves,
    "midpoint_accuracy": lambda: any(family_of(arch) in NORMALISED_FAMILIES and MIDPOINT_METHODS <= set(methods)
                                     for (_, arch, *_), methods in experiments().items()),
}
"""Figures a config may have nothing for, and whether it has: a figure without data is not scheduled (no
"no data" placeholders in a run's output)."""


def with_data(figures):
    return [f for f in figures if f not in FIGURE_NEEDS or FIGURE_NEEDS[f]()]


def split_figures():
    """Figures drawn once per split: the barrier figures and the optional studies' split figures, those with data."""
    return with_data(SPLIT_FIGURES)


def whole_figures():
    """Figures drawn once: both splits or none, and the figures of the optional studies present."""
    return with_data(FIGURES) + [STUDY_FIGURES[name] for name in STUDY_FIGURES if config.get(name)]


def all_figures():
    return [FIGURE.format(figure=f) for f in whole_figures()] + [
        SPLIT_FIGURE.format(figure=f, split=s) for f in split_figures() for s in config["figures"]["splits"]
    ]


def _pair_of(section):
    a, b = section["pair"]
    return {"a": a, "b": b}


STUDY_OUTPUTS = {
    "all_pairs": lambda s: [ALL_PAIRS.format(method=s["method"], **network_of({**s, "width": w}))
                            for w in s["widths"]],
    "theorem": lambda s: [THEOREM.format(method=s["method"])],
    "groups": lambda s: [GROUP.format(kind=k, models=s["models"], method=m, **net)
                         for net in group_networks() for k in ("real", "model") for m in s["methods"]],
    "spawning": lambda s: [SPAWN.format(seed=s["parent"], at=k, **network_of(net)) for net in s["networks"]
                           for k in s["at"]],
    "along_training": lambda s: [ALONG.format(**_pair_of(s), **network_of(net)) for net in s["networks"]],
    "merge_many": lambda s: [MERGE.format(models=n, **network_of(net)) for net in s["networks"] for n in s["models"]],
    "layerwise": lambda s: [LAYERWISE.format(kind=k, **_pair_of(s), **network_of(net)) for net in s["networks"]
                            for k in ("real", "model")],
    "ensembles": lambda s: [ENSEMBLES.format(**_pair_of(s), **network_of(net)) for net in s["networks"]],
}
"""Each optional study (a config section) -> the JSON files its jobs write, from its section."""


def study_outputs(name):
    """The JSON files of optional study `name` (empty when its config section is absent)."""
    section = config.get(name)
    return STUDY_OUTPUTS[name](section) if section else []


def all_study_tables():
    return [STUDY_TABLES[name] for name in STUDY_TABLES if config.get(name)]
