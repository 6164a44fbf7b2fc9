# lmc: linear mode connectivity and permutation invariance (Entezari et al., ICLR 2022).
# Usage: snakemake --cores all [--configfile config/digits.yaml]. All logic lives in src/permlmc.
from snakemake.utils import min_version, validate

min_version("9.0")


# config.yaml is the default; a --configfile replaces it rather than being merged into it, so a study
# config never inherits the default's grid.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/validate.smk"


report: "workflow/report/workflow.rst"


include: "workflow/rules/paths.smk"
include: "workflow/rules/methods.smk"
include: "workflow/rules/grid.smk"
include: "workflow/rules/config.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/permute.smk"
include: "workflow/rules/pairs.smk"
include: "workflow/rules/studies.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tables.smk"


rule all:
    input:
        tables=all_tables(),
        paper_tables=paper_tables(),
        figures=all_figures(),
        specs=all_specs(),
    default_target: True
