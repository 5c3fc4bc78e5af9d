"""`egressgw status`: every StaticGatewayConfiguration with its phase, egress IP, gateway nodes,
last error and a link to its workflow in the Temporal Web UI (`command.py` runs it,
`sources.py` reads, `report.py` decides and renders)."""
