"""Mirror's benchmarks (SPEC section 12): ``python -m tests.bench.run`` / ``make bench``.

Never collected by pytest (``norecursedirs`` lists ``tests/bench`` and no file
here starts with ``test_``). Kept free of imports so that the load generator
subprocesses (``python -m tests.bench.load``) start quickly.
"""
