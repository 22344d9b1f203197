r"""Conformance suites, run with pytest against one streaming endpoint or a prefab gateway:

    pytest --pyargs suites --stream-url https://api.example/v1/chat/stream \
        --stream-contract openai-chat --stream-body=@request.json     # one endpoint
    pytest --pyargs suites --stream-url https://staging.example \
        --stream-manifest prefab-manifest.json --junitxml=conformance.xml   # a gateway

    test_stream_contract.py  one endpoint: that URL, requested as given, streams by the contract;
                             a gateway: every streaming function, driven with generated inputs
                             (Hypothesis, --stream-examples per function), streams by the
                             contract; each failure is shrunk to a minimal input, with a
                             reproducer
    test_manifest.py         the manifest is valid, and the gateway serves every function it lists
    test_invalid_inputs.py   inputs the manifest rules out get a 4xx JSON error or one error
                             event -- never a 5xx, a hang, a broken stream or a normal run
    test_resume.py           a gateway's stream dropped half-way resumes after Last-Event-ID
    test_openapi.py          --stream-openapi SPEC: each streaming operation of the document,
                             property-tested by the engine of `stream-harness openapi`

A failing test's message names the rule ids (``progress.bounds``, ``gen.raised``...) that
``stream-harness rules`` explains.  A test that does not apply to the target given is
deselected, and the terminal summary names the option it needs (``suites/_select.py``); with
no target at all nothing runs (pytest's exit code 5), never a vacuous pass.  See
``docs/pytest.md`` for every option.
"""
