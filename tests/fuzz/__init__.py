"""The differential fuzzer of tests/test_fuzz.py: generator (base, steps, graphs), check, shrink."""
