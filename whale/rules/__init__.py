"""The rule language: what a rule is, how it matches an event and how its params are rendered.

One concept per module (imported by their full path; this package re-exports nothing):

- :mod:`whale.rules.model`: :class:`~whale.rules.model.Rule` (match, targets, throttle) and
  :func:`~whale.rules.model.validate_rule`, the one validation of a rule document;
  :mod:`whale.rules.references`: what it checks a rule refers to (the target in its pool's
  catalogue, params against its ``params_schema``, ``data`` fields against the registered schema).
- :mod:`whale.rules.files`: loading rule files and the rules directory.
- :mod:`whale.rules.paths`: JSON field paths (``data.labels["team"]``) and the event context.
- :mod:`whale.rules.operators`: the match operators, a registry keyed by name.
- :mod:`whale.rules.matching`: conditions (``all``/``any``/``not``), compilation and explain.
- :mod:`whale.rules.index`: the indexed :class:`~whale.rules.index.RuleIndex` every stage matches with.
- :mod:`whale.rules.templating`: the Jinja sandbox that renders params;
  :mod:`whale.rules.limits`: its time, step and size bounds.
- :mod:`whale.rules.regex`: the RE2 wrapper behind ``regex`` and the regex filters.
"""
