"""The ``stream-harness`` command line: one module per command, registered explicitly in
:mod:`harness._cli.main`; the flags and exit codes they share are in :mod:`harness._cli.flags`,
the reading of the configuration in :mod:`harness._cli.config`."""
