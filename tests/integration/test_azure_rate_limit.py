"""`cloudProviderRateLimit` in a cloud config paces the controller's real ARM clients: requests
against the ARM emulator wait for their token, and one that would wait too long is held back
before it leaves the process, as a retryable throttle."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from activities.azure.errors import THROTTLED, classify
from activities.azure.rate_limit import RateLimitReached
from egressgw.azure_credential import build_async_credential, resolve_cloud_environment
from egressgw.cloud_config import CloudConfig, load_cloud_config
from egressgw.worker import management_clients
from sim.arm.server import ArmEmulator

WriteConfig = Callable[..., Path]


def rate_limited(
    arm_cloud_config: dict[str, Any], write_cloud_config: WriteConfig, qps: float, bucket: int
) -> CloudConfig:
    document = arm_cloud_config | {
        "cloudProviderRateLimit": True,
        "cloudProviderRateLimitQPS": qps,
        "cloudProviderRateLimitBucket": bucket,
    }
    return load_cloud_config(write_cloud_config(document)).config


async def test_reads_beyond_the_bucket_wait_for_their_tokens(
    clean_azure_env: pytest.MonkeyPatch,
    arm_emulator: ArmEmulator,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
) -> None:
    config = rate_limited(arm_cloud_config, write_cloud_config, qps=4, bucket=2)
    ca = str(arm_emulator.ca_path)
    cloud = await resolve_cloud_environment(config, connection_verify=ca)
    arm = build_async_credential(config, cloud, connection_verify=ca)
    async with arm.credential, management_clients(config, arm, connection_verify=ca) as clients:
        await clients.network.virtual_networks.get(config.vnet_resource_group, config.vnet_name)
        arm_emulator.request_log.clear()
        started = time.monotonic()
        for _ in range(4):  # one token left in the bucket, then 4 a second
            await clients.network.virtual_networks.get(config.vnet_resource_group, config.vnet_name)
        elapsed = time.monotonic() - started

    assert elapsed >= 0.7  # three waits of 0.25 s (less a little refill)
    assert arm_emulator.request_log.reads() == 4


async def test_a_request_that_would_wait_too_long_is_held_back_as_a_retryable_throttle(
    clean_azure_env: pytest.MonkeyPatch,
    arm_emulator: ArmEmulator,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
) -> None:
    config = rate_limited(arm_cloud_config, write_cloud_config, qps=0.05, bucket=1)
    ca = str(arm_emulator.ca_path)
    cloud = await resolve_cloud_environment(config, connection_verify=ca)
    arm = build_async_credential(config, cloud, connection_verify=ca)
    async with arm.credential, management_clients(config, arm, connection_verify=ca) as clients:
        arm_emulator.request_log.clear()
        await clients.network.virtual_networks.get(config.vnet_resource_group, config.vnet_name)
        with pytest.raises(RateLimitReached) as caught:
            # The compute client shares the network client's limit: one per process.
            [vm async for vm in clients.compute.virtual_machines.list(config.resource_group)]

    assert arm_emulator.request_log.reads() == 1  # the held-back request never left
    assert 15 < caught.value.retry_after_seconds <= 20
    failure = classify(caught.value, f"listing the VMs of {config.resource_group}")
    assert failure.type == THROTTLED and not failure.non_retryable
    assert failure.next_retry_delay is not None
    assert 15 < failure.next_retry_delay.total_seconds() <= 20
