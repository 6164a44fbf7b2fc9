# The config beyond its schema: cross-key checks, which fail before any job runs (the grid they read is grid.smk's).


def config_error(key, message):
    raise ValueError(f"config key '{key}': {message}")


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


def check_stream_variant(method, value):
    if value not in (0, 1) or method_variant(method)[0] == "none":
        config_error("search.methods", f"{method!r}: write <method>-stream0 to leave the residual streams in place "
                     "during a search (none leaves everything in place already)")


check_config()
