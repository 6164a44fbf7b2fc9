# The config beyond its schema: cross-key checks (they fail before any job runs), the method grammar, and the
# grid of networks, pairs and seeds every study asks for.


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


def temperature_scaled_curves():
    """Whether curves also carry loss_temperature_scaled (`barrier.temperature_scaled`)."""
    return config["barrier"]["temperature_scaled"]


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
            algorithm, option, value = method_variant(method)
            known = set(config["search"].get(algorithm, {}))
            where = f"studies.{name}.methods" if study.get("methods") else "search.methods"
            if option == STREAM:
                check_stream_variant(method, value)
                continue
            if option is not None and option not in known:
                config_error(where, f"{method!r} overrides {option!r}, which search.{algorithm} does not have; "
                             f"it has {sorted(known) or 'no options'}")
            if option is not None and isinstance(config["search"][algorithm][option], bool) and value not in (0, 1):
                config_error(where, f"{method!r} sets the on/off option {option!r} to {value}; write "
                             f"{algorithm}-{option}0 (off) or {algorithm}-{option}1 (on)")
    ensembles = config.get("ensembles")
    if ensembles and ensembles["line_method"] not in ensembles["methods"]:
        config_error("ensembles.line_method", f"{ensembles['line_method']!r} must be one of ensembles.methods "
                     f"{ensembles['methods']}: the matched line starts from its permutation")
    merging = config.get("merge_many")
    if merging and max(merging["models"]) > config["seeds"]:
        config_error("merge_many.models", f"merging {max(merging['models'])} models needs as many seeds "
                     f"(seeds is {config['seeds']})")
    layerwise = config.get("layerwise")
    if layerwise and (max(layerwise["pair"]) > min(config["seeds"], config["permuted_copies"])):
        config_error("layerwise.pair", f"{layerwise['pair']} needs seeds and permuted copies up to "
                     f"{max(layerwise['pair'])} (seeds {config['seeds']}, permuted_copies {config['permuted_copies']})")
    if config["barrier"]["alphas"] % 2 == 0:
        config_error("barrier.alphas", f"{config['barrier']['alphas']} points miss alpha = 1/2, where the paper reads "
                     "its barrier (figures.value barrier_mid); use an odd number such as 11")
    check_user_models()
    check_training()
    groups = config.get("groups")
    if groups and groups["models"] > config["permuted_copies"]:
        config_error("groups.models", f"{groups['models']} models need at least as many permuted copies "
                     f"(permuted_copies is {config['permuted_copies']})")
    for name in (groups or {}).get("studies", []):
        if name not in config["studies"]:
            config_error("groups.studies", f"{name!r} is not a study; name one of {sorted(config['studies'])}")


def check_training():
    """Each protocol's warm-up (`warmup_epochs`, default 0) is shorter than its run and belongs to `warmup_cosine`,
    with a dataset's overrides too (permlmc.training.loop.TrainConfig checks it again in the job)."""
    for family, section in config["training"].items():
        protocols = [(f"training.{family}", section)]
        protocols += [(f"training.{family}.datasets.{name}", {**section, **overrides})
                      for name, overrides in section.get("datasets", {}).items()]
        for key, protocol in protocols:
            warmup = protocol.get("warmup_epochs", 0)
            if warmup >= protocol["max_epochs"]:
                config_error(f"{key}.warmup_epochs", f"{warmup} warm-up epochs leave none of max_epochs "
                             f"{protocol['max_epochs']} for the cosine; give fewer")
            if warmup and protocol["schedule"] != "warmup_cosine":
                config_error(f"{key}.warmup_epochs", f"warm-up belongs to schedule warmup_cosine, not "
                             f"{protocol['schedule']!r}; set schedule: warmup_cosine or warmup_epochs: 0")


def network_archs():
    """(config key, arch) of every place a network is named: studies, and the optional studies' networks."""
    named = [(f"studies.{name}.arch", study["arch"]) for name, study in config["studies"].items()]
    for section in ("groups", "ensembles", "layerwise", "merge_many"):
        for i, entry in enumerate((config.get(section) or {}).get("networks", [])):
            named.append((f"{section}.networks[{i}].arch", entry["arch"]))
    return named


