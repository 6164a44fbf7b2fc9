rule search_permutation:
    """Permutation of the pair's model B found by {method} (none = identity, the barrier before search)."""
    input:
        unpack(search_inputs),
        data=DATASET,
    output:
        permutation=SEARCH,
        meta=SEARCH.replace(".safetensors", ".json"),
    params:
        algorithm=search_algorithm,
        residual=config["search"]["residual"],
        options=search_options,
        seed=config["search"]["seed"],
        train_examples=search_examples,
        truth=truth_arguments,
    log:
        "logs/search_permutation/{dataset}/{arch}-d{depth}-w{width}/{kind}/{a}-{b}/{method}.log",
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["search_runtime"],
        gpu=lambda wildcards: config["resources"]["gpu"] if search_algorithm(wildcards) in DATA_SEARCHES else 0,
    conda:
        ENV
    shell:
        "python -m lmc --threads {threads} search --method {params.algorithm} --model-a {input.model_a}"
        " --model-b {input.model_b} --data {input.data} --options '{params.options}' --seed {params.seed}"
        " --train-examples {params.train_examples} --residual {params.residual} {params.truth}"
        " --expect {wildcards.arch}-d{wildcards.depth}-w{wildcards.width}"
        " --out {output.permutation} 2> {log}"
