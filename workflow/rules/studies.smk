include: "inputs/studies.smk"


rule compare_all_pairs:
    """App. E.3: barriers of every pair of the first `all_pairs.seeds` seeds, before and after {method}."""
    input:
        models=lambda w: [CHECKPOINT.format(seed=s, **w) for s in range(1, config["all_pairs"]["seeds"] + 1)],
        data=DATASET,
    output:
        rows=ALL_PAIRS,
    params:
        options=search_options,
        examples=lambda w: config["all_pairs"]["examples"],
        barrier_examples=config["barrier"]["train_examples"],
        alphas=config["barrier"]["alphas"],
        seed=config["search"]["seed"],
        labels=network_labels,
        algorithm=search_algorithm,
        residual=config["search"]["residual"],
    log:
        network_log("compare_all_pairs", "{method}"),
    threads: config["resources"]["threads"]
    resources:
        **SEARCH_JOB,
    conda:
        ENV
    shell:
        command(
            "python -m permlmc --threads {threads} compare-all-pairs --models {input.models} --data {input.data}"
            " --method {params.algorithm} --options '{params.options}' --search-examples {params.examples}"
            " --barrier-examples {params.barrier_examples}"
            " --alphas {params.alphas} --seed {params.seed} --labels '{params.labels}' --residual {params.residual}",
            EXPECT,
            " --out {output.rows} 2> {log}",
        )


rule check_theorem:
    """Theorem 3.1 at random initialisation: interpolation gap vs width after {method} aligns the weights."""
    output:
        rows=THEOREM,
    params:
        widths=lambda w: " ".join(map(str, config["theorem"]["widths"])),
        input_dims=lambda w: " ".join(map(str, config["theorem"]["input_dims"])),
        draws=lambda w: config["theorem"]["draws"],
        inputs=lambda w: config["theorem"]["inputs"],
        alphas=config["barrier"]["alphas"],
        seed=config["search"]["seed"],
        algorithm=search_algorithm,
        options=search_options,
    log:
        "logs/check_theorem/{method}.log",
    threads: config["resources"]["threads"]
    resources:
        **job_resources(config["resources"]["search_runtime"], gpu=False),
    conda:
        ENV
    shell:
        "python -m permlmc --threads {threads} check-theorem --method {params.algorithm} --options '{params.options}'"
        " --widths {params.widths}"
        " --input-dims {params.input_dims} --draws {params.draws} --inputs {params.inputs}"
        " --alphas {params.alphas} --seed {params.seed} --out {output.rows} 2> {log}"


rule search_group:
    """Paper 4.2: n models permuted by {method} (sa1, sa2, or a pairwise method aligning all to the first), for
    the trained seeds (S) and the permuted copies (S') of one network in one process."""
    input:
        unpack(group_models),
        data=DATASET,
    output:
        real=fill(GROUP, kind="real"),
        model=fill(GROUP, kind="model"),
    params:
        method=group_method,
        options=group_options,
        examples=lambda w: config["groups"]["examples"],
        barrier_examples=config["barrier"]["train_examples"],
        alphas=config["barrier"]["alphas"],
        seed=config["search"]["seed"],
        labels=lambda w: network_labels(w, {"method": w.method}),
        residual=config["search"]["residual"],
    log:
        network_log("search_group", "n{models}", "{method}"),
    wildcard_constraints:
        method="sa1|sa2|[a-z_]+",
        models=r"\d+",
    threads: config["resources"]["threads"]
    resources:
        **job_resources(2 * config["resources"]["search_runtime"]),  # two groups
    conda:
        ENV
    shell:
        command(
            "python -m permlmc --threads {threads} search-group --group real {output.real} {input.real}"
            " --group model {output.model} {input.model} --data {input.data}"
            " --method {params.method} --options '{params.options}' --search-examples {params.examples}"
            " --barrier-examples {params.barrier_examples}"
            " --alphas {params.alphas} --seed {params.seed} --labels '{params.labels}' --residual {params.residual}",
            EXPECT,
            " 2> {log}",
        )


rule compare_ensembles:
    """App. C / Table 3: ensembles of trained pair {a}-{b} after each search, and subspace-learning lines."""
    input:
        unpack(lambda w: {"model_a": CHECKPOINT.format(seed=w.a, **w), "model_b": CHECKPOINT.format(seed=w.b, **w)}),
        permutations=lambda w: list(ensemble_permutations(w).values()),
        data=DATASET,
    output:
        rows=ENSEMBLES,
    params:
        permutations=lambda w: " ".join(f"{m}={p}" for m, p in ensemble_permutations(w).items()),
        line_method=lambda w: config["ensembles"]["line_method"],
        config=line_config,
        beta=lambda w: config["ensembles"]["beta"],
        test_examples=lambda w: config["ensembles"]["test_examples"],
        seed=lambda w: w.a,
        labels=network_labels,
        residual=config["search"]["residual"],
    log:
        network_log("compare_ensembles", "{a}-{b}"),
    threads: config["resources"]["threads"]
    resources:
        **TRAIN_JOB,
    conda:
        ENV
    shell:
        command(
            "python -m permlmc --threads {threads} compare-ensembles --model-a {input.model_a}"
            " --model-b {input.model_b} --permutations {params.permutations} --line-method {params.line_method}"
            " --data {input.data}"
            " --config '{params.config}' --beta {params.beta} --seed {params.seed}"
            " --test-examples {params.test_examples} --labels '{params.labels}' --residual {params.residual}",
            EXPECT,
            " --out {output.rows} 2> {log}",
        )


