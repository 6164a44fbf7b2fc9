# Figures from the tidy tables (never from checkpoints), one job per split and one for the rest: options are
# params and the plotting modules inputs, so changing either reruns only figure jobs.
include: "inputs/figures.smk"


rule plot_figures:
    """The figures drawn once (both splits or none) and those of the optional studies; `plot_split_figures` draws
    the barrier figures of one split (the paper's train figures; App. E.4/E.5's test ones)."""
    input:
        tables=all_tables(),
        code=PLOTTING_CODE,
    output:
        **figure_outputs(whole_figures(), FIGURE, "Figures"),
    params:
        figures=" ".join(whole_figures()),
        options=figure_options,
        footer=figure_footer,
    log:
        "logs/plot_figures/all.log",
    threads: 1
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "python -m permlmc plot-figures --figure {params.figures} --tables {input.tables} --options '{params.options}'"
        " --out {output} 2> {log}"


use rule plot_figures as plot_split_figures with:
    output:
        **figure_outputs(split_figures(), SPLIT_FIGURE, "Figures ({split} set)", split="{split}"),
    params:
        figures=" ".join(split_figures()),  # the other params are plot_figures' own
    log:
        "logs/plot_figures/{split}.log",
