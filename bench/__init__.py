"""Benchmarks of the collector's hot paths: ``python -m bench`` (full) or ``--quick``.

Each case runs its contenders in the same invocation, against the same simulator and the same
frames; every figure is a median over repeated runs. Results go to ``bench/RESULTS.md``.
"""
