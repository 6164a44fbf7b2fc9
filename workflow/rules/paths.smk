# Path templates: the experiment grid lives in paths, so adding a width or a seed to the config adds only the
# jobs whose paths are new. Also how jobs find `python -m permlmc`.


import json
import os
import re
import shlex
import sys
from importlib.util import find_spec
from pathlib import Path

# Where every `python -m permlmc` job puts its tensors (cpu, cuda, auto); an environment setting, not a parameter,
# so moving a study to a GPU does not invalidate its finished results.
DEVICE = f"export LMC_DEVICE={config['resources']['device']}; "

if find_spec("permlmc") is not None:
    # Jobs call `python -m permlmc`: use the interpreter running Snakemake, where permlmc is installed, even when its
    # environment is not activated (e.g. `.venv/bin/snakemake`). Under `--sdm conda` permlmc comes from envs/.
    shell.prefix(f'set -euo pipefail; export PATH="{os.path.dirname(sys.executable)}:$PATH"; {DEVICE}')
else:
    shell.prefix(f"set -euo pipefail; {DEVICE}")

ENV = "../../envs/lmc.yaml"


def job_resources(runtime, *, gpu=True):
    """What a job that runs networks asks a scheduler for: the config's memory (`resources.mem_mb`), `runtime`
    minutes and, with `gpu`, the config's GPUs (`resources.gpu`)."""
    asked = {"mem_mb": config["resources"]["mem_mb"], "runtime": runtime}
    return {**asked, "gpu": config["resources"]["gpu"]} if gpu else asked


SEARCH_JOB = job_resources(config["resources"]["search_runtime"])
"""A job that searches or measures barriers."""
TRAIN_JOB = job_resources(config["resources"]["train_runtime"])
"""A job that trains networks."""
LIGHT_JOB = {"mem_mb": 2000, "runtime": 10}
"""A job that gathers tables or draws figures."""


def under(*parts):
    return "/".join(parts)


def fill(template, **values):
    """`template` with the fields named in `values` filled in and every other field left for Snakemake to match
    (`fill(CHECKPOINT, seed=1)`: seed 1 of any network)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m[1]]) if m[1] in values else m[0], template)


def sidecar(path):
    """The JSON sidecar beside a `.safetensors` file (permlmc.artifacts.files.sidecar_path)."""
    return path.removesuffix(".safetensors") + ".json"


DATASET = "resources/datasets/{dataset}.safetensors"
NETWORK_NAME = "{arch}-d{depth}-w{width}"
"""A network's name: model name, depth and width (permlmc.models.Architecture.name)."""
NETWORK = under("{dataset}", NETWORK_NAME)
"""The network id: its folder under results/ and logs/ (`network_id` fills it, `network_fields` reads it back)."""
NET = under("results", NETWORK)
JOB_NETWORK_NAME = fill(NETWORK_NAME, **{field: f"{{wildcards.{field}}}" for field in ("arch", "depth", "width")})
"""NETWORK_NAME as a job's shell command spells it (from its wildcards)."""
EXPECT = f" --expect {JOB_NETWORK_NAME}"
"""A job's check that every checkpoint it reads is of its network (the verbs' --expect; `command` puts it in)."""


def command(*parts):
    """A job's shell command: `parts` joined, so that a rule can put EXPECT between two pieces of its template."""
    return "".join(parts)

CHECKPOINT = under(NET, "seed{seed}", "model.safetensors")
SPEC = under(NET, "spec.json")
COPY = under(NET, "permuted", "copy{replica}", "model.safetensors")
COPY_PERMUTATION = under(NET, "permuted", "copy{replica}", "permutation.safetensors")
PAIR = under(NET, "pairs", "{kind}", "{a}-{b}", "{method}")
SEARCH = under(PAIR, "permutation.safetensors")
BARRIER = under(PAIR, "barrier.json")
CURVE = under(PAIR, "curve.csv")
COPIES = list(range(1, config["permuted_copies"] + 1))
TABLES = {
    name: f"results/tables/{name}.csv" for name in ("barriers", "curves", "sa_traces", "models", "method_summary")
}
PAPER_TABLES = {"sa_scaling": TABLES["barriers"], "ensemble_summary": "results/tables/ensembles.csv"}
"""The paper's printed tables (Table 2, Table 3) -> the tidy table each is derived from
(permlmc.plotting.paper_tables)."""
PAPER_TABLE_LABELS = {"sa_scaling": "Table 2: SA barrier per steps", "ensemble_summary": "Table 3: ensembles"}
REPORT_TABLES = {name: f"results/tables/{name}.html" for name in ("method_summary", "models", *PAPER_TABLES)}
"""The tables the report shows (HTML renderings of their CSV files)."""
FIGURE = f"results/figures/{{figure}}.{config['figures']['format']}"
SPLIT_FIGURE = f"results/figures/{{split}}/{{figure}}.{config['figures']['format']}"

MODEL_NAME = r"[a-z0-9]+(?:_[a-z]+)?"
"""A model name: a family, or a family and `_` and a normalisation (`vgg_ln`; permlmc.model_names)."""

wildcard_constraints:
    dataset=r"[a-z0-9_]+(-noise\d+)?",
    arch=MODEL_NAME,
    depth=r"\d+",
    width=r"\d+",
    seed=r"\d+",
    replica=r"\d+",
    a=r"\d+",
    b=r"\d+",
    kind="real|model",
    method=r"[a-z_]+(-[a-z_]+\d+)?",
    figure="[a-z_]+",
    split="train|test",



def network_log(rule, *parts):
    """The log of `rule`'s job on one network: logs/<rule>/<network id>[/<parts>].log."""
    return under("logs", rule, NETWORK, *parts) + ".log"


# Studies spanning many models per job (optional config sections; each absent section adds nothing).
ALL_PAIRS = under(NET, "all_pairs", "{method}.json")
THEOREM = "results/theorem/{method}.json"
GROUP = under(NET, "groups", "{kind}", "n{models}", "{method}.json")
ENSEMBLES = under(NET, "ensembles", "{a}-{b}.json")
LAYERWISE = under(NET, "layerwise", "{kind}", "{a}-{b}.json")
MERGE = under(NET, "merge_many", "n{models}.json")
SPAWN = under(NET, "spawning", "seed{seed}", "k{at}.json")
ALONG = under(NET, "along_training", "{a}-{b}.json")
STUDY_TABLES = {name: f"results/tables/{name}.csv" for name in
                ("all_pairs", "theorem", "groups", "ensembles", "layerwise", "merge_many",
                 "spawning", "along_training")}
STUDY_FIGURES = {"all_pairs": "all_pairs", "theorem": "theorem_rate", "groups": "group_searches",
                 "ensembles": "ensembles", "layerwise": "layerwise_barriers",
                 "merge_many": "merge_many", "spawning": "barrier_vs_spawn", "along_training": "barrier_vs_epoch"}
