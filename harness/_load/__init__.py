"""Load testing streaming endpoints with Locust (``stream-harness load``, ``loadtests/``).

Nothing here is imported by ``harness`` itself: the modules that need gevent or Locust
(``_client``, ``user``, ``locustfile``) are imported only by processes that run under Locust,
because importing Locust monkey-patches the standard library.  ``_wire``, ``_metrics``,
``_verdict`` and ``_stream``'s logic are sans-I/O and tested without either.

    user.py        SSEUser, ArrivalUser (open loop), the metrics plumbing (Locust events,
                   HDR histograms merged across workers), the verdict at the end
    locustfile.py  what ``stream-harness load`` hands to ``locust -f``
    _runner.py     runs ``locust`` as a subprocess, reads the verdict, applies exit codes
"""
