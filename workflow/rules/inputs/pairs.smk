# Input functions of the pair jobs (pairs.smk).


def endpoint(kind, index):
    """Checkpoint template of one end of a pair: a trained seed or a permuted copy."""
    return fill(CHECKPOINT, seed=index) if kind == "real" else fill(COPY, replica=index)


def network_pairs():
    """(kind, a, b) of every pair of one network: disjoint pairs of trained seeds (S) and of permuted copies (S')."""
    return [(kind, a, b) for kind in ("real", "model") for a, b in pairs(kind)]


def pair_directory(kind, a, b):
    return fill(PAIR, kind=kind, a=a, b=b)


def pair_outputs(name):
    """One file `name` of every pair of a network, for one method (templates of the network and the method)."""
    return [under(pair_directory(*pair), name) for pair in network_pairs()]


def pair_inputs(wildcards):
    """Every endpoint of the network's pairs, and the planted permutations of the S' copies (each search reports
    how many units it maps back to their true place)."""
    models, truths = set(), set()
    for kind, a, b in network_pairs():
        models.update(endpoint(kind, i).format(**wildcards) for i in (a, b))
        if kind == "model":
            truths.update(COPY_PERMUTATION.format(replica=i, **wildcards) for i in (a, b))
    return {"models": sorted(models), "truths": sorted(truths)}


def pair_plan(wildcards):
    """The pairs of the job as JSON for `permlmc search-pairs --pairs`: endpoints, planted permutations, output
    directory and the identity columns of each pair's tables."""
    plan = []
    for kind, a, b in network_pairs():
        item = {"kind": kind, "pair": f"{a}-{b}", "model_a": endpoint(kind, a).format(**wildcards),
                "model_b": endpoint(kind, b).format(**wildcards),
                "out": pair_directory(kind, a, b).format(**wildcards)}
        if kind == "model":
            item["truth"] = [COPY_PERMUTATION.format(replica=i, **wildcards) for i in (a, b)]
        plan.append(item)
    return json.dumps(plan, sort_keys=True)


def search_options(wildcards):
    return json.dumps(search_settings(wildcards.method)[1], sort_keys=True)


def search_examples(wildcards):
    return search_settings(wildcards.method)[2]


def search_algorithm(wildcards):
    return search_settings(wildcards.method)[0]


def sa_schedule(method):
    algorithm, options, _ = search_settings(method)
    return options["schedule"] if algorithm == "sa" else ""


def method_labels(wildcards):
    """Identity columns shared by the tables of every pair of one (network, method) job."""
    labels = {
        "dataset": wildcards.dataset, "arch": wildcards.arch, "depth": int(wildcards.depth),
        "width": int(wildcards.width), "method": wildcards.method, "algorithm": method_variant(wildcards.method)[0],
        "sa_schedule": sa_schedule(wildcards.method),
    }
    return json.dumps(labels, sort_keys=True)
