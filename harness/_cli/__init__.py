"""The ``stream-harness`` command line: one module per command, registered explicitly in
:mod:`harness._cli.main`, which also holds the shared flags and exit codes."""
