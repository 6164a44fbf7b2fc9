rule train_network:
    input:
        data=DATASET,
    output:
        model=CHECKPOINT,
        meta=CHECKPOINT.replace(".safetensors", ".json"),
    params:
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
        "python -m lmc --threads {threads} train --data {input.data} --arch {wildcards.arch} --depth {wildcards.depth}"
        " --width {wildcards.width} --seed {wildcards.seed} --config '{params.config}'"
        " --checkpoint-every {params.checkpoint_every} --out {output.model} 2> {log}"
