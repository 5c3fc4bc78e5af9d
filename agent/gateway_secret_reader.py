"""Reads a gateway's WireGuard private key from its Secret, the only place it is kept (activity
inputs carry a SecretRef and the public key, never the private key).

Layout as the controller writes it (activities/kube/gateway_keys.py, upstream's): the Secret's
`data.PrivateKey` is base64 of the base64 key string, so it is decoded twice. The key must derive
the public key the workflow sent: a mismatch means the Secret changed under the configuration, and
building a gateway with it would silently cut off every pod that peers with the old key.

No error message, repr or log line carries key material.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from agent.wireguard_keys import KEY_LENGTH, check_private_key, parse_public_key, public_key_of
from contracts import kube_names
from contracts.node_io import SecretRef
from kubeclient.errors import ApiErrorKind, api_failure


class GatewaySecretError(RuntimeError):
    """The private key could not be had; `retryable` says whether a later attempt may succeed."""

    retryable = False


class GatewaySecretMissingError(GatewaySecretError):
    """The Secret does not exist (yet): the controller may still be creating it."""

    retryable = True


class GatewaySecretUnreadableError(GatewaySecretError):
    """The API server did not hand the Secret over (unavailable, throttled, forbidden)."""

    retryable = True


class GatewaySecretInvalidError(GatewaySecretError):
    """The Secret holds no usable key, or one that does not match the expected public key."""


def private_key_from_data(data: Mapping[str, str] | None, where: str) -> bytes:
    """The 32 raw key bytes in a Secret's data; GatewaySecretInvalidError naming only `where`
    and the field otherwise."""
    field = f"{where} data.{kube_names.SECRET_PRIVATE_KEY}"
    encoded = (data or {}).get(kube_names.SECRET_PRIVATE_KEY)
    if not encoded:
        raise GatewaySecretInvalidError(f"{field}: missing")
    try:
        text = base64.b64decode(encoded, validate=True).decode("ascii").strip()
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise GatewaySecretInvalidError(f"{field}: not base64 of a base64 key") from None
    if len(raw) != KEY_LENGTH:
        raise GatewaySecretInvalidError(
            f"{field}: a WireGuard key is {KEY_LENGTH} bytes, got {len(raw)}"
        )
    try:
        return check_private_key(raw, field=field)
    except ValueError as error:
        raise GatewaySecretInvalidError(str(error)) from None


def matching_private_key(data: Mapping[str, str] | None, where: str, public_key: str) -> bytes:
    """The private key in `data`, checked to derive `public_key` (base64)."""
    private_key = private_key_from_data(data, where)
    try:
        expected = parse_public_key(public_key, field="gateway.public_key")
    except ValueError as error:
        raise GatewaySecretInvalidError(str(error)) from None
    if public_key_of(private_key) != expected:
        raise GatewaySecretInvalidError(
            f"{where}: its private key does not belong to public key {public_key} "
            "(the Secret changed after the configuration was provisioned)"
        )
    return private_key


class GatewaySecretReader:
    """Private keys from Secrets, through the agent's Kubernetes client."""

    def __init__(self, api: ApiClient) -> None:
        self._core = CoreV1Api(api)

    async def private_key(self, secret: SecretRef, public_key: str) -> bytes:
        where = f"Secret {secret.namespace}/{secret.name}"
        try:
            obj: Any = await self._core.read_namespaced_secret(secret.name, secret.namespace)
        except ApiException as exc:
            failure = api_failure(exc)
            if failure.kind is ApiErrorKind.NOT_FOUND:
                raise GatewaySecretMissingError(f"{where} not found") from None
            # Only the status: an error body is the server's, but never worth the risk.
            raise GatewaySecretUnreadableError(
                f"read {where}: HTTP {failure.status} {failure.reason}".rstrip()
            ) from None
        return matching_private_key(obj.data, where, public_key)
