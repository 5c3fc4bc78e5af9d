"""How the long-running processes (controller, agent) reach Temporal: the address, the namespace,
TLS / mTLS and an API key, from flags or the environment Temporal's own tools read
(`TEMPORAL_ADDRESS`, `TEMPORAL_TLS_*`, `TEMPORAL_API_KEY`).

Everything is checked before any connection is tried, so that a setting the process can never use
(an address that is not HOST:PORT, a certificate file that is missing or is not PEM, a key that
does not belong to its certificate) stops it at once with a message naming the flag, instead of
a connection retried forever. An unreachable server is not such a setting: the processes wait
for it (they may start before it).

Secrets come from files or from the environment (a Kubernetes Secret), never from a flag value
(flags show in `ps` and in the pod spec); the API key and the client key are kept out of `repr`
and out of every log line (`describe` says only which kinds of credentials are in use).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

DEFAULT_TEMPORAL_ADDRESS: Final = "localhost:7233"
DEFAULT_TEMPORAL_NAMESPACE: Final = "default"

# The variables Temporal's CLI and SDKs read (temporalio.envconfig), so one environment serves
# `temporal` and `egressgw` alike.
ENV_ADDRESS: Final = "TEMPORAL_ADDRESS"
ENV_NAMESPACE: Final = "TEMPORAL_NAMESPACE"
ENV_TLS: Final = "TEMPORAL_TLS"
ENV_TLS_CA: Final = "TEMPORAL_TLS_SERVER_CA_CERT_PATH"
ENV_TLS_CERT: Final = "TEMPORAL_TLS_CLIENT_CERT_PATH"
ENV_TLS_KEY: Final = "TEMPORAL_TLS_CLIENT_KEY_PATH"
ENV_TLS_SERVER_NAME: Final = "TEMPORAL_TLS_SERVER_NAME"
ENV_API_KEY: Final = "TEMPORAL_API_KEY"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True)
class TemporalTls:
    """TLS towards the Temporal frontend. No CA: the system's trust store (Temporal Cloud)."""

    server_ca: bytes | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = field(default=None, repr=False)
    server_name: str | None = None


@dataclass(frozen=True)
class TemporalConnection:
    address: str = DEFAULT_TEMPORAL_ADDRESS
    namespace: str = DEFAULT_TEMPORAL_NAMESPACE
    tls: TemporalTls | None = None  # None: plaintext
    api_key: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """For logs: where, and which kinds of credentials; never their values."""
        parts = [f"{self.address}, namespace {self.namespace}"]
        if self.tls is None:
            parts.append("plaintext")
        else:
            parts.append("mTLS" if self.tls.client_cert is not None else "TLS")
            if self.tls.server_ca is not None:
                parts.append("own CA")
            if self.tls.server_name:
                parts.append(f"server name {self.tls.server_name}")
        if self.api_key is not None:
            parts.append("API key")
        return ", ".join(parts)


def add_temporal_flags(parser: argparse.ArgumentParser) -> None:
    """The flags; their defaults come from the environment, checked by `temporal_connection`."""
    environ = os.environ
    group = parser.add_argument_group("Temporal connection")
    group.add_argument(
        "--temporal-address",
        default=environ.get(ENV_ADDRESS, DEFAULT_TEMPORAL_ADDRESS),
        metavar="HOST:PORT",
        help=f"Temporal frontend (default: ${ENV_ADDRESS} or {DEFAULT_TEMPORAL_ADDRESS})",
    )
    group.add_argument(
        "--temporal-namespace",
        default=environ.get(ENV_NAMESPACE, DEFAULT_TEMPORAL_NAMESPACE),
        metavar="NS",
        help=f"Temporal namespace (default: ${ENV_NAMESPACE} or {DEFAULT_TEMPORAL_NAMESPACE})",
    )
    group.add_argument(
        "--temporal-tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"connect with TLS (default: ${ENV_TLS}; on when a CA, client certificate, server "
        "name or API key is given, else off)",
    )
    group.add_argument(
        "--temporal-tls-ca-file",
        type=Path,
        default=_path(environ.get(ENV_TLS_CA)),
        metavar="FILE",
        help=f"PEM CA bundle the server's certificate must chain to (default: ${ENV_TLS_CA}; "
        "none: the system's trust store)",
    )
    group.add_argument(
        "--temporal-tls-cert-file",
        type=Path,
        default=_path(environ.get(ENV_TLS_CERT)),
        metavar="FILE",
        help=f"PEM client certificate for mTLS (default: ${ENV_TLS_CERT})",
    )
    group.add_argument(
        "--temporal-tls-key-file",
        type=Path,
        default=_path(environ.get(ENV_TLS_KEY)),
        metavar="FILE",
        help=f"PEM private key of --temporal-tls-cert-file (default: ${ENV_TLS_KEY})",
    )
    group.add_argument(
        "--temporal-tls-server-name",
        default=environ.get(ENV_TLS_SERVER_NAME) or None,
        metavar="NAME",
        help="name the server's certificate must carry, when it is not the address's host "
        f"(default: ${ENV_TLS_SERVER_NAME})",
    )
    group.add_argument(
        "--temporal-api-key-file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"file holding an API key (Temporal Cloud); ${ENV_API_KEY} may hold it instead. "
        "Never given as a flag value",
    )


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def check_address(text: str) -> str:
    """HOST:PORT (an IPv6 host in brackets), as the SDK dials it; ValueError otherwise."""
    hint = (
        f"--temporal-address {text!r} is not HOST:PORT "
        "(e.g. temporal-frontend.temporal.svc:7233 or my-ns.a1b2c.tmprl.cloud:7233)"
    )
    if "://" in text or "/" in text or any(c.isspace() for c in text):
        raise ValueError(hint)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(hint)
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"--temporal-address {text!r}: port {port} is not between 1 and 65535")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(hint)
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(hint) from None
    elif ":" in host:
        raise ValueError(f"{hint}; write an IPv6 address in brackets: [{host}]:{port}")
    return text


