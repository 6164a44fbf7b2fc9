# Preparing a dataset reads (or downloads) raw files and writes one tensor file: on a cluster it runs where
# Snakemake runs, the login node, which has the internet access compute nodes often lack.
localrules:
    prepare_dataset,
    fetch_data,


rule prepare_dataset:
    output:
        data=DATASET,
        meta=sidecar(DATASET),
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
        "python -m permlmc prepare-dataset --name {wildcards.dataset} --root {params.root} {params.download}"
        " --image-size {params.image_size} --train-subset {params.train_subset}"
        " --subset-seed {params.subset_seed} --out {output.data} 2> {log}"


rule fetch_data:
    """Make the raw files of every dataset of the config readable before a run (`make data`, which `make run`
    calls): Debian's package where apt works as root, else torchvision's download. Only run when named as a
    target; it writes no file of the DAG."""
    params:
        names=used_datasets(),
        root=config["data"]["root"],
    log:
        "logs/fetch_data.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        ENV
    shell:
        "python -m permlmc fetch-data --names {params.names} --root {params.root} 2> {log}"
