"""Property-based testing: Hypothesis strategies from a manifest or a schema, examples run
through the runners, shrunk failures with reproducers."""
