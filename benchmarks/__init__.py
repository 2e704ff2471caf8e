"""rfcheck's benchmarks, each run from the repository root as ``python -m benchmarks.<name>``.

benchmarks/README.md lists every script and the results file it writes under
benchmarks/results/.
"""
