"""The CNI protocol pieces: environment, network config, prevResult, error objects."""

from __future__ import annotations

import pytest

from agent.cni import cni_protocol as cni
from agent.cni.cni_protocol import CniError, PodRef
from agent.cni.plugin import run
from agent.cni.plugin_config import PluginConfig

ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "abc123",
    "CNI_NETNS": "/var/run/netns/p",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin:/usr/lib/cni",
    "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0",
}


def error_of(call: object) -> CniError:
    assert callable(call)
    with pytest.raises(CniError) as caught:
        call()
    return caught.value


def test_invocation_from_the_environment() -> None:
    invocation = cni.read_invocation(ENV)
    assert invocation.path == ("/opt/cni/bin", "/usr/lib/cni")
    assert invocation.pod() == PodRef("ns1", "web-0")
    assert str(invocation.pod()) == "ns1/web-0"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"CNI_COMMAND": ""}, "CNI_COMMAND is not set"),
        ({"CNI_COMMAND": "add"}, "unknown CNI_COMMAND 'add'"),
        ({"CNI_NETNS": ""}, "ADD needs CNI_NETNS"),
        ({"CNI_NETNS": "relative/ns"}, "not an absolute path"),
        ({"CNI_CONTAINERID": "-bad"}, "CNI_CONTAINERID '-bad' is not valid"),
        ({"CNI_IFNAME": "a-name-longer-than-15"}, "not an interface name"),
        ({"CNI_ARGS": "=x"}, "is not KEY=VALUE"),
    ],
)
def test_environment_errors_are_code_4(changes: dict[str, str], message: str) -> None:
    error = error_of(lambda: cni.read_invocation({**ENV, **changes}))
    assert error.code == cni.INVALID_ENVIRONMENT
    assert message in error.msg


def test_del_needs_no_netns_and_version_needs_nothing() -> None:
    assert cni.read_invocation({**ENV, "CNI_COMMAND": "DEL", "CNI_NETNS": ""}).netns == ""
    assert cni.read_invocation({"CNI_COMMAND": "VERSION"}).command == "VERSION"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("K8S_POD_NAMESPACE=ns1", "lacks K8S_POD_NAMESPACE or K8S_POD_NAME"),
        ("K8S_POD_NAMESPACE=NS;K8S_POD_NAME=a", "is not a namespace name"),
        ("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=a_b", "is not a pod name"),
    ],
)
def test_pod_from_cni_args(args: str, message: str) -> None:
    invocation = cni.read_invocation({**ENV, "CNI_ARGS": args})
    error = error_of(invocation.pod)
    assert (error.code, message in error.msg) == (cni.INVALID_ENVIRONMENT, True)


@pytest.mark.parametrize(
    ("stdin", "code"),
    [
        (b"", cni.DECODING_FAILURE),
        (b"\xff\xfe", cni.DECODING_FAILURE),
        (b"[]", cni.DECODING_FAILURE),
        (b"{}", cni.INVALID_NETWORK_CONFIG),
        (b'{"cniVersion": "0.2.0"}', cni.INCOMPATIBLE_VERSION),
        (b'{"cniVersion": 1}', cni.INVALID_NETWORK_CONFIG),
    ],
)
def test_config_decoding_errors(stdin: bytes, code: int) -> None:
    assert error_of(lambda: cni.decode_config(stdin)).code == code


def prev(
    *addresses: tuple[str, int | None], interfaces: list[dict[str, str]] | None = None
) -> dict[str, object]:
    ips = []
    for address, index in addresses:
        entry: dict[str, object] = {"address": address}
        if index is not None:
            entry["interface"] = index
        ips.append(entry)
    return {"ips": ips, "interfaces": interfaces or []}


def test_pod_address_follows_the_interface_index() -> None:
    interfaces = [
        {"name": "cni0", "mac": "aa"},  # the host side: no sandbox
        {"name": "eth0", "sandbox": "/var/run/netns/p"},
    ]
    result = prev(
        ("10.0.0.1/24", 0), ("fd00::2/64", 1), ("10.244.1.5/24", 1), interfaces=interfaces
    )
    assert cni.pod_address(result, "eth0") == cni.PodAddress("10.244.1.5", 24)
    assert cni.pod_address(prev(("10.244.1.9/16", None)), "eth0").ip == "10.244.1.9"


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"ips": "x"}, "no list of ips"),
        (prev(("fd00::2/64", None)), "no IPv4 address for eth0"),
        (prev(("300.1.1.1/24", None)), "is not an IP/prefix"),
        (prev(("0.0.0.0/0", None)), "is not a pod address"),
        ({"ips": [{"gateway": "10.0.0.1"}]}, "without an address"),
    ],
)
def test_pod_address_errors(result: dict[str, object], message: str) -> None:
    error = error_of(lambda: cni.pod_address(result, "eth0"))
    assert error.code == cni.INVALID_NETWORK_CONFIG and message in error.msg


def test_plugin_config_defaults_and_checks() -> None:
    config = PluginConfig.from_json({"cniVersion": "1.0.0", "socketPath": "/run/m.sock"})
    assert config.exception_cidrs == ("169.254.169.254/32", "169.254.10.11/32")
    assert config.backend == "auto" and config.prev_result is None
    normalized = PluginConfig.from_json(
        {"cniVersion": "1.0.0", "socketPath": "/s", "excludedCIDRs": ["10.1.2.3/16"]}
    )
    assert normalized.exception_cidrs == ("10.1.0.0/16",)
    for raw, message in [
        ({"socketPath": "localhost:50051"}, "not the absolute path"),
        ({"socketPath": "/s", "excludedCIDRs": "10.0.0.0/8"}, "must be a list"),
        ({"socketPath": "/s", "clusterCIDRs": ["fd00::/8"]}, "is not IPv4"),
        ({"socketPath": "/s", "prevResult": []}, "prevResult is not a JSON object"),
        ({"socketPath": "/s", "cni.dev/valid-attachments": [{}]}, "without containerID"),
    ]:
        error = error_of(lambda raw=raw: PluginConfig.from_json({"cniVersion": "1.1.0", **raw}))
        assert message in error.msg


def test_version_and_error_objects_on_stdout() -> None:
    code, out = run({"CNI_COMMAND": "VERSION"}, b"", log=None)  # type: ignore[arg-type]
    assert code == 0 and '"supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]' in out
    code, out = run({**ENV}, b'{"cniVersion":"0.4.0"}', log=None)  # type: ignore[arg-type]
    assert code == 1
    assert out == '{"cniVersion":"0.4.0","code":7,"msg":"socketPath is missing",' + (
        '"details":"the CNI manager writes its socket\'s path into the conflist entry"}'
    )
