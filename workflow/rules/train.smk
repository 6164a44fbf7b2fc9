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
        output:
            model=block_models,
            meta=block_sidecars,
        params:
            arch=lambda w: network_fields(w.network)["arch"],
            depth=lambda w: network_fields(w.network)["depth"],
            width=lambda w: network_fields(w.network)["width"],
            seeds=" ".join(map(str, block_seeds)),
            config=block_protocol,
            checkpoint_every=config["checkpoint_every"],
        log:
            f"logs/train_seeds/{{network}}/seeds{seed_label(block_seeds)}.log",
        wildcard_constraints:
            network="|".join(re.escape(network) for network in block_networks),
        threads: config["resources"]["threads"]
        resources:
            mem_mb=config["resources"]["mem_mb"],
            runtime=config["resources"]["train_runtime"],
            gpu=config["resources"]["gpu"],
        conda:
            ENV
        shell:
            "python -m permlmc --threads {threads} train-seeds --data {input.data} --arch {params.arch} --depth {params.depth}"
            " --width {params.width} --seed {params.seeds} --config '{params.config}'"
            " --checkpoint-every {params.checkpoint_every} --out {output.model} 2> {log}"
