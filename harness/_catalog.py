"""Compatibility name: the complete rule catalog is :mod:`harness._contracts.catalog`."""

from harness._contracts.catalog import all_rules, load_all, rules_markdown

__all__ = ["all_rules", "load_all", "rules_markdown"]