def _flag_bool(value: bool | None, environ: Mapping[str, str]) -> bool | None:
    if value is not None:
        return value
    text = environ.get(ENV_TLS)
    if text is None:
        return None
    if text.strip().lower() in _TRUE:
        return True
    if text.strip().lower() in _FALSE:
        return False
    raise ValueError(f"${ENV_TLS} {text!r} is neither true nor false")


def _read(flag: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{flag} {path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{flag} {path} is a directory; name a file") from None
    except PermissionError:
        raise ValueError(f"{flag} {path}: not readable by this process") from None


def _certificates(flag: str, path: Path) -> bytes:
    # cryptography is loaded only when a certificate is given.
    from cryptography import x509

    data = _read(flag, path)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError(f"{flag} {path} holds no PEM certificate") from None
    if not certificates:
        raise ValueError(f"{flag} {path} holds no PEM certificate")
    return data


def _client_pair(cert_path: Path, key_path: Path) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    cert = _certificates("--temporal-tls-cert-file", cert_path)
    key = _read("--temporal-tls-key-file", key_path)
    try:
        private = load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        # The key's bytes never reach the message.
        raise ValueError(
            f"--temporal-tls-key-file {key_path} holds no unencrypted PEM private key"
        ) from None
    leaf = x509.load_pem_x509_certificates(cert)[0]
    spki = Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        raise ValueError(
            f"--temporal-tls-key-file {key_path} is not the key of the certificate in "
            f"--temporal-tls-cert-file {cert_path}"
        )
    return cert, key


def _api_key(path: Path | None, environ: Mapping[str, str]) -> str | None:
    from_env = environ.get(ENV_API_KEY, "").strip()
    if path is None:
        return from_env or None
    if from_env:
        raise ValueError(f"--temporal-api-key-file and ${ENV_API_KEY} are both set; keep one")
    key = _read("--temporal-api-key-file", path).decode("utf-8", "replace").strip()
    if not key:
        raise ValueError(f"--temporal-api-key-file {path} is empty")
    if any(c.isspace() for c in key):
        raise ValueError(f"--temporal-api-key-file {path} holds more than one word")
    return key


def temporal_connection(args: argparse.Namespace, environ: Mapping[str, str]) -> TemporalConnection:
    """The parsed flags, checked, with files read; ValueError names what is wrong."""
    address = check_address(args.temporal_address.strip())
    namespace = args.temporal_namespace.strip()
    if not namespace:
        raise ValueError("--temporal-namespace is empty")
    api_key = _api_key(args.temporal_api_key_file, environ)
    cert_file, key_file = args.temporal_tls_cert_file, args.temporal_tls_key_file
    if (cert_file is None) != (key_file is None):
        given, missing = (
            ("--temporal-tls-cert-file", "--temporal-tls-key-file")
            if key_file is None
            else ("--temporal-tls-key-file", "--temporal-tls-cert-file")
        )
        raise ValueError(f"{given} is set but {missing} is not: mTLS needs both")
    server_name = (args.temporal_tls_server_name or "").strip() or None
    asked = _flag_bool(args.temporal_tls, environ)
    implied = [
        flag
        for flag, value in (
            ("--temporal-tls-ca-file", args.temporal_tls_ca_file),
            ("--temporal-tls-cert-file", cert_file),
            ("--temporal-tls-server-name", server_name),
        )
        if value is not None
    ]
    if asked is False and implied:
        raise ValueError(f"TLS is switched off but {', '.join(implied)} asks for it")
    if asked is False or (asked is None and not implied and api_key is None):
        return TemporalConnection(address, namespace, None, api_key)
    server_ca = (
        _certificates("--temporal-tls-ca-file", args.temporal_tls_ca_file)
        if args.temporal_tls_ca_file is not None
        else None
    )
    client_cert = client_key = None
    if cert_file is not None and key_file is not None:
        client_cert, client_key = _client_pair(cert_file, key_file)
    tls = TemporalTls(server_ca, client_cert, client_key, server_name)
    return TemporalConnection(address, namespace, tls, api_key)
