"""Our conflist from the node's main configuration (agent/cni/conflist.py)."""

from __future__ import annotations

import json

import pytest

from agent.cni import conflist
from agent.cni.conflist import ConflistError

OURS = {"type": "kube-egress-cni", "socketPath": "/run/m.sock"}


def test_the_main_configuration_is_the_first_conf_file_but_ours() -> None:
    names = ["99-z.conflist", "README", "10-calico.conflist", "01-egressgateway.conflist", "x.json"]
    assert conflist.main_conf_name(names, "01-egressgateway.conflist") == "10-calico.conflist"
    assert (
        conflist.main_conf_name(["a.txt", "01-egressgateway.conflist"], "01-egressgateway.conflist")
        is None
    )
    assert conflist.main_conf_name(["b.conf", "a.json"], "ours") == "a.json"


def test_our_entry_goes_right_after_the_main_plugin() -> None:
    main = {
        "cniVersion": "1.0.0",
        "name": "net",
        "plugins": [{"type": "calico"}, {"type": "kube-egress-cni", "old": 1}, {"type": "portmap"}],
    }
    rendered = conflist.render("10-calico.conflist", json.dumps(main), OURS)
    assert rendered == {
        "cniVersion": "1.0.0",
        "name": "net",
        "plugins": [{"type": "calico"}, OURS, {"type": "portmap"}],
    }
    # Rendering our own output again changes nothing.
    assert conflist.render("x.conflist", json.dumps(rendered), OURS) == rendered


def test_a_single_plugin_conf_is_wrapped() -> None:
    rendered = conflist.render(
        "10-ptp.conf", json.dumps({"cniVersion": "0.4.0", "name": "p", "type": "ptp"}), OURS
    )
    assert rendered == {
        "cniVersion": "0.4.0",
        "name": "p",
        "plugins": [{"cniVersion": "0.4.0", "name": "p", "type": "ptp"}, OURS],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "is not JSON"),
        ("[]", "is not a JSON object"),
        ('{"cniVersion": "0.2.0", "type": "bridge"}', "has cniVersion '0.2.0'"),
        ('{"cniVersion": "1.0.0", "plugins": {}}', "plugins is not a list"),
        ('{"cniVersion": "1.0.0", "plugins": [{"type": "kube-egress-cni"}]}', "no plugin besides"),
        ('{"cniVersion": "1.0.0"}', "neither plugins nor a type"),
    ],
)
def test_main_configurations_we_cannot_chain_into(text: str, message: str) -> None:
    with pytest.raises(ConflistError, match=message):
        conflist.render("10-main.conflist", text, OURS)
