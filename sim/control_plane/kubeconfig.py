"""Kubeconfig files for the local control plane: certificate users (admin, controller manager,
scheduler, nodes) and ServiceAccount token users (the controller, the agents)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CLUSTER = "egressgw-dev"


def _config(server: str, ca: Path, user: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER,
                "cluster": {"server": server, "certificate-authority": str(ca.resolve())},
            }
        ],
        "users": [{"name": CLUSTER, "user": user}],
        "contexts": [
            {
                "name": CLUSTER,
                "context": {"cluster": CLUSTER, "user": CLUSTER, "namespace": namespace},
            }
        ],
        "current-context": CLUSTER,
    }


def certificate_kubeconfig(
    server: str, ca: Path, cert: Path, key: Path, namespace: str = "default"
) -> dict[str, Any]:
    user = {"client-certificate": str(cert.resolve()), "client-key": str(key.resolve())}
    return _config(server, ca, user, namespace)


def token_kubeconfig(server: str, ca: Path, token: str, namespace: str) -> dict[str, Any]:
    return _config(server, ca, {"token": token}, namespace)


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    """Written atomically with mode 0600: a token kubeconfig is a credential."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
