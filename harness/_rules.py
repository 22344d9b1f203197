"""Compatibility name: the rule catalog's types live in :mod:`harness._core.rules`."""

from harness._core.rules import Severity, Violation

__all__ = ["Severity", "Violation"]
