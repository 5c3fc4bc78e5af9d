"""Jaeger v2, the trace receiver of the trace tests and `egressgw dev up --traces` (server.py),
and a client of its query API that prints a trace as a tree (query.py)."""
