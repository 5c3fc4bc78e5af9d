"""The chaos suite: a running dev stack (`egressgw dev up`) taken through create, update and
delete while its parts are SIGKILLed or its ARM answers faults, then checked against the Azure
inventory, Temporal's histories (stuck workflows, secrets) and the ARM request log.

Used by `bench/chaos.py` (the full suite, one table) and `tests/e2e/test_chaos_short.py` (a few
runs of each kind in CI). Product code never imports it.
"""
