# Input functions of the optional studies' rules (studies.smk).


def training_config(wildcards):
    return family_protocol(wildcards.dataset, wildcards.arch)


def group_models(wildcards):
    """The two groups of n models: trained seeds 1..n (S) and permuted copies 1..n (S')."""
    n = range(1, int(wildcards.models) + 1)
    return {"real": [CHECKPOINT.format(seed=s, **wildcards) for s in n],
            "model": [COPY.format(replica=c, **wildcards) for c in n]}


def group_method(wildcards):
    """sa1/sa2 search the group jointly; a pairwise method aligns every model to the first."""
    return wildcards.method if wildcards.method in ("sa1", "sa2") else f"pairwise:{wildcards.method}"


def group_options(wildcards):
    algorithm = "sa" if wildcards.method in ("sa1", "sa2") else wildcards.method
    return json.dumps(search_settings(algorithm)[1], sort_keys=True)


def ensemble_permutations(wildcards):
    return {m: SEARCH.format(kind="real", method=m, **wildcards) for m in config["ensembles"]["methods"]}


def merged_models(wildcards):
    return [CHECKPOINT.format(seed=s, **wildcards) for s in range(1, int(wildcards.models) + 1)]


def layer_permutations(wildcards):
    """B's permutation of the pair after each of the layer-wise study's methods."""
    return {m: SEARCH.format(method=m, **wildcards) for m in config["layerwise"]["methods"]}


def layer_endpoints(wildcards):
    return {"model_a": endpoint(wildcards.kind, wildcards.a).format(**wildcards),
            "model_b": endpoint(wildcards.kind, wildcards.b).format(**wildcards)}


def line_config(wildcards):
    """The network's protocol, for `ensembles.line_epochs` epochs: how the ensembles' lines train."""
    return family_protocol(wildcards.dataset, wildcards.arch, max_epochs=config["ensembles"]["line_epochs"])


def network_labels(wildcards, more=None):
    """The identity columns of a study's rows (the network's, and those of the dict `more`), as JSON for `--labels`.
    (No `**more`: Snakemake would pass a params function with one every job property it has.)"""
    return json.dumps({"dataset": wildcards.dataset, "arch": wildcards.arch, "depth": int(wildcards.depth),
                       "width": int(wildcards.width), **(more or {})}, sort_keys=True)
