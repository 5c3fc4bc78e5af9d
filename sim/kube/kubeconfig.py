"""Writing a kubeconfig that points kubectl and the Kubernetes clients at the emulator."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml


def write(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    token: str,
    context: str = "egressgw-dev",
    namespace: str | None = None,
) -> None:
    context_body: dict[str, str] = {"cluster": context, "user": context}
    if namespace:
        context_body["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": context_body}],
        "current-context": context,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