def registered_models():
    """The models the library ships: the enumeration of the schema's `arch` (pinned to the library by a test)."""
    import yaml

    definitions = Path(workflow.basedir) / "workflow" / "schemas" / "definitions.schema.yaml"
    options = yaml.safe_load(definitions.read_text())["definitions"]["arch"]["anyOf"]
    return next(option["enum"] for option in options if "enum" in option)


def check_user_models():
    """Every arch is registered or declared under `models`; a model's own checkpoints cover its seeds; each factory
    imports, builds, and its derived spec passes verification (one `permlmc check-spec` process per model)."""
    registered = registered_models()
    for key, arch in network_archs():
        if arch not in registered and arch not in config["models"]:
            config_error(key, f"{arch!r} is neither a registered model nor declared under `models`")
    for name, entry in config["models"].items():
        if name in registered:
            config_error(f"models.{name}", f"{name!r} is a registered model; give your network another name")
        networks = [net for net in experiments() if net[1] == name]
        if networks and config["search"]["residual"] != "full":
            config_error("search.residual", f"networks of your own ({name!r}) have their residual streams permuted "
                         "whole: residual mode 'full'; 'internal' applies to the registered ResNets only")
        for dataset, paths in entry.get("checkpoints", {}).items():
            if len([net for net in networks if net[0] == dataset]) > 1:
                config_error(f"models.{name}.checkpoints.{dataset}", "checkpoints are of one network: the studies "
                             f"of {name!r} must name one depth and width on {dataset}")
            if len(paths) < config["seeds"]:
                config_error(f"models.{name}.checkpoints.{dataset}", f"{len(paths)} checkpoints for "
                             f"{config['seeds']} seeds")
    for name, entry in config["models"].items():  # the config's own checks first: they take no process
        networks = [net for net in experiments() if net[1] == name]
        if networks and workflow.is_main_process:  # not again inside each job
            check_factory(name, entry, networks[0])


def check_factory(name, entry, network):
    """Run `permlmc check-spec` on a model's first network and its checkpoints; its error names the config key."""
    import subprocess

    dataset, _, depth, width = network
    command = [sys.executable, "-m", "permlmc", "check-spec", "--model", entry["factory"], "--kwargs",
               json.dumps(entry["kwargs"]), "--dataset", dataset, "--depth", str(depth), "--width", str(width),
               *trace_flags(name), "--checkpoint", *entry.get("checkpoints", {}).get(dataset, [])]
    if config["data"]["image_size"]:
        command += ["--image-size", str(config["data"]["image_size"])]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        lines = (done.stderr or done.stdout).strip().splitlines()
        config_error(f"models.{name}", lines[-1] if lines else f"check-spec exited with {done.returncode}")


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


NEUTRAL_OPTIONS = {"weight_matching": {"statistics": True, "restarts": 1}}
"""Search options passed to a job only when they differ from this value, the library's default: options added
after results exist, so that finished pair jobs keep their params and are not rerun."""


STREAM = "stream"
"""The variant option every method takes: `<method>-stream0` leaves the residual streams in place (the search runs
on the spec without them; permlmc.search.pair.STREAM). A network without residual streams fails at its job."""


def check_stream_variant(method, value):
    if value not in (0, 1) or method_variant(method)[0] == "none":
        config_error("search.methods", f"{method!r}: write <method>-stream0 to leave the residual streams in place "
                     "during a search (none leaves everything in place already)")


def search_settings(method):
    """(algorithm, options, examples) of a method name: the algorithm's config section with the variant's
    override; `examples` (the training subset of data-based searches) is passed separately."""
    algorithm, option, value = method_variant(method)
    options = dict(config["search"].get(algorithm, {}))
    if option is not None:
        options[option] = value
    for key, neutral in NEUTRAL_OPTIONS.get(algorithm, {}).items():
        if options.get(key) == neutral:
            del options[key]
    examples = options.pop("examples", None)
    if algorithm == "sa" and options["schedule"] != "custom":
        options.pop("tmax"), options.pop("tmin")
    return algorithm, options, examples


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


check_config()