rule compare_layers:
    """Adilova et al. 2024: pair {a}-{b} ({kind}) with one group of parameters interpolated at a time, B after each
    search's permutation."""
    input:
        unpack(layer_endpoints),
        permutations=lambda w: list(layer_permutations(w).values()),
        data=DATASET,
    output:
        rows=LAYERWISE,
    params:
        permutations=lambda w: " ".join(f"{m}={p}" for m, p in layer_permutations(w).items()),
        alphas=config["barrier"]["alphas"],
        train_examples=config["barrier"]["train_examples"],
        test_examples=config["barrier"]["test_examples"],
        group_depth=lambda w: config["layerwise"]["group_depth"],
        labels=lambda w: network_labels(w, {"kind": w.kind, "pair": f"{w.a}-{w.b}"}),
        residual=config["search"]["residual"],
    log:
        network_log("compare_layers", "{kind}", "{a}-{b}"),
    threads: config["resources"]["threads"]
    resources:
        **SEARCH_JOB,
    conda:
        ENV
    shell:
        command(
            "python -m permlmc --threads {threads} compare-layers --model-a {input.model_a} --model-b {input.model_b}"
            " --permutations {params.permutations} --data {input.data} --alphas {params.alphas}"
            " --train-examples {params.train_examples} --test-examples {params.test_examples}"
            " --group-depth {params.group_depth} --labels '{params.labels}' --residual {params.residual}",
            EXPECT,
            " --out {output.rows} 2> {log}",
        )


rule merge_models:
    """Git Re-Basin Alg. 3: seeds 1..{models} merged after MergeMany and after aligning all to the first; cycle
    consistency of pairwise weight matching among the first three."""
    input:
        models=merged_models,
        data=DATASET,
    output:
        rows=MERGE,
    params:
        seed=config["search"]["seed"],
        train_examples=config["barrier"]["train_examples"],
        test_examples=config["barrier"]["test_examples"],
        labels=network_labels,
        residual=config["search"]["residual"],
    log:
        network_log("merge_models", "n{models}"),
    wildcard_constraints:
        models=r"\d+",
    threads: config["resources"]["threads"]
    resources:
        **SEARCH_JOB,
    conda:
        ENV
    shell:
        command(
            "python -m permlmc --threads {threads} merge-models --models {input.models} --data {input.data}"
            " --seed {params.seed} --train-examples {params.train_examples} --test-examples {params.test_examples}"
            " --labels '{params.labels}' --residual {params.residual}",
            EXPECT,
            " --out {output.rows} 2> {log}",
        )


rule compare_spawns:
    """Frankle et al. 2020: two children of seed {seed} spawned after {at} epochs, trained to the end; their barrier
    before and after weight matching."""
    input:
        data=DATASET,
    output:
        rows=SPAWN,
    params:
        config=training_config,
        alphas=config["barrier"]["alphas"],
        train_examples=config["barrier"]["train_examples"],
        test_examples=config["barrier"]["test_examples"],
        labels=network_labels,
    log:
        network_log("compare_spawns", "seed{seed}", "k{at}"),
    wildcard_constraints:
        at=r"\d+",
    threads: config["resources"]["threads"]
    resources:
        **TRAIN_JOB,
    conda:
        ENV
    shell:
        "python -m permlmc --threads {threads} compare-spawns --data {input.data} --arch {wildcards.arch}"
        " --depth {wildcards.depth} --width {wildcards.width} --config '{params.config}' --seed {wildcards.seed}"
        " --at {wildcards.at} --alphas {params.alphas} --train-examples {params.train_examples}"
        " --test-examples {params.test_examples} --labels '{params.labels}' --out {output.rows} 2> {log}"


rule compare_epochs:
    """Seeds {a} and {b} trained independently; their barrier at each of along_training.epochs, before and after
    weight matching."""
    input:
        data=DATASET,
    output:
        rows=ALONG,
    params:
        config=training_config,
        epochs=lambda w: " ".join(str(e) for e in config["along_training"]["epochs"]),
        alphas=config["barrier"]["alphas"],
        train_examples=config["barrier"]["train_examples"],
        test_examples=config["barrier"]["test_examples"],
        labels=network_labels,
    log:
        network_log("compare_epochs", "{a}-{b}"),
    threads: config["resources"]["threads"]
    resources:
        **TRAIN_JOB,
    conda:
        ENV
    shell:
        "python -m permlmc --threads {threads} compare-epochs --data {input.data} --arch {wildcards.arch}"
        " --depth {wildcards.depth} --width {wildcards.width} --config '{params.config}'"
        " --seeds {wildcards.a} {wildcards.b} --epochs {params.epochs} --alphas {params.alphas}"
        " --train-examples {params.train_examples} --test-examples {params.test_examples}"
        " --labels '{params.labels}' --out {output.rows} 2> {log}"
