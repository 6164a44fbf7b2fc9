# Input functions of the training rules (train.smk).


def network_id(dataset, arch, depth, width):
    """The network's id (paths.smk NETWORK, its folder under results/), one training wildcard."""
    return fill(NETWORK, dataset=dataset, arch=arch, depth=depth, width=width)


NETWORK_ID = re.compile(fill(NETWORK, dataset=r"(?P<dataset>[^/]+)", arch=rf"(?P<arch>{MODEL_NAME})",
                             depth=r"(?P<depth>\d+)", width=r"(?P<width>\d+)"))


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
        if imported(*net[:2]):
            continue
        by_block = {}
        for seed in sorted(seeds):
            by_block.setdefault((seed - 1) // size, []).append(seed)
        for block in by_block.values():
            blocks.setdefault(tuple(block), []).append(network_id(*net))
    return blocks


def trained_checkpoints(seeds):
    """Checkpoint and sidecar templates of a block's seeds, with the network as one wildcard."""
    models = [f"results/{{network}}/seed{seed}/model.safetensors" for seed in seeds]
    return models, [sidecar(path) for path in models]


def block_dataset(wildcards):
    return DATASET.format(dataset=network_fields(wildcards.network)["dataset"])


def imported(dataset, arch):
    """The user's own checkpoints of a network of their own on `dataset` (`models.<arch>.checkpoints`), or None."""
    return ((user_model(arch) or {}).get("checkpoints") or {}).get(dataset)


def factory_options(arch):
    """`--factory ... --factory-kwargs ...` of a network of the user's own (empty for a registered model)."""
    entry = user_model(arch)
    if entry is None:
        return ""
    kwargs = json.dumps(entry["kwargs"], sort_keys=True)
    options = f"--factory {entry['factory']} --factory-kwargs {shlex.quote(kwargs)}"
    if entry["trace"]:
        options += f" --trace-options {shlex.quote(json.dumps(entry['trace'], sort_keys=True))}"
    return options


def block_factory(wildcards):
    return factory_options(network_fields(wildcards.network)["arch"])


def block_spec(wildcards):
    """The spec report a network of the user's own is checked by before it trains (none for registered models)."""
    fields = network_fields(wildcards.network)
    return [SPEC.format(**fields)] if user_model(fields["arch"]) else []


def block_protocol(wildcards):
    fields = network_fields(wildcards.network)
    return family_protocol(fields["dataset"], fields["arch"])
