"""Kubernetes resource quantities ("500m", "1.5Gi", "2e3") as exact fractions, and the value a
`resourceFieldRef` gives (k8s.io/kubernetes pkg/api/v1/resource: ceil(quantity / divisor))."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Final

_BINARY: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: Final = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY: Final = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(.*)$")


class QuantityError(ValueError):
    pass


def parse_quantity(text: str) -> Fraction:
    match = _QUANTITY.match(text.strip())
    if not match:
        raise QuantityError(f"invalid quantity {text!r}")
    number, suffix = Fraction(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    if suffix[:1] in ("e", "E") and re.fullmatch(r"[+-]?\d+", suffix[1:]):
        return number * Fraction(10) ** int(suffix[1:])
    raise QuantityError(f"invalid quantity {text!r}: unknown suffix {suffix!r}")


def resource_field_value(
    resource: str,
    requests: dict[str, str],
    limits: dict[str, str],
    allocatable: dict[str, str],
    divisor: str | None,
) -> str:
    """`resource` is e.g. "limits.cpu" or "requests.memory". A limit the container does not set
    is the node's allocatable (as the kubelet does); an unset request is 0."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise QuantityError(f"unsupported resource {resource!r}")
    source = limits if kind == "limits" else requests
    raw = source.get(name)
    if raw is None and kind == "limits":
        raw = allocatable.get(name)
    value = parse_quantity(raw) if raw is not None else Fraction(0)
    by = parse_quantity(divisor) if divisor else Fraction(1)
    if by <= 0:
        raise QuantityError(f"divisor {divisor!r} must be positive")
    return str(math.ceil(value / by))
