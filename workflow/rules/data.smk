# Preparing a dataset reads (or downloads) raw files and writes one tensor file: on a cluster it runs where
# Snakemake runs, the login node, which has the internet access compute nodes often lack.
localrules:
    prepare_dataset,


rule prepare_dataset:
    output:
        data=DATASET,
        meta=DATASET.replace(".safetensors", ".json"),
    params:
        root=config["data"]["root"],
        download="--download" if config["data"]["download"] else "",
        image_size=config["data"]["image_size"],
        train_subset=config["data"]["train_subset"],
        subset_seed=config["data"]["subset_seed"],
    log:
        "logs/prepare_dataset/{dataset}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        ENV
    shell:
        "python -m lmc prepare-dataset --name {wildcards.dataset} --root {params.root} {params.download}"
        " --image-size {params.image_size} --train-subset {params.train_subset}"
        " --subset-seed {params.subset_seed} --out {output.data} 2> {log}"
