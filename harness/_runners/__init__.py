"""Runners own the I/O, the processes and the clock: an HTTP stream, a recorded file, a
user's generator in a worker process, or in-process.  Each feeds the core and returns a
``CheckResult``; none imports a report writer.
"""
