# Input functions of the figure jobs (figures.smk).


def figure_outputs(names, template, category, **labels):
    """One named, captioned report output per figure of a figure job."""
    return {
        name: report(fill(template, figure=name), caption=f"../report/captions/{name}.rst", category=category,
                     labels={"figure": name, **labels})
        for name in names
    }


# Figure jobs also rerun when the plotting code changes (the library's figure modules are their inputs).
PLOTTING_CODE = sorted(str(path) for path in Path(workflow.basedir, "src", "permlmc", "plotting").glob("*.py"))


def figure_footer(wildcards):
    """The last lines of every figure caption in the report: the barrier quantity shown and SA's settings."""
    sa = config["search"]["sa"]
    split = wildcards.split if "split" in wildcards.keys() else "train/test"
    return (f"Barrier figures show the {split} {config['figures']['metric']} ({config['figures']['value']}). "
            f"Simulated annealing: schedule \"{sa['schedule']}\", {sa['steps']} steps, energy = midpoint "
            f"{sa['metric']}.")


def study_axes():
    """Per arch: the depth its width study fixes and the width its depth study fixes (a study with one depth
    and several widths is a width study; one width and several depths, a depth study)."""
    fixed_depth, fixed_width = {}, {}
    for s in config["studies"].values():
        if len(s["depths"]) == 1:
            fixed_depth.setdefault(s["arch"], s["depths"][0])
        if len(s["widths"]) == 1 and len(s["depths"]) > 1:
            fixed_width.setdefault(s["arch"], s["widths"][0])
    return fixed_depth, fixed_width


def figure_options(wildcards):
    """Figure options as JSON: the display keys of `figures` plus, per arch, the depth of its width study
    (`depth`) and the width of its depth study (`width`)."""
    options = {k: v for k, v in config["figures"].items() if k not in ("format", "splits")}
    if "split" in wildcards.keys():
        options["split"] = wildcards.split
    options["depth"], options["width"] = study_axes()
    return json.dumps(options, sort_keys=True)
