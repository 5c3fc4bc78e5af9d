"""Certificates and keys of the local Kubernetes control plane, signed by the state directory's CA
(sim/tls.py, the same CA the ARM emulator's certificate comes from, so one `ca.pem` trusts both).

What a kubeadm cluster would have: the API server's serving certificate, client certificates for
the admin (group system:masters), the controller manager, the scheduler, the API server's calls to
kubelets and each node (system:node:<name> in system:nodes, which the Node authorizer and the
NodeRestriction admission plugin recognise), a serving certificate for each node's kubelet
endpoint, and the key pair that signs ServiceAccount tokens. Files are reused across restarts.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sim.tls import CA_CERT_FILE, ensure_ca, ensure_server_certificate

_VALIDITY: Final = datetime.timedelta(days=3650)
SERVICE_CLUSTER_IP_RANGE: Final = "10.96.0.0/16"
KUBERNETES_SERVICE_IP: Final = "10.96.0.1"
API_SERVER_HOSTS: Final = (
    "127.0.0.1",
    "localhost",
    KUBERNETES_SERVICE_IP,
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ControlPlanePki:
    ca: Path
    api_server: KeyPair
    admin: KeyPair
    controller_manager: KeyPair
    scheduler: KeyPair
    api_server_kubelet_client: KeyPair
    service_account_key: Path  # private key: signs ServiceAccount tokens
    service_account_public: Path  # public key: verifies them


def _write(path: Path, data: bytes, *, private: bool) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    if private:
        tmp.chmod(0o600)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ensure_client_certificate(
    directory: Path, name: str, common_name: str, organizations: tuple[str, ...] = ()
) -> KeyPair:
    """A client certificate (user `common_name`, groups `organizations`) signed by the CA of
    `directory`; reused when it still names the same subject and the CA did not change."""
    ca_cert, ca_key = ensure_ca(directory)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    subject = x509.Name(
        [
            *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    if cert_path.exists() and key_path.exists():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if existing.issuer == ca_cert.subject and existing.subject == subject:
            return KeyPair(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return KeyPair(cert_path, key_path)


def _ensure_service_account_keys(directory: Path) -> tuple[Path, Path]:
    private, public = directory / "sa.key", directory / "sa.pub"
    if private.exists() and public.exists():
        return private, public
    key = ec.generate_private_key(ec.SECP256R1())
    _write(private, _key_pem(key), private=True)
    _write(
        public,
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        private=False,
    )
    return private, public


def ensure_control_plane_pki(directory: Path) -> ControlPlanePki:
    """Everything the control plane's processes need, in `directory` (the state dir's CA)."""
    directory.mkdir(parents=True, exist_ok=True)
    serving = ensure_server_certificate(directory, "kube-apiserver", API_SERVER_HOSTS)
    sa_key, sa_pub = _ensure_service_account_keys(directory)
    return ControlPlanePki(
        ca=directory / CA_CERT_FILE,
        api_server=KeyPair(serving.cert_path, serving.key_path),
        admin=ensure_client_certificate(
            directory, "kube-admin", "egressgw-admin", ("system:masters",)
        ),
        controller_manager=ensure_client_certificate(
            directory, "kube-controller-manager", "system:kube-controller-manager"
        ),
        scheduler=ensure_client_certificate(directory, "kube-scheduler", "system:kube-scheduler"),
        api_server_kubelet_client=ensure_client_certificate(
            directory,
            "kube-apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            ("system:masters",),
        ),
        service_account_key=sa_key,
        service_account_public=sa_pub,
    )


def ensure_node_certificates(directory: Path, node_name: str) -> tuple[KeyPair, KeyPair]:
    """(client, serving) for a node: its identity towards the API server (system:node:<name>)
    and the certificate of its kubelet endpoint, which the API server calls for logs."""
    client = ensure_client_certificate(
        directory, f"node-{node_name}", f"system:node:{node_name}", ("system:nodes",)
    )
    # The node runtime registers the InternalDNS address `localhost` for its kubelet endpoint
    # (sim/node_runtime/node_object.py), so the API server verifies that name.
    serving = ensure_server_certificate(
        directory, f"kubelet-{node_name}", ("127.0.0.1", "localhost")
    )
    return client, KeyPair(serving.cert_path, serving.key_path)
