"""Built-in device profiles, one YAML file per device."""
