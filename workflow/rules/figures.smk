rule plot_figure:
    """One figure from the tidy tables (never from checkpoints); options are params, so changing them
    reruns only figure jobs."""
    input:
        tables=all_tables(),
    output:
        figure=report(FIGURE, caption="../report/figure.rst", category="Figures", labels={"figure": "{figure}"}),
    params:
        options=figure_options,
    log:
        "logs/plot_figure/{figure}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "python -m lmc plot --figure {wildcards.figure} --tables {input.tables} --options '{params.options}'"
        " --out {output.figure} 2> {log}"


use rule plot_figure as plot_split_figure with:
    output:
        figure=report(
            SPLIT_FIGURE,
            caption="../report/figure.rst",
            category="Figures ({split} set)",
            labels={"figure": "{figure}", "split": "{split}"},
        ),
    log:
        "logs/plot_figure/{split}/{figure}.log",
