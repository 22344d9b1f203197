r"""Conformance suites for a streaming gateway, run with pytest against any target:

    pytest --pyargs suites --stream-url https://staging.example \
        --stream-manifest prefab-manifest.json --junitxml=conformance.xml

    test_manifest.py         the manifest is valid, and the target serves every function it lists
    test_stream_contract.py  every streaming function, driven with generated inputs (Hypothesis,
                             --stream-examples per function), streams by the contract; each
                             failure is shrunk to a minimal input, with a reproducer
    test_invalid_inputs.py   inputs the manifest rules out get a 4xx JSON error or one error
                             event -- never a 5xx, a hang, a broken stream or a normal run
    test_resume.py           a stream dropped half-way resumes after Last-Event-ID

A failing test's message names the rule ids (``progress.bounds``, ``gen.raised``...) that
``stream-harness rules`` explains.  Without ``--stream-url`` / ``--stream-manifest`` the tests
are skipped, with the reason.  Options: ``--stream-contract``, ``--stream-header 'K: V'``,
``--stream-timeout``, ``--stream-examples``, ``--stream-seed``, ``--stream-database``.
"""
