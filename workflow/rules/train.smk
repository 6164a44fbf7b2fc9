# Training. A network's seeds are split into blocks of `train_block` by seed number, from the config alone: each
# block is one job (one process; MLPs one stacked block), and each distinct block of seeds one rule,
# `train_seeds_<seeds>` (e.g. `train_seeds_1to8`), for every network that trains that block. A seed's weights do not
# depend on its block (permlmc.training.stacked), so growing `seeds` retrains at most the last partial block, to the
# same weights bitwise.

include: "inputs/train.smk"


for block_seeds, block_networks in seed_blocks().items():
    block_models, block_sidecars = trained_checkpoints(block_seeds)

    rule:
        name:
            f"train_seeds_{seed_label(block_seeds)}"
        input:
            data=block_dataset,
            spec=block_spec,
        output:
            model=block_models,
            meta=block_sidecars,
        params:
            arch=lambda w: network_fields(w.network)["arch"],
            depth=lambda w: network_fields(w.network)["depth"],
            width=lambda w: network_fields(w.network)["width"],
            seeds=" ".join(map(str, block_seeds)),
            config=block_protocol,
            factory=block_factory,
            checkpoint_every=config["checkpoint_every"],
        log:
            f"logs/train_seeds/{{network}}/seeds{seed_label(block_seeds)}.log",
        wildcard_constraints:
            network="|".join(re.escape(network) for network in block_networks),
        threads: config["resources"]["threads"]
        resources:
            **TRAIN_JOB,
        conda:
            ENV
        shell:
            "python -m permlmc --threads {threads} train-seeds --data {input.data} --arch {params.arch} --depth {params.depth}"
            " --width {params.width} --seed {params.seeds} --config '{params.config}' {params.factory}"
            " --checkpoint-every {params.checkpoint_every} --out {output.model} 2> {log}"


rule check_spec:
    """A network of the user's own (`models:`): its permutation spec derived from its traced graph and verified on
    it; the report (per permutation its deviation and share of parameters, every axis left in place and why)."""
    input:
        data=DATASET,
    output:
        report=SPEC,
    params:
        factory=lambda w: user_model(w.arch)["factory"],
        kwargs=lambda w: shlex.quote(json.dumps(user_model(w.arch)["kwargs"], sort_keys=True)),
        trace=lambda w: " ".join(shlex.quote(flag) for flag in trace_flags(w.arch)),
    log:
        network_log("check_spec"),
    threads: 1
    resources:
        **job_resources(10, gpu=False),
    conda:
        ENV
    shell:
        "python -m permlmc --threads {threads} check-spec --model {params.factory} --kwargs {params.kwargs}"
        " --data {input.data} --depth {wildcards.depth} --width {wildcards.width} {params.trace} --json {output.report}"
        " > {log} 2>&1"


rule import_checkpoints:
    """A network of the user's own trained elsewhere (`models.<arch>.checkpoints`): each state dict checked to fit
    the model, measured on the prepared dataset, and written as the checkpoint of seed 1, 2, ..."""
    input:
        data=DATASET,
        spec=SPEC,
        sources=lambda w: imported(w.dataset, w.arch)[: config["seeds"]],
    output:
        models=[fill(CHECKPOINT, seed=seed) for seed in range(1, config["seeds"] + 1)],
        meta=[sidecar(fill(CHECKPOINT, seed=seed)) for seed in range(1, config["seeds"] + 1)],
    params:
        factory=lambda w: factory_options(w.arch),
    log:
        network_log("import_checkpoints"),
    wildcard_constraints:  # only the networks given as checkpoints; `^$` matches no name when there are none
        arch="|".join(name for name, entry in config["models"].items() if entry.get("checkpoints")) or "^$",
    threads: config["resources"]["threads"]
    resources:
        **job_resources(10, gpu=False),
    conda:
        ENV
    shell:
        "python -m permlmc --threads {threads} import-checkpoints --data {input.data} --arch {wildcards.arch}"
        " --depth {wildcards.depth} --width {wildcards.width} {params.factory} --checkpoint {input.sources}"
        " --out {output.models} 2> {log}"
