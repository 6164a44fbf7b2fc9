# Training. Seeds of one network that are all missing train together, `train_block` per job (one process, one
# batched block for MLPs); a lone missing seed, or a seed to retrain after a config change, has its own job.
# Both rules run the same command with the same parameters, so either may have made a checkpoint.

rule train_network:
    input:
        data=DATASET,
    output:
        model=CHECKPOINT,
        meta=CHECKPOINT.replace(".safetensors", ".json"),
    params:
        arch=lambda w: w.arch,
        depth=lambda w: w.depth,
        width=lambda w: w.width,
        seeds=lambda w, output: seeds_of(output),
        config=training_config,
        checkpoint_every=config["checkpoint_every"],
    log:
        "logs/train_network/{dataset}/{arch}-d{depth}-w{width}/seed{seed}.log",
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["train_runtime"],
        gpu=config["resources"]["gpu"],
    conda:
        ENV
    shell:
        TRAIN_COMMAND


for net, block in missing_seed_blocks():
    block_name = re.sub(r"\W", "_", f"train_seeds_{net['dataset']}_{net['arch']}_d{net['depth']}_w{net['width']}_"
                        f"s{block[0]}_{block[-1]}")

    rule:
        name:
            block_name
        input:
            data=DATASET.format(**net),
        output:
            model=[CHECKPOINT.format(seed=s, **net) for s in block],
            meta=[CHECKPOINT.format(seed=s, **net).replace(".safetensors", ".json") for s in block],
        params:
            arch=net["arch"],
            depth=str(net["depth"]),
            width=str(net["width"]),
            seeds=lambda w, output: seeds_of(output),
            config=family_protocol(net["dataset"], net["arch"]),
            checkpoint_every=config["checkpoint_every"],
        log:
            f"logs/train_seeds/{net['dataset']}/{net['arch']}-d{net['depth']}-w{net['width']}/seeds{block[0]}-{block[-1]}.log",
        threads: config["resources"]["threads"]
        resources:
            mem_mb=config["resources"]["mem_mb"],
            runtime=config["resources"]["train_runtime"],
            gpu=config["resources"]["gpu"],
        conda:
            ENV
        shell:
            TRAIN_COMMAND

    workflow.ruleorder(block_name, "train_network")
