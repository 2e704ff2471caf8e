"""The test suite; a package so that benchmarks can import its gradient reference as ``tests.reference``."""
