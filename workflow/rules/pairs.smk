include: "inputs/pairs.smk"


rule search_pairs:
    """Every pair of one network (trained seeds S and permuted copies S'), for one method: B's permutation found by
    {method} (none = identity, the barrier before search), the loss/error along the linear path from A to the
    permuted B, and its Eq. 1 barriers. One process per (network, method): the files of each pair are those a
    per-pair job would write."""
    input:
        unpack(pair_inputs),
        data=DATASET,
    output:
        permutations=pair_outputs("permutation.safetensors"),
        search_meta=pair_outputs("permutation.json"),
        curves=pair_outputs("curve.csv"),
        barriers=pair_outputs("barrier.json"),
    params:
        algorithm=search_algorithm,
        pairs=pair_plan,
        options=search_options,
        seed=config["search"]["seed"],
        search_examples=search_examples,
        residual=config["search"]["residual"],
        alphas=config["barrier"]["alphas"],
        train_examples=config["barrier"]["train_examples"],
        test_examples=config["barrier"]["test_examples"],
        labels=method_labels,
        bn_modes=" ".join(config["barrier"]["bn_modes"]),
        bn_batches=config["barrier"]["bn_batches"],
        bn_batch_size=config["barrier"]["bn_batch_size"],
        stacked="--stacked" if config["barrier"]["stacked"] else "",
        temperature_scaled="--temperature-scaled" if config["barrier"]["temperature_scaled"] else "",
    log:
        network_log("search_pairs", "{method}"),
    threads: config["resources"]["threads"]
    resources:
        **job_resources(config["resources"]["search_runtime"] * len(network_pairs())),  # every pair of the network
    conda:
        ENV
    shell:
        command(
            "python -m permlmc --threads {threads} search-pairs --method {params.algorithm} --pairs '{params.pairs}'"
            " --data {input.data} --options '{params.options}' --seed {params.seed}"
            " --search-examples {params.search_examples} --residual {params.residual}",
            EXPECT,
            " --alphas {params.alphas}"
            " --train-examples {params.train_examples} --test-examples {params.test_examples}"
            " --labels '{params.labels}' --bn-modes {params.bn_modes} --bn-batches {params.bn_batches}"
            " --bn-batch-size {params.bn_batch_size} {params.stacked} {params.temperature_scaled} 2> {log}",
        )
