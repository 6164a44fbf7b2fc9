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
        mem_mb=2000,
        runtime=10,
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



# The paper's printed tables, one rule each (`tabulate_sa_scaling`, `tabulate_ensemble_summary`: a report caption
# names one file), from the tidy table each summarises; rerun with the figure options and the plotting code.
for table, source in PAPER_TABLES.items():

    rule:
        name:
            f"tabulate_{table}"
        input:
            source=source,
            code=PLOTTING_CODE,
        output:
            table=f"results/tables/{table}.csv",
            html=report(REPORT_TABLES[table], caption=f"../report/tables/{table}.rst", category="Summary",
                        labels={"table": PAPER_TABLE_LABELS[table]}),
        params:
            table=table,
            options=figure_options,
        log:
            f"logs/tabulate_paper_table/{table}.log",
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            ENV
        shell:
            "python -m permlmc tabulate-paper-table --table {params.table} --source {input.source}"
            " --options '{params.options}' --out {output.table} --html {output.html} 2> {log}"
