"""The gateway's WireGuard key pair, kept in the Secret `sgw-<uid>` of the controller's namespace.

Layout as upstream has it: `data.PrivateKey` and `data.PublicKey` hold the base64 key strings
(so the Secret's data is base64 of base64). The private key is generated here, written to the
Secret and forgotten: it never appears in a return value, an exception message or a log line.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kube.errors import CONFLICT_ERROR, activity_error
from contracts import kube_names, resource_names
from contracts.activity_io import (
    DELETE_GATEWAY_KEY,
    ENSURE_GATEWAY_KEY,
    GatewayKey,
    GatewayKeyInput,
    SgcRef,
)
from kubeclient.errors import is_conflict, is_not_found
from kubeclient.patch_types import MERGE_PATCH

log = logging.getLogger(__name__)

_KEY_BYTES = 32


@dataclass(frozen=True)
class KeyPair:
    public_key: str  # base64, 44 characters
    private_key: str = field(repr=False)  # base64; repr=False keeps it out of tracebacks and logs


def new_key_pair() -> KeyPair:
    raw = bytearray(X25519PrivateKey.generate().private_bytes_raw())
    # Clamp as `wg genkey` does, so that other WireGuard tools show the same bytes we stored.
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return _pair_from_raw(bytes(raw))


def _pair_from_raw(raw: bytes) -> KeyPair:
    public = X25519PrivateKey.from_private_bytes(raw).public_key()
    public_raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return KeyPair(
        public_key=base64.b64encode(public_raw).decode(),
        private_key=base64.b64encode(raw).decode(),
    )


def _decode_field(data: Mapping[str, str] | None, key: str) -> str | None:
    """A Secret data value (base64 of a base64 key string) back to the key string."""
    encoded = (data or {}).get(key)
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode("ascii").strip()
    except (binascii.Error, ValueError):
        return None


def stored_key_pair(data: Mapping[str, str] | None) -> KeyPair | None:
    """The key pair in a Secret's data, when `PrivateKey` holds a valid key.

    The public key is derived from the private one, so a missing or wrong `PublicKey` is repaired
    rather than trusted.
    """
    private_text = _decode_field(data, kube_names.SECRET_PRIVATE_KEY)
    if private_text is None:
        return None
    try:
        raw = base64.b64decode(private_text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _KEY_BYTES:
        return None
    return _pair_from_raw(raw)


def _encode(text: str) -> str:
    return base64.b64encode(text.encode("ascii")).decode()


def secret_data(pair: KeyPair) -> dict[str, str]:
    return {
        kube_names.SECRET_PRIVATE_KEY: _encode(pair.private_key),
        kube_names.SECRET_PUBLIC_KEY: _encode(pair.public_key),
    }


def owner_labels(sgc: SgcRef) -> dict[str, str]:
    """Upstream's owner labels; a name too long for a label value gets a derived one."""
    return {
        kube_names.SECRET_OWNER_NAMESPACE_LABEL: sgc.namespace,
        kube_names.SECRET_OWNER_NAME_LABEL: resource_names.owner_name_label_value(sgc.name),
    }


def owner_annotations(sgc: SgcRef) -> dict[str, str]:
    """The whole name, when the label could not hold it (none otherwise, as 0.1.0 wrote)."""
    if resource_names.owner_name_label_value(sgc.name) == sgc.name:
        return {}
    return {kube_names.SECRET_OWNER_NAME_ANNOTATION: sgc.name}


def secret_repairs(
    sgc: SgcRef,
    labels: Mapping[str, str] | None,
    data: Mapping[str, str] | None,
    annotations: Mapping[str, str] | None = None,
) -> tuple[KeyPair, dict[str, Any]]:
    """The key pair a Secret ends up with and the merge patch that gets it there ({} if none).

    A valid private key is kept (pods already peer with its public key); otherwise a new pair is
    generated. Owner labels and annotation and a stale PublicKey are corrected.
    """
    patch: dict[str, Any] = {}
    pair = stored_key_pair(data)
    if pair is None:
        pair = new_key_pair()
        patch["data"] = secret_data(pair)
    elif _decode_field(data, kube_names.SECRET_PUBLIC_KEY) != pair.public_key:
        patch["data"] = {kube_names.SECRET_PUBLIC_KEY: _encode(pair.public_key)}
    wanted = owner_labels(sgc)
    if any((labels or {}).get(key) != value for key, value in wanted.items()):
        patch["metadata"] = {"labels": wanted}
    noted = owner_annotations(sgc)
    if any((annotations or {}).get(key) != value for key, value in noted.items()):
        patch.setdefault("metadata", {})["annotations"] = noted
    return pair, patch


class GatewayKeyActivities:
    """Activities on key Secrets, built with the controller's Kubernetes client."""

    def __init__(self, api_client: ApiClient) -> None:
        self._core = CoreV1Api(api_client)

    async def _read(self, name: str, namespace: str) -> Any | None:
        try:
            return await self._core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if is_not_found(exc):
                return None
            raise activity_error(exc, f"read Secret {namespace}/{name}") from None

    async def _create(self, request: GatewayKeyInput, name: str) -> KeyPair | None:
        """Create the Secret with a new pair; None when someone else created it first."""
        pair = new_key_pair()
        body: Any = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": request.secret_namespace,
                "labels": owner_labels(request.sgc),
                "annotations": owner_annotations(request.sgc),
            },
            "data": secret_data(pair),
        }
        try:
            await self._core.create_namespaced_secret(request.secret_namespace, body)
        except ApiException as exc:
            if is_conflict(exc):
                return None
            raise activity_error(exc, f"create Secret {request.secret_namespace}/{name}") from None
        log.info("created gateway key Secret %s/%s", request.secret_namespace, name)
        return pair

    @activity.defn(name=ENSURE_GATEWAY_KEY)
    async def ensure_gateway_key(self, request: GatewayKeyInput) -> GatewayKey:
        namespace = request.secret_namespace
        name = resource_names.gateway_secret_name(request.sgc.uid)
        secret = await self._read(name, namespace)
        if secret is None:
            created = await self._create(request, name)
            if created is not None:
                return GatewayKey(created.public_key, name, namespace)
            secret = await self._read(name, namespace)  # lost a create race: use the winner's
            if secret is None:
                raise ApplicationError(
                    f"Secret {namespace}/{name} was created and deleted concurrently",
                    type=CONFLICT_ERROR,
                )
        pair, patch = secret_repairs(
            request.sgc, secret.metadata.labels, secret.data, secret.metadata.annotations
        )
        if patch:
            # resourceVersion: two attempts must not both replace a key that pods already use.
            patch.setdefault("metadata", {})["resourceVersion"] = secret.metadata.resource_version
            try:
                await self._core.patch_namespaced_secret(name, namespace, patch, **MERGE_PATCH)
            except ApiException as exc:
                raise activity_error(exc, f"repair Secret {namespace}/{name}") from None
            log.info("repaired gateway key Secret %s/%s (%s)", namespace, name, sorted(patch))
        return GatewayKey(pair.public_key, name, namespace)

    @activity.defn(name=DELETE_GATEWAY_KEY)
    async def delete_gateway_key(self, request: GatewayKeyInput) -> None:
        namespace = request.secret_namespace
        name = resource_names.gateway_secret_name(request.sgc.uid)
        try:
            await self._core.delete_namespaced_secret(name, namespace)
        except ApiException as exc:
            if is_not_found(exc):
                return
            raise activity_error(exc, f"delete Secret {namespace}/{name}") from None
        log.info("deleted gateway key Secret %s/%s", namespace, name)
