rule permute_copies:
    """Our model S' (paper §3.5): K copies of the reference seed, each under its own random permutation."""
    input:
        model=fill(CHECKPOINT, seed=config["reference_seed"]),
        data=DATASET,
    output:
        models=expand(COPY, replica=COPIES, allow_missing=True),
        permutations=expand(COPY_PERMUTATION, replica=COPIES, allow_missing=True),
    params:
        residual=config["search"]["residual"],
        copies=len(COPIES),
        out=lambda wildcards: COPY.format(replica="{copy}", **wildcards),
        permutation_out=lambda wildcards: COPY_PERMUTATION.format(replica="{copy}", **wildcards),
    log:
        network_log("permute_copies"),
    threads: 1
    resources:
        **job_resources(10, gpu=False),
    conda:
        ENV
    shell:
        command(
            "python -m permlmc --threads {threads} permute-copies --model {input.model} --data {input.data}"
            " --copies {params.copies} --residual {params.residual}",
            EXPECT,
            " --out '{params.out}' --permutation-out '{params.permutation_out}' 2> {log}",
        )
