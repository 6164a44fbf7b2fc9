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
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "python -m permlmc tabulate-barriers --inputs {input.barriers} --barriers {output.barriers}"
        " --curves {output.curves} --sa-traces {output.sa_traces} --methods {output.methods}"
        " --methods-html {output.methods_html} 2> {log}"


rule tabulate_models:
    input:
        models=[path.replace(".safetensors", ".json") for path in all_checkpoints()],
    output:
        models=TABLES["models"],
        html=report(REPORT_TABLES["models"], caption="../report/tables/models.rst", category="Summary",
                    labels={"table": "trained networks"}),
    log:
        "logs/tabulate_models.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "python -m permlmc tabulate-models --inputs {input.models} --out {output.models} --html {output.html} 2> {log}"
