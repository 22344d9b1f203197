"""Contracts: the contract file format, the engine that checks a stream against one, the
built-in contracts and the prefab manifest.  Built on :mod:`harness._core` only.

This is the one package that knows event type names: everything above asks a contract what
its types mean (content, failure, terminal, restart, progress) instead of naming them.
"""
