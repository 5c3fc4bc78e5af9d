"""`egressgw plan -f sgc.yaml`: the Azure and node changes that applying StaticGatewayConfigurations
would make, computed by the workflows' own decisions and planners over Azure as read, writing
nothing (`command.py` runs it; `documents.py` checks the manifest as the CRD does;
`azure_plan.py` reads and plans; `changes.py` holds the result; `render.py` prints it)."""
