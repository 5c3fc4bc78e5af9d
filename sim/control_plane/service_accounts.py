"""Components of the dev stack and the tests run as ServiceAccounts with the project's own RBAC
(deploy/rbac/<component>.yaml: a ClusterRole and a Role), exactly as in a cluster: a permission a
component lacks is a 403 in its log and a failing test, never a silent pass through an admin
identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from sim.control_plane.cluster import ControlPlane
from sim.control_plane.kubeconfig import token_kubeconfig, write_kubeconfig

RBAC_DIR: Final = Path(__file__).resolve().parents[2] / "deploy" / "rbac"
# Tokens for long-running dev processes; the API server caps them at its maximum.
TOKEN_DURATION: Final = "8760h"


@dataclass(frozen=True)
class ServiceAccountRoles:
    cluster_roles: tuple[str, ...]
    roles: tuple[str, ...]


def rbac_roles(rbac_file: Path) -> tuple[list[dict[str, Any]], ServiceAccountRoles]:
    """The role objects of an RBAC file and their names, by kind."""
    documents = [d for d in yaml.safe_load_all(rbac_file.read_text()) if d]
    cluster = tuple(d["metadata"]["name"] for d in documents if d["kind"] == "ClusterRole")
    namespaced = tuple(d["metadata"]["name"] for d in documents if d["kind"] == "Role")
    return documents, ServiceAccountRoles(cluster, namespaced)


def bindings(
    namespace: str, service_account: str, roles: ServiceAccountRoles
) -> list[dict[str, Any]]:
    """A ClusterRoleBinding per ClusterRole and a RoleBinding (in `namespace`) per Role."""
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    bound: list[dict[str, Any]] = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{role}:{namespace}:{service_account}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [subject],
        }
        for role in roles.cluster_roles
    ]
    bound += [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{role}:{service_account}", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [subject],
        }
        for role in roles.roles
    ]
    return bound


async def service_account_kubeconfig(
    control_plane: ControlPlane,
    component: str,
    namespace: str,
    path: Path,
    *,
    service_account: str | None = None,
) -> Path:
    """Create (or keep) ServiceAccount `service_account` (default `egressgw-<component>`) in
    `namespace` with the roles of deploy/rbac/<component>.yaml bound to it, and write a
    kubeconfig that authenticates with a fresh token of it."""
    account = service_account or f"egressgw-{component}"
    documents, roles = rbac_roles(RBAC_DIR / f"{component}.yaml")
    namespaced = [
        {**d, "metadata": {**d["metadata"], "namespace": namespace}} if d["kind"] == "Role" else d
        for d in documents
    ]
    service_account_object = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": account, "namespace": namespace},
    }
    manifest = yaml.safe_dump_all(
        [service_account_object, *namespaced, *bindings(namespace, account, roles)]
    )
    await control_plane.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=egressgw-dev",
        "-f",
        "-",
        stdin=manifest,
    )
    token = await control_plane.kubectl(
        "create", "token", account, "-n", namespace, f"--duration={TOKEN_DURATION}"
    )
    assert control_plane.pki is not None
    return write_kubeconfig(
        path, token_kubeconfig(control_plane.server, control_plane.pki.ca, token.strip(), namespace)
    )
