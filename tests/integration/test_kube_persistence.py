"""State survives restarts and crashes; a torn journal tail does not corrupt anything."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import kubernetes
import yaml
from kubernetes import client

from sim.kube.server import KubeEmulator
from sim.kube.storage import JOURNAL_FILE
from tests.fixtures.kube import ServingThread, widget_crd


def _client(emulator: KubeEmulator, tmp_path: Path) -> client.ApiClient:
    path = tmp_path / "kubeconfig"
    emulator.write_kubeconfig(path)
    return kubernetes.config.new_client_from_config(config_file=str(path))


def _seed(emulator: KubeEmulator) -> None:
    emulator.create_sync(widget_crd())
    emulator.create_sync(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "kept", "namespace": "default"},
            "spec": {"size": 5},
        }
    )


def test_restart_keeps_objects_token_and_resource_versions(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = ServingThread(KubeEmulator(state))
    emulator = first.start()
    _seed(emulator)
    with _client(emulator, tmp_path) as api:
        before = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", "kept"
        )
    token = emulator.token
    first.stop()

    second = ServingThread(KubeEmulator(state))
    restarted = second.start()
    try:
        assert restarted.token == token
        with _client(restarted, tmp_path) as api:
            custom = client.CustomObjectsApi(api)
            after = custom.get_namespaced_custom_object(
                "example.com", "v1", "default", "widgets", "kept"
            )
            assert after == before
            patched = custom.patch_namespaced_custom_object(
                "example.com", "v1", "default", "widgets", "kept", {"spec": {"size": 6}}
            )
            assert int(patched["metadata"]["resourceVersion"]) > int(
                before["metadata"]["resourceVersion"]
            )
    finally:
        second.stop()


def test_crash_with_a_torn_journal_loses_only_the_torn_write(tmp_path: Path) -> None:
    state = tmp_path / "state"
    emulator = KubeEmulator(state)
    serving = ServingThread(emulator)
    serving.start()
    _seed(emulator)
    # Simulate a crash: no stop() (no snapshot), and a half-written last journal line.
    serving.loop.call_soon_threadsafe(serving.loop.stop)
    serving.join()
    with (state / JOURNAL_FILE).open("a") as journal:
        journal.write('{"rv": 999, "op": "put", "key": ["example.com", "widg')

    restarted = ServingThread(KubeEmulator(state))
    loaded = restarted.start()
    try:
        with _client(loaded, tmp_path) as api:
            kept = client.CustomObjectsApi(api).get_namespaced_custom_object(
                "example.com", "v1", "default", "widgets", "kept"
            )
            assert kept["spec"]["size"] == 5
    finally:
        restarted.stop()
        # Release the crashed instance's socket and loop only now (this writes a snapshot).
        serving.loop.run_until_complete(emulator.stop())
        serving.loop.close()


def test_standalone_module_serves_until_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "standalone"
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.kube", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("https://127.0.0.1:")
        token = (state / "kube-token").read_text().strip()
        context = ssl.create_default_context(cafile=str(state / "ca.pem"))
        request = urllib.request.Request(
            f"{url}/version", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            assert json.load(response)["major"] == "1"
        config = yaml.safe_load((state / "kubeconfig").read_text())
        assert config["clusters"][0]["cluster"]["server"] == url
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert (state / "kube-state.json").exists()
