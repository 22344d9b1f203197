"""The sans-I/O core: decoders, the stream session, the rule registry, options, thresholds.

Nothing here opens a socket, starts a process, reads a clock or imports an I/O library:
callers feed bytes stamped with their arrival time and read events, violations and verdicts.
Standard library, pydantic-core and jsonschema only.
"""
