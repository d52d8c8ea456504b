"""YAML workflows: model and validation (:mod:`.model`), event-sourced runs (:mod:`.engine`)."""
