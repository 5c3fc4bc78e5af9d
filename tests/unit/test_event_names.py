"""An Event's name is derived from its configuration's name, which may be as long as Kubernetes
allows: it must still be a valid object name (a DNS subdomain of at most 253 characters)."""

from __future__ import annotations

import re

import pytest

from activities.kube.events import event_name
from contracts.activity_io import EventInput, SgcRef

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@pytest.mark.parametrize(
    "name",
    [
        "gw",
        "x" * 253,
        "a" * 235 + "." + "b" * 17,  # the cut would end on the "."
        "a" * 234 + "-." + "b" * 17,  # ... or on "-."
    ],
)
def test_an_event_name_is_a_valid_object_name(name: str) -> None:
    event = EventInput(SgcRef("ns", name, "u1"), "Warning", "InvalidSpec", "bad")
    derived = event_name(event)
    assert len(derived) <= 253
    assert DNS_SUBDOMAIN.fullmatch(derived), derived
    assert derived.startswith(name[:200].rstrip(".-")[:100])
