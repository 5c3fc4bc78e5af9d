"""The emulated network of the dev stack and the network tests: gateway node namespaces behind a
VNet router, an internal load balancer with health probes, and an "internet" echo service.

`plan` decides names and addresses (pure), `arm_view` reads what ARM knows, `load_balancer` and
`probes` hold the load balancer, `echo` the internet's service (run as `python -m
sim.fabric.echo`, which is why this package imports nothing itself), `network` the running
`Fabric`.
"""
