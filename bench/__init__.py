"""Benchmarks: AWS request cost per order, aggregator CPU, cold start, capacity plan.

``python -m bench`` (``make bench``) runs everything offline (moto, in-memory fakes),
prints one markdown report and writes it to ``bench/results.md``. Every comparison runs
this project and the reference design (:mod:`bench.baseline`) in the same process on the
same data; ``docs/bench.md`` describes the method.
"""
