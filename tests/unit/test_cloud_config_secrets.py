"""The client secret and certificate password never show up in reprs, errors or logs."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from egressgw.cloud_config import (
    CloudConfigError,
    Secret,
    load_cloud_config,
    parse_cloud_config,
    resolve_auth,
)

SECRET = "Zx9~unlikely.Secret_Value"
PASSWORD = "Pfx-Password#2718"
SUB = "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"
BASE: dict[str, Any] = {
    "cloud": "AzurePublicCloud",
    "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "subscriptionId": SUB,
    "aadClientId": "3c1d5e7f-0a2b-4c6d-8e0f-1a2b3c4d5e6f",
    "aadClientSecret": SECRET,
    "resourceGroup": "egressgw-rg",
    "location": "westeurope",
    "vnetName": "aks-vnet",
    "subnetName": "gateway-subnet",
}


def assert_hidden(text: str) -> None:
    assert SECRET not in text
    assert PASSWORD not in text


def test_repr_str_and_format_hide_secrets(tmp_path: Path) -> None:
    cert = tmp_path / "sp.pfx"
    cert.write_bytes(b"x")
    document = BASE | {"aadClientCertPath": str(cert), "aadClientCertPassword": PASSWORD}
    loaded = parse_cloud_config(json.dumps(document), "azure.json", environ={})
    cfg = loaded.config
    auth = resolve_auth(cfg, {})
    for shown in (
        repr(loaded),
        str(cfg),
        f"{cfg}",
        f"{cfg.aad_client_secret}",
        "%s %r" % (cfg.aad_client_cert_password, cfg.aad_client_secret),  # noqa: UP031 - logging style
        repr(auth),
        auth.describe(),
        repr(dataclasses.asdict(cfg)),
    ):
        assert_hidden(shown)
    assert "Secret('***')" in repr(cfg)
    # ...while the code that needs them still gets them.
    assert cfg.aad_client_secret.reveal() == SECRET
    assert cfg.aad_client_cert_password.reveal() == PASSWORD
    assert auth.client_secret.reveal() == SECRET


def test_empty_secrets_are_falsy_and_say_so() -> None:
    assert not Secret("")
    assert Secret("x")
    assert repr(Secret("")) == "Secret('')"


@pytest.mark.parametrize(
    "document",
    [
        # a wrong type on the secret itself: the value is not echoed
        BASE | {"aadClientSecret": 31415926535},
        BASE | {"aadClientCertPassword": 27182818},
        # errors elsewhere in a file that holds secrets
        BASE | {"aadClientCertPassword": PASSWORD},
        BASE | {"cloud": "Nope", "aadClientCertPassword": PASSWORD},
        {k: v for k, v in BASE.items() if k != "aadClientId"} | {"aadClientCertPassword": PASSWORD},
    ],
)
def test_errors_never_quote_secrets(document: dict[str, Any]) -> None:
    with pytest.raises(CloudConfigError) as caught:
        parse_cloud_config(json.dumps(document), "azure.json", environ={})
    message = str(caught.value)
    assert_hidden(message)
    assert "31415926535" not in message and "27182818" not in message


@pytest.mark.parametrize(
    "text",
    [
        # YAML parsers like to quote the offending line; ours must not.
        f'cloud: AzurePublicCloud\naadClientSecret: "{SECRET}\nlocation: westeurope\n',
        f"cloud: AzurePublicCloud\naadClientSecret: {SECRET}: {PASSWORD}\n",
        f"aadClientCertPassword: [{PASSWORD}\n",
        # and JSON
        f'{{"aadClientSecret": "{SECRET}", "aadClientCertPassword": "{PASSWORD}",,}}',
    ],
)
def test_parse_errors_never_quote_the_line(text: str) -> None:
    with pytest.raises(CloudConfigError) as caught:
        parse_cloud_config(text, "azure.yaml", environ={})
    assert_hidden(str(caught.value))


def test_the_environment_secret_is_hidden_too() -> None:
    document = {k: v for k, v in BASE.items() if k != "aadClientSecret"}
    env = {"AZURE_CLIENT_SECRET": SECRET}
    cfg = parse_cloud_config(json.dumps(document), "azure.json", environ=env).config
    auth = resolve_auth(cfg, env)
    assert_hidden(repr(auth) + auth.describe())
    assert auth.client_secret.reveal() == SECRET


def test_loading_logs_a_summary_without_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "azure.json"
    cert = tmp_path / "sp.pem"
    cert.write_text("x")
    path.write_text(
        json.dumps(
            BASE
            | {
                "aadClientCertPath": str(cert),
                "aadClientCertPassword": PASSWORD,
                "someUnknownKey": SECRET,  # an unknown key's value is not echoed either
            }
        )
    )
    with caplog.at_level(logging.DEBUG):
        load_cloud_config(path, environ={})
    assert "loaded cloud config" in caplog.text
    assert "someUnknownKey" in caplog.text
    assert_hidden(caplog.text)
