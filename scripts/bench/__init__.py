"""``make bench``: each hot path measured beside its peer in the same run.

A benchmark is a function registered with :func:`harness.benchmark`; it returns one or more
:class:`harness.Result` rows (ours vs one peer, same data, same process). The harness writes
``var/bench/results.json`` and ``var/bench/results.md``.
"""
