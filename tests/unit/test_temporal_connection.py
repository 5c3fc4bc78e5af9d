"""How the controller and the agent read their Temporal connection: the address, TLS / mTLS files
and an API key, from flags or Temporal's own environment variables; what they cannot use is
refused with the flag named, and no secret shows in a repr or a description."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from egressgw.temporal_connection import (
    TemporalConnection,
    add_temporal_flags,
    check_address,
    temporal_connection,
)
from sim.control_plane.pki import ensure_client_certificate
from sim.tls import CA_CERT_FILE, ensure_ca


def parse(argv: list[str], environ: dict[str, str] | None = None) -> TemporalConnection:
    parser = argparse.ArgumentParser()
    add_temporal_flags(parser)
    return temporal_connection(parser.parse_args(argv), environ or {})


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ensure_ca(tmp_path)
    ensure_client_certificate(tmp_path, "worker", "egressgw-controller")
    ensure_client_certificate(tmp_path, "other", "someone-else")
    return tmp_path


@pytest.mark.parametrize(
    "address",
    ["localhost:7233", "temporal-frontend.temporal.svc:7233", "[::1]:7233", "10.0.0.5:443"],
)
def test_addresses_the_sdk_can_dial_are_kept(address: str) -> None:
    assert check_address(address) == address


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("temporal", "is not HOST:PORT"),
        ("http://temporal:7233", "is not HOST:PORT"),
        ("temporal:", "is not HOST:PORT"),
        (":7233", "is not HOST:PORT"),
        ("temporal:port", "is not HOST:PORT"),
        ("temporal:0", "not between 1 and 65535"),
        ("temporal:70000", "not between 1 and 65535"),
        ("::1:7233", "[::1]:7233"),
        ("[nope]:7233", "is not HOST:PORT"),
    ],
)
def test_addresses_it_cannot_dial_are_refused_naming_the_flag(address: str, says: str) -> None:
    with pytest.raises(ValueError, match="--temporal-address") as refused:
        parse(["--temporal-address", address])
    assert says in str(refused.value)


def test_plaintext_by_default() -> None:
    connection = parse([])
    assert connection.tls is None and connection.api_key is None
    assert connection.describe() == "localhost:7233, namespace default, plaintext"


def test_mtls_from_files_with_a_private_ca(pki: Path) -> None:
    connection = parse(
        [
            "--temporal-address",
            "temporal.example:7233",
            "--temporal-tls-ca-file",
            str(pki / CA_CERT_FILE),
            "--temporal-tls-cert-file",
            str(pki / "worker.crt"),
            "--temporal-tls-key-file",
            str(pki / "worker.key"),
            "--temporal-tls-server-name",
            "frontend.temporal",
        ]
    )

    assert connection.tls is not None
    assert connection.tls.server_ca == (pki / CA_CERT_FILE).read_bytes()
    assert connection.tls.client_cert == (pki / "worker.crt").read_bytes()
    assert connection.tls.client_key == (pki / "worker.key").read_bytes()
    assert connection.tls.server_name == "frontend.temporal"
    assert "PRIVATE" not in repr(connection)
    assert connection.describe() == (
        "temporal.example:7233, namespace default, mTLS, own CA, server name frontend.temporal"
    )


def test_the_environment_temporal_tools_read_is_honoured(pki: Path) -> None:
    environ = {
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki / "worker.crt"),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki / "worker.key"),
        "TEMPORAL_API_KEY": "key-from-a-secret",
    }
    parser = argparse.ArgumentParser()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        add_temporal_flags(parser)  # flag defaults are read from the environment
    connection = temporal_connection(parser.parse_args([]), environ)

    assert connection.tls is not None and connection.tls.client_cert is not None
    assert connection.api_key == "key-from-a-secret"
    assert "key-from-a-secret" not in repr(connection)
    assert "key-from-a-secret" not in connection.describe()


def test_an_api_key_alone_means_tls_with_the_system_trust_store(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("abc.def.ghi\n")

    connection = parse(["--temporal-api-key-file", str(key_file)])

    assert connection.api_key == "abc.def.ghi"
    assert connection.tls is not None and connection.tls.server_ca is None
    assert connection.describe().endswith("TLS, API key")
    assert parse(["--no-temporal-tls"], {"TEMPORAL_API_KEY": "k"}).tls is None


def test_unusable_tls_and_key_settings_are_refused_naming_the_flag(
    pki: Path, tmp_path: Path
) -> None:
    ca, cert, key = str(pki / CA_CERT_FILE), str(pki / "worker.crt"), str(pki / "worker.key")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    cases = {
        "no such file": ["--temporal-tls-ca-file", str(tmp_path / "missing.pem")],
        "is a directory": ["--temporal-tls-ca-file", str(tmp_path)],
        "holds no PEM certificate": ["--temporal-tls-ca-file", key],
        "mTLS needs both": ["--temporal-tls-cert-file", cert],
        "--temporal-tls-cert-file is not": ["--temporal-tls-key-file", key],
        "holds no unencrypted PEM private key": [
            "--temporal-tls-cert-file",
            cert,
            "--temporal-tls-key-file",
            ca,
        ],
        "is not the key of the certificate": [
            "--temporal-tls-cert-file",
            cert,
            "--temporal-tls-key-file",
            str(pki / "other.key"),
        ],
        "TLS is switched off but --temporal-tls-ca-file": [
            "--no-temporal-tls",
            "--temporal-tls-ca-file",
            ca,
        ],
        "is empty": ["--temporal-api-key-file", str(empty)],
        "--temporal-namespace is empty": ["--temporal-namespace", " "],
    }
    for says, argv in cases.items():
        with pytest.raises(ValueError) as refused:
            parse(argv)
        assert says in str(refused.value), (argv, str(refused.value))
        assert "BEGIN" not in str(refused.value)

    with pytest.raises(ValueError, match="both set"):
        parse(["--temporal-api-key-file", str(empty)], {"TEMPORAL_API_KEY": "k"})
    with pytest.raises(ValueError, match="TEMPORAL_TLS 'maybe'"):
        parse([], {"TEMPORAL_TLS": "maybe"})
