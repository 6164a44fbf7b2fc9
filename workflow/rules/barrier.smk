rule interpolate_pair:
    """Loss/error along the linear path from A to the permuted B, and the Eq. 1 barriers."""
    input:
        unpack(pair_models),
        permutation=SEARCH,
        data=DATASET,
    output:
        barrier=BARRIER,
        curve=CURVE,
    params:
        alphas=config["barrier"]["alphas"],
        train_examples=config["barrier"]["train_examples"],
        test_examples=config["barrier"]["test_examples"],
        labels=barrier_labels,
        residual=config["search"]["residual"],
        bn_modes=" ".join(config["barrier"]["bn_modes"]),
        bn_batches=config["barrier"]["bn_batches"],
        bn_batch_size=config["barrier"]["bn_batch_size"],
        batched="--batched" if config["barrier"]["batched"] else "",
    log:
        "logs/interpolate_pair/{dataset}/{arch}-d{depth}-w{width}/{kind}/{a}-{b}/{method}.log",
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=30,
        gpu=config["resources"]["gpu"],
    conda:
        ENV
    shell:
        "python -m lmc --threads {threads} barrier --model-a {input.model_a} --model-b {input.model_b}"
        " --permutation {input.permutation} --data {input.data} --alphas {params.alphas}"
        " --train-examples {params.train_examples} --test-examples {params.test_examples}"
        " --labels '{params.labels}' --residual {params.residual}"
        " --expect {wildcards.arch}-d{wildcards.depth}-w{wildcards.width} --bn-modes {params.bn_modes}"
        " --bn-batches {params.bn_batches} --bn-batch-size {params.bn_batch_size} {params.batched}"
        " --out {output.barrier} --curve-out {output.curve} 2> {log}"
