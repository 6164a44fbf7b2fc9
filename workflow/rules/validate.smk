# The config checked against its schemas before anything else: the top level, then each section schema (each
# validates the whole config and owns some sections, whose defaults it fills). Keys renamed by a release fail first
# with the new name given (schema validation would only call the old key unexpected).
RENAMED_KEYS = {
    ("barrier", "batched"): "barrier.stacked",
    ("barrier", "calibrated"): "barrier.temperature_scaled",
}
SCHEMAS = ["config", "training", "search", "studies"]

for (section, old), new in RENAMED_KEYS.items():
    if old in (config.get(section) or {}):
        raise ValueError(f"config key '{section}.{old}' is now '{new}': rename it in your config file")

for schema in SCHEMAS:
    validate(config, f"../schemas/{schema}.schema.yaml", set_default=True)
