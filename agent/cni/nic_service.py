"""The CNI manager's answers to the plugin (manager_api has the messages), against the Kubernetes
API as the manager's ServiceAccount (deploy/rbac/cni-manager.yaml).

- PodRetrieve: the pod's annotations (and UID, which the plugin hands back with NicAdd).
- NicAdd: the configuration `<pod namespace>/<gateway name>` must exist, not be deleting, and have
  a complete gateway profile (else NotFound / Deleting / NotReady, the last one retryable); then
  the PodEndpoint `<pod namespace>/<pod name>` (owned by the Pod: controller, blockOwnerDeletion)
  gets the pod's IP as /32 and its public key, created or replaced; the answer is the profile.
- NicCheck: the same checks, and the PodEndpoint must hold that key and IP; writes nothing.
- NicDel: the PodEndpoint goes, unless it holds another key than the one given (a newer sandbox
  of a pod with the same name wrote it); absent is fine.

The decisions (`gateway_profile`, `pod_endpoint_body`, `check_gateway_name`) are pure.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from kubernetes_asyncio.client import (
    ApiClient,
    CoreV1Api,
    CustomObjectsApi,
    V1DeleteOptions,
    V1Preconditions,
)
from kubernetes_asyncio.client.exceptions import ApiException

from agent.cni import manager_api
from agent.cni.cni_protocol import PodRef
from agent.cni.manager_api import (
    GatewayProfile,
    ManagerError,
    NicAddRequest,
    NicDelRequest,
    PodInfo,
)
from agent.cni.manager_events import CREATE_OR_UPDATE, DELETE, ManagerObserver, Unobserved
from contracts import kube_names
from contracts.gateway_config import DefaultRoute, StaticGatewayConfiguration
from contracts.object_meta import ObjectMeta, OwnerReference
from contracts.pod_endpoint import PodEndpoint, PodEndpointSpec
from contracts.raw_fields import ObjectFormatError
from kubeclient.errors import TRANSPORT_ERRORS, ApiErrorKind, api_failure

log = logging.getLogger(__name__)

# Writes that lose a race (409) re-read and try again, this many attempts in all.
WRITE_ATTEMPTS: Final = 5
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def check_gateway_name(name: str, pod: PodRef) -> str:
    if "/" in name:
        raise ManagerError(
            manager_api.INVALID,
            f"gateway name {name!r} names another namespace; pod {pod} can only use a "
            f"StaticGatewayConfiguration in namespace {pod.namespace}",
        )
    if not name or len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        raise ManagerError(
            manager_api.INVALID, f"{name!r} is not the name of a StaticGatewayConfiguration"
        )
    return name


def gateway_profile(raw_sgc: Mapping[str, Any], pod: PodRef) -> GatewayProfile:
    """What the pod needs from configuration `raw_sgc`; a ManagerError saying why the
    configuration cannot serve pods (yet)."""
    try:
        sgc = StaticGatewayConfiguration.from_object(raw_sgc)
    except ObjectFormatError as err:
        raise ManagerError(manager_api.INVALID, f"configuration is malformed: {err}") from None
    key = f"{pod.namespace}/{sgc.metadata.name}"
    if sgc.metadata.is_deleting:
        raise ManagerError(
            manager_api.DELETING, f"StaticGatewayConfiguration {key} is being deleted"
        )
    profile = sgc.status.gateway_server_profile
    if profile is None or not (profile.ip and profile.port and profile.public_key):
        raise ManagerError(
            manager_api.NOT_READY,
            f"StaticGatewayConfiguration {key} is not ready yet: its gateway (load balancer "
            "frontend, port, public key) is still being provisioned",
        )
    exclude: list[str] = []
    for cidr in sgc.spec.exclude_cidrs:
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise ManagerError(
                manager_api.INVALID,
                f"StaticGatewayConfiguration {key}: excludeCidrs entry {cidr!r} is not a CIDR",
            ) from None
        if network.version == 4:  # the pod side is IPv4 only
            exclude.append(str(network))
    route = sgc.spec.default_route
    if route not in (DefaultRoute.STATIC_EGRESS_GATEWAY, DefaultRoute.AZURE_NETWORKING):
        raise ManagerError(
            manager_api.INVALID,
            f"StaticGatewayConfiguration {key}: defaultRoute {route!r} is unknown",
        )
    try:
        manager_api.check_public_key(profile.public_key, "gatewayServerProfile.publicKey")
        ipaddress.IPv4Address(profile.ip)
    except (ValueError, ManagerError) as err:
        raise ManagerError(
            manager_api.INVALID, f"StaticGatewayConfiguration {key}: gateway profile: {err}"
        ) from None
    return GatewayProfile(
        endpoint_ip=profile.ip,
        listen_port=profile.port,
        public_key=profile.public_key,
        exclude_cidrs=tuple(exclude),
        default_route=str(route),
    )


def pod_endpoint_body(
    request: NicAddRequest, pod_uid: str, resource_version: str = ""
) -> dict[str, Any]:
    return dict(
        PodEndpoint(
            metadata=ObjectMeta(
                name=request.pod.name,
                namespace=request.pod.namespace,
                resource_version=resource_version,
                owner_references=(
                    OwnerReference(
                        api_version="v1",
                        kind="Pod",
                        name=request.pod.name,
                        uid=pod_uid,
                        controller=True,
                        block_owner_deletion=True,
                    ),
                ),
            ),
            spec=PodEndpointSpec(
                static_gateway_configuration=request.gateway_name,
                pod_ip_address=f"{request.pod_ip}/32",
                pod_public_key=request.public_key,
            ),
        ).to_object()
    )


def _same_endpoint(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    owners = (stored.get("metadata") or {}).get("ownerReferences") or []
    wanted_owner = wanted["metadata"]["ownerReferences"][0]
    return stored.get("spec") == wanted["spec"] and any(
        owner.get("uid") == wanted_owner["uid"] and owner.get("controller") for owner in owners
    )


def _api_error(exc: BaseException, what: str) -> ManagerError:
    """A failed API call as the plugin should see it."""
    failure = api_failure(exc)
    if failure.kind is ApiErrorKind.UNAVAILABLE:
        return ManagerError(manager_api.UNAVAILABLE, f"{what}: {failure.describe()}")
    return ManagerError(manager_api.REFUSED, f"{what}: {failure.describe()}")


class NicService:
    def __init__(self, api: ApiClient, observer: ManagerObserver | None = None) -> None:
        self._api = api
        self._observer: ManagerObserver = observer or Unobserved()
        self._core = CoreV1Api(api)
        self._custom = CustomObjectsApi(api)

    async def pod_retrieve(self, pod: PodRef) -> PodInfo:
        metadata = (await self._pod(pod)).get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        return PodInfo(
            uid=str(metadata.get("uid", "")),
            annotations={str(k): str(v) for k, v in annotations.items()},
        )

    async def nic_add(self, request: NicAddRequest) -> GatewayProfile:
        profile = await self._profile(request)
        # The plugin passes the UID PodRetrieve gave it moments ago; else read the pod.
        uid = request.pod_uid
        if not uid:
            uid = str(((await self._pod(request.pod)).get("metadata") or {}).get("uid", ""))
        try:
            await self._ensure_endpoint(request, uid)
        except ManagerError:
            pod = request.pod
            self._observer.pod_endpoint_failed(pod.namespace, CREATE_OR_UPDATE, pod.name)
            raise
        log.info(
            "pod %s (%s) uses gateway %s at %s:%d; PodEndpoint written with key %s",
            request.pod,
            request.pod_ip,
            request.gateway_name,
            profile.endpoint_ip,
            profile.listen_port,
            request.public_key,
        )
        return profile

    async def nic_check(self, request: NicAddRequest) -> GatewayProfile:
        profile = await self._profile(request)
        stored = await self._get_endpoint(request.pod)
        if stored is None:
            raise ManagerError(manager_api.MISMATCH, f"PodEndpoint {request.pod} is missing")
        spec = stored.get("spec") or {}
        expected = {
            "staticGatewayConfiguration": request.gateway_name,
            "podIpAddress": f"{request.pod_ip}/32",
            "podPublicKey": request.public_key,
        }
        differing = sorted(k for k, v in expected.items() if spec.get(k) != v)
        if differing:
            raise ManagerError(
                manager_api.MISMATCH,
                f"PodEndpoint {request.pod} differs from the pod in {', '.join(differing)}",
            )
        return profile

    async def nic_del(self, request: NicDelRequest) -> None:
        try:
            await self._delete_endpoint(request)
        except ManagerError:
            self._observer.pod_endpoint_failed(request.pod.namespace, DELETE, request.pod.name)
            raise

    async def _delete_endpoint(self, request: NicDelRequest) -> None:
        for _ in range(WRITE_ATTEMPTS):
            stored = await self._get_endpoint(request.pod)
            if stored is None:
                return
            key = (stored.get("spec") or {}).get("podPublicKey", "")
            if request.public_key and key != request.public_key:
                log.info(
                    "PodEndpoint %s kept: it holds another sandbox's key than the one deleted",
                    request.pod,
                )
                return
            uid = (stored.get("metadata") or {}).get("uid")
            try:
                await self._custom.delete_namespaced_custom_object(
                    kube_names.API_GROUP,
                    kube_names.API_VERSION,
                    request.pod.namespace,
                    kube_names.POD_ENDPOINT_PLURAL,
                    request.pod.name,
                    body=V1DeleteOptions(preconditions=V1Preconditions(uid=uid)),
                )
            except ApiException as exc:
                kind = api_failure(exc).kind
                if kind is ApiErrorKind.NOT_FOUND:
                    return
                if kind is ApiErrorKind.CONFLICT:
                    continue  # replaced meanwhile: look again
                raise _api_error(exc, f"deleting PodEndpoint {request.pod}") from None
            except TRANSPORT_ERRORS as exc:
                raise _api_error(exc, f"deleting PodEndpoint {request.pod}") from None
            log.info("PodEndpoint %s deleted", request.pod)
            return
        raise ManagerError(
            manager_api.UNAVAILABLE, f"PodEndpoint {request.pod} kept changing; try again"
        )

    # --- reads and writes --------------------------------------------------------------------

    async def _profile(self, request: NicAddRequest) -> GatewayProfile:
        name = check_gateway_name(request.gateway_name, request.pod)
        namespace = request.pod.namespace
        try:
            raw = await self._custom.get_namespaced_custom_object(
                kube_names.API_GROUP,
                kube_names.API_VERSION,
                namespace,
                kube_names.SGC_PLURAL,
                name,
            )
        except ApiException as exc:
            if api_failure(exc).kind is ApiErrorKind.NOT_FOUND:
                raise ManagerError(
                    manager_api.NOT_FOUND,
                    f"StaticGatewayConfiguration {name} not found in namespace {namespace} "
                    f"(pod {request.pod} can only use a configuration of its own namespace)",
                ) from None
            raise _api_error(
                exc, f"reading StaticGatewayConfiguration {namespace}/{name}"
            ) from None
        except TRANSPORT_ERRORS as exc:
            raise _api_error(
                exc, f"reading StaticGatewayConfiguration {namespace}/{name}"
            ) from None
        return gateway_profile(raw, request.pod)

    async def _pod(self, pod: PodRef) -> dict[str, Any]:
        try:
            found = await self._core.read_namespaced_pod(pod.name, pod.namespace)
        except ApiException as exc:
            if api_failure(exc).kind is ApiErrorKind.NOT_FOUND:
                raise ManagerError(manager_api.POD_NOT_FOUND, f"pod {pod} not found") from None
            raise _api_error(exc, f"reading pod {pod}") from None
        except TRANSPORT_ERRORS as exc:
            raise _api_error(exc, f"reading pod {pod}") from None
        raw: dict[str, Any] = self._api.sanitize_for_serialization(found)
        return raw

    async def _get_endpoint(self, pod: PodRef) -> dict[str, Any] | None:
        try:
            raw: dict[str, Any] = await self._custom.get_namespaced_custom_object(
                kube_names.API_GROUP,
                kube_names.API_VERSION,
                pod.namespace,
                kube_names.POD_ENDPOINT_PLURAL,
                pod.name,
            )
        except ApiException as exc:
            if api_failure(exc).kind is ApiErrorKind.NOT_FOUND:
                return None
            raise _api_error(exc, f"reading PodEndpoint {pod}") from None
        except TRANSPORT_ERRORS as exc:
            raise _api_error(exc, f"reading PodEndpoint {pod}") from None
        return raw

    async def _ensure_endpoint(self, request: NicAddRequest, pod_uid: str) -> None:
        """Create the PodEndpoint (one call for a new pod), or replace one that differs (an
        earlier sandbox's key, or an earlier pod's of the same name)."""
        pod = request.pod
        what = f"writing PodEndpoint {pod}"
        for _ in range(WRITE_ATTEMPTS):
            try:
                await self._custom.create_namespaced_custom_object(
                    kube_names.API_GROUP,
                    kube_names.API_VERSION,
                    pod.namespace,
                    kube_names.POD_ENDPOINT_PLURAL,
                    pod_endpoint_body(request, pod_uid),
                )
                return
            except ApiException as exc:
                if api_failure(exc).kind is not ApiErrorKind.CONFLICT:
                    raise _api_error(exc, what) from None
            except TRANSPORT_ERRORS as exc:
                raise _api_error(exc, what) from None
            stored = await self._get_endpoint(pod)  # it exists: compare, replace if it differs
            if stored is None:
                continue  # deleted meanwhile
            version = str((stored.get("metadata") or {}).get("resourceVersion"))
            wanted = pod_endpoint_body(request, pod_uid, version)
            if _same_endpoint(stored, wanted):
                return
            try:
                await self._custom.replace_namespaced_custom_object(
                    kube_names.API_GROUP,
                    kube_names.API_VERSION,
                    pod.namespace,
                    kube_names.POD_ENDPOINT_PLURAL,
                    pod.name,
                    wanted,
                )
                return
            except ApiException as exc:
                if api_failure(exc).kind not in (ApiErrorKind.CONFLICT, ApiErrorKind.NOT_FOUND):
                    raise _api_error(exc, what) from None
                # lost a race with another writer, or it was deleted: try again
            except TRANSPORT_ERRORS as exc:
                raise _api_error(exc, what) from None
        raise ManagerError(
            manager_api.UNAVAILABLE, f"PodEndpoint {pod} kept changing underneath; try again"
        )
