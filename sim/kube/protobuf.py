"""Decoding of the Kubernetes protobuf request bodies kubectl sends for a few built-in kinds.

kubectl's typed commands (`kubectl create namespace|configmap|secret`) send
`application/vnd.kubernetes.protobuf` and do not fall back to JSON, so the emulator decodes the
envelope (`k8s\\0` + runtime.Unknown) and the messages of those kinds into their JSON form.
Field numbers are those of k8s.io/api and apimachinery's generated.proto.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable
from typing import Any

from sim.kube.errors import ApiError, bad_request

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

Field = tuple[int, int, Any]  # number, wire type, value (int or bytes)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> list[Field]:
    out: list[Field] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, wire, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            out.append((number, wire, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            out.append((number, wire, int.from_bytes(data[pos : pos + 8], "little")))
            pos += 8
        elif wire == 5:
            out.append((number, wire, int.from_bytes(data[pos : pos + 4], "little")))
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _text(value: Any) -> str:
    return bytes(value).decode("utf-8")


def _map(raw: bytes, value_of: Callable[[bytes], str]) -> tuple[str, str]:
    key, val = "", ""
    for number, _, item in fields(raw):
        if number == 1:
            key = _text(item)
        elif number == 2:
            val = value_of(item)
    return key, val


def _time(raw: bytes) -> str:
    seconds = next((v for n, _, v in fields(raw) if n == 1), 0)
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner_reference(raw: bytes) -> dict[str, Any]:
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}
    ref: dict[str, Any] = {}
    for number, _, value in fields(raw):
        if number in names:
            ref[names[number]] = _text(value)
        elif number == 6:
            ref["controller"] = bool(value)
        elif number == 7:
            ref["blockOwnerDeletion"] = bool(value)
    return ref


def object_meta(raw: bytes) -> dict[str, Any]:
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    meta: dict[str, Any] = {}
    for number, _, value in fields(raw):
        if number in strings:
            meta[strings[number]] = _text(value)
        elif number == 7:
            meta["generation"] = value
        elif number in (8, 9):
            meta["creationTimestamp" if number == 8 else "deletionTimestamp"] = _time(value)
        elif number in (11, 12):
            key, val = _map(value, _text)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = val
        elif number == 13:
            meta.setdefault("ownerReferences", []).append(_owner_reference(value))
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(value))
    return meta


def _b64(value: bytes) -> str:
    return base64.b64encode(bytes(value)).decode()


def _configmap(raw: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _, value in fields(raw):
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number in (2, 3):
            key, val = _map(value, _text if number == 2 else _b64)
            obj.setdefault("data" if number == 2 else "binaryData", {})[key] = val
        elif number == 4:
            obj["immutable"] = bool(value)
    return obj


def _secret(raw: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _, value in fields(raw):
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number in (2, 4):
            key, val = _map(value, _b64 if number == 2 else _text)
            obj.setdefault("data" if number == 2 else "stringData", {})[key] = val
        elif number == 3:
            obj["type"] = _text(value)
        elif number == 5:
            obj["immutable"] = bool(value)
    return obj


def _namespace(raw: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _, value in fields(raw):
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number == 2:
            finalizers = [_text(v) for n, _, v in fields(value) if n == 1]
            obj["spec"] = {"finalizers": finalizers} if finalizers else {}
    return obj


_DECODERS: dict[tuple[str, str], Callable[[bytes], dict[str, Any]]] = {
    ("v1", "ConfigMap"): _configmap,
    ("v1", "Secret"): _secret,
    ("v1", "Namespace"): _namespace,
}


def _unsupported(kind: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the emulator decodes protobuf only for ConfigMap, Secret and Namespace, not {kind!r}; "
        "send application/json",
    )


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded object as its JSON form (apiVersion and kind from the envelope)."""
    if not body.startswith(_MAGIC):
        raise bad_request("protobuf body does not start with the Kubernetes magic prefix")
    try:
        envelope = fields(body[len(_MAGIC) :])
        type_meta = next((v for n, _, v in envelope if n == 1), b"")
        raw = next((v for n, _, v in envelope if n == 2), b"")
        meta = {n: _text(v) for n, _, v in fields(type_meta)}
        api_version, kind = meta.get(1, ""), meta.get(2, "")
        decoder = _DECODERS.get((api_version, kind))
        if decoder is None:
            raise _unsupported(kind)
        obj = decoder(raw)
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise bad_request(f"unable to decode protobuf body: {exc}") from exc
    return {"apiVersion": api_version, "kind": kind, **obj}
