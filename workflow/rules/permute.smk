rule permute_copy:
    """Our model S' (paper §3.5): copy {copy} of the reference seed under a random permutation."""
    input:
        model=CHECKPOINT.replace("{seed}", str(config["reference_seed"])),
        data=DATASET,
    output:
        model=COPY,
        meta=COPY.replace(".safetensors", ".json"),
        permutation=COPY_PERMUTATION,
        permutation_meta=COPY_PERMUTATION.replace(".safetensors", ".json"),
    log:
        "logs/permute_copy/{dataset}/{arch}-d{depth}-w{width}/copy{replica}.log",
    threads: 1
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=10,
    conda:
        ENV
    shell:
        "python -m lmc --threads {threads} permute --model {input.model} --data {input.data} --copy {wildcards.replica}"
        " --out {output.model} --permutation-out {output.permutation} 2> {log}"
