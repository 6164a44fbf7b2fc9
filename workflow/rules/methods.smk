# The method grammar: a method name is a search algorithm with at most one option overridden; what a pair job of a
# method is passed (its algorithm, options and search subset).


# A method name is a search algorithm, optionally with one option overridden: `sa-steps1000` is simulated
# annealing with 1,000 steps, `weight_matching-max_iter1` one sweep, `activation_matching-examples100` a
# 100-example subset (the compute sweeps of the SA scaling study).
METHOD_VARIANT = re.compile(r"(?P<algorithm>[a-z_]+?)(?:-(?P<option>[a-z_]+?)(?P<value>\d+))?")


def method_variant(method):
    """(algorithm, option, value) of a method name; option and value are None for a plain algorithm."""
    match = METHOD_VARIANT.fullmatch(method)
    value = match["value"]
    return match["algorithm"], match["option"], None if value is None else int(value)


NEUTRAL_OPTIONS = {"weight_matching": {"statistics": True, "restarts": 1}}
"""Search options passed to a job only when they differ from this value, the library's default: options added
after results exist, so that finished pair jobs keep their params and are not rerun."""


STREAM = "stream"
"""The variant option every method takes: `<method>-stream0` leaves the residual streams in place (the search runs
on the spec without them; permlmc.search.pair.STREAM). A network without residual streams fails at its job."""


def search_settings(method):
    """(algorithm, options, examples) of a method name: the algorithm's config section with the variant's
    override; `examples` (the training subset of data-based searches) is passed separately."""
    algorithm, option, value = method_variant(method)
    options = dict(config["search"].get(algorithm, {}))
    if option is not None:
        options[option] = value
    for key, neutral in NEUTRAL_OPTIONS.get(algorithm, {}).items():
        if options.get(key) == neutral:
            del options[key]
    examples = options.pop("examples", None)
    if algorithm == "sa" and options["schedule"] != "custom":
        options.pop("tmax"), options.pop("tmin")
    return algorithm, options, examples
