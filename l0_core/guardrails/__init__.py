"""Guardrails: the rule protocol (``rule``), the built-in rules (``rules``), the
presets (``presets``) and drift detection (``drift``, ``drift_detector``)."""
