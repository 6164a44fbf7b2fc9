# Every table rule: the tidy tables gathered from the pair jobs' and training jobs' sidecars, each optional
# study's rows, and the paper's printed tables (after figures.smk: they take the figure options).


rule tabulate_barriers:
    input:
        barriers=all_barriers(),
        models=pair_sidecars(),  # whether each pair's networks trained
    output:
        barriers=TABLES["barriers"],
        curves=TABLES["curves"],
        sa_traces=TABLES["sa_traces"],
        methods=TABLES["method_summary"],
        methods_html=report(REPORT_TABLES["method_summary"], caption="../report/tables/method_summary.rst",
                            category="Summary", labels={"table": "barrier per method"}),
    log:
        "logs/tabulate_barriers.log",
    threads: 1
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "python -m permlmc tabulate-barriers --inputs {input.barriers} --barriers {output.barriers}"
        " --curves {output.curves} --sa-traces {output.sa_traces} --methods {output.methods}"
        " --methods-html {output.methods_html} 2> {log}"


rule tabulate_models:
    input:
        models=[sidecar(path) for path in all_checkpoints()],
    output:
        models=TABLES["models"],
        html=report(REPORT_TABLES["models"], caption="../report/tables/models.rst", category="Summary",
                    labels={"table": "trained networks"}),
    log:
        "logs/tabulate_models.log",
    threads: 1
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "python -m permlmc tabulate-models --inputs {input.models} --out {output.models} --html {output.html} 2> {log}"


rule tabulate_study:
    """One study's rows gathered into results/tables/{study}.csv."""
    input:
        rows=lambda w: study_outputs(w.study),
    output:
        table="results/tables/{study}.csv",
    log:
        "logs/tabulate_study/{study}.log",
    wildcard_constraints:
        study="|".join(STUDY_TABLES),
    threads: 1
    resources:
        **LIGHT_JOB,
    conda:
        ENV
    shell:
        "python -m permlmc tabulate-study --inputs {input.rows} --out {output.table} 2> {log}"


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
            **LIGHT_JOB,
        conda:
            ENV
        shell:
            "python -m permlmc tabulate-paper-table --table {params.table} --source {input.source}"
            " --options '{params.options}' --out {output.table} --html {output.html} 2> {log}"
