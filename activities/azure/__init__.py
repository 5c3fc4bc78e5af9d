"""Azure activities: gateway pool resolution and ipConfigs, public IP prefixes, the internal load
balancer. `catalog.azure_activities(network, compute)` lists them for a worker; errors.py is the
one place Azure errors are classified; *_plan.py hold the pure planners."""
