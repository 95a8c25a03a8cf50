"""Operator tooling: the hookyard CLI, dead-letter operations, samples, dashboards and alert rules."""
