"""The embedded stack itself: Temporal dev server, a real Kubernetes control plane
(sim/control_plane), the ARM emulator, the seed, the controller, and one gateway agent per seeded
node (in the node network when run as root, as dry runs otherwise); as root also a node runtime
per node and a CNI manager per regular node. The controller, the agents and the CNI managers run
with their own ServiceAccount tokens and the roles of deploy/rbac/.

Start-up overlaps Temporal's boot with ours: the server process is launched first and the control
plane, the heavy imports (Azure SDK, emulator) and the node network's build happen while it boots.
`dev up --detach` is timed end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts import kube_names, search_attributes
from egressgw.dev.kube_seed import SYSTEM_NAMESPACE, gateway_nodes, namespaces, regular_nodes
from egressgw.dev.layout import (
    LOCALHOST,
    DevOptions,
    DevPorts,
    DevStackError,
    StatePaths,
    busy_ports,
    resolve_ports,
    write_json_atomic,
)
from egressgw.dev.node_agents import (
    AgentPlacement,
    NodeAgents,
    dry_run_placements,
    networked_placements,
)
from egressgw.dev.node_network import (
    NodeNetwork,
    check_prefix,
    network_document,
    network_wanted,
)
from egressgw.dev.node_processes import NodeProcesses
from egressgw.dev.process_records import ProcessRecords
from egressgw.dev.restarts import Part, Restarter, pid_of
from egressgw.dev.temporal_server import TemporalDevServer, TemporalServerSettings
from egressgw.dev.trace_receiver import DevTraces
from sim.tls import ensure_ca
from sim.topology import Topology

if TYPE_CHECKING:
    from egressgw.dev.cni_managers import CniManagers
    from egressgw.dev.node_metadata import NodeMetadata
    from egressgw.dev.node_runtimes import NodeRuntimes
    from egressgw.dev.readiness import NodesWaiting
    from egressgw.dev.service_front import ServiceFront
    from sim.arm.server import ArmEmulator
    from sim.control_plane.cluster import ControlPlane
    from sim.fabric.plan import FabricPlan

CRD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "crds"
DEV_CLIENT_ID = "egressgw-dev"


# The dev stack's controller gives in-flight activities less time than a cluster's would: `dev
# down` should feel quick, and the activities are idempotent and resume on the next start.
CONTROLLER_GRACEFUL_SHUTDOWN = "5s"
CONTROLLER_STOP_TIMEOUT = 15.0
# How long `dev up` waits for the controller, the agents and the re-applied gateways.
SERVING_TIMEOUT = 90.0
GATEWAY_STATUSES_PATH = (
    f"/apis/{kube_names.GROUP_VERSION}/namespaces/{SYSTEM_NAMESPACE}/gatewaystatuses"
)


def endpoints_document(
    ports: DevPorts,
    paths: StatePaths,
    pid: int,
    temporal_pid: int | None,
    controller_pid: int | None = None,
    agent_pids: dict[str, int | None] | None = None,
    network_built: bool = False,
    kube_pids: dict[str, int | None] | None = None,
    node_runtime_pids: dict[str, int | None] | None = None,
    cni_manager_pids: dict[str, int | None] | None = None,
    egressgw: bool = True,
    ui: bool = True,
    restarts: dict[str, int] | None = None,
) -> dict[str, Any]:
    from egressgw.dev.service_front import (
        KUBERNETES_SERVICE_IP,
        KUBERNETES_SERVICE_PORT,
        SERVICES_IP,
    )

    return {
        "temporal_address": f"{LOCALHOST}:{ports.temporal}",
        "temporal_namespace": "default",
        # None: started --headless, no Web UI.
        "temporal_ui_url": f"http://{LOCALHOST}:{ports.temporal_ui}" if ui else None,
        "kube_api_url": f"https://{LOCALHOST}:{ports.kube_api}",
        "arm_url": f"https://{LOCALHOST}:{ports.arm}",
        "kubeconfig": str(paths.kubeconfig.resolve()),
        "azure_config": str(paths.azure_config.resolve()),
        "ca": str(paths.ca.resolve()),
        "ports": ports.named(),
        "pid": pid,
        "temporal_pid": temporal_pid,
        "controller_pid": controller_pid,
        "controller_log": str((paths.logs / "controller.log").resolve()),
        "agent_pids": agent_pids or {},
        "kube_pids": kube_pids or {},  # etcd, kube-apiserver, controller manager, scheduler
        "node_runtime_pids": node_runtime_pids or {},
        "cni_manager_pids": cni_manager_pids or {},
        # Every process started, restarts included (egressgw/dev/process_records.py).
        "processes": str(paths.process_records.resolve()),
        # How often each process was started again after it exited, by name.
        "restarts": restarts or {},
        "network": str(paths.network_file.resolve()),
        "network_built": network_built,
        # False: started with --no-egressgw (no controller, agents or CNI managers of its own).
        "egressgw": egressgw,
        # The same services as the node network's nodes and pods reach them (service_front.py).
        "from_nodes": (
            {
                "kube_api_url": f"https://{KUBERNETES_SERVICE_IP}:{KUBERNETES_SERVICE_PORT}",
                "temporal_address": f"{SERVICES_IP}:{ports.temporal}",
                "arm_url": f"https://{SERVICES_IP}:{ports.arm}",
            }
            if network_built
            else {}
        ),
    }


def controller_command(ports: DevPorts, paths: StatePaths) -> list[str]:
    """The controller as a cluster would run it, pointed at the stack's files."""
    return [
        sys.executable,
        "-m",
        "egressgw",
        "controller",
        "--cloud-config",
        str(paths.azure_config.resolve()),
        "--kubeconfig",
        str(paths.controller_kubeconfig.resolve()),
        "--azure-ca-file",
        str(paths.ca.resolve()),
        "--temporal-address",
        f"{LOCALHOST}:{ports.temporal}",
        "--temporal-namespace",
        "default",
        "--secret-namespace",
        SYSTEM_NAMESPACE,
        # Health is for a kubelet; the stack's six ports stay all it needs. Metrics on a free
        # port, which its log names ("metrics on port N").
        "--health-address",
        "off",
        "--metrics-address",
        f"{LOCALHOST}:0",
        "--graceful-shutdown",
        CONTROLLER_GRACEFUL_SHUTDOWN,
    ]


def azure_cloud_config(topology: Topology, arm_url: str, client_secret: str) -> dict[str, Any]:
    """A cloud config in the user-facing format, pointed at the ARM emulator."""
    return {
        "cloud": "AzureStackCloud",
        "resourceManagerEndpoint": arm_url,
        "tenantId": topology.tenant_id,
        "subscriptionId": topology.subscription_id,
        "aadClientId": DEV_CLIENT_ID,
        "aadClientSecret": client_secret,
        "useManagedIdentityExtension": False,
        # The emulator speaks the public-cloud API versions, like any current Azure Stack Hub.
        "disableAzureStackCloud": True,
        "location": topology.location,
        "resourceGroup": topology.resource_group,
        "loadBalancerResourceGroup": topology.resource_group,
        "vnetName": topology.vnet_name,
        "vnetResourceGroup": topology.resource_group,
        "subnetName": topology.gateway_subnet_name,
        "gatewayLoadBalancerName": "kubeegressgateway-ilb",
        "userAgent": "egressgw-dev",
    }


def _read_client_secret(paths: StatePaths) -> str:
    """Keep the dev service principal's secret across restarts of the same state dir."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        existing = json.loads(paths.azure_config.read_text())["aadClientSecret"]
        if isinstance(existing, str) and existing:
            return existing
    return secrets.token_urlsafe(24)


class DevStack:
    def __init__(
        self,
        options: DevOptions,
        topology: Topology | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options
        # Absolute: the processes' command lines name the state dir, which is how `dev down`
        # knows them when no record does (egressgw/dev/process_records.py).
        self.paths = StatePaths(options.state_dir.resolve())
        self.topology = topology or Topology()
        self.ports = resolve_ports(self.paths, options.port_base)
        self._progress = progress or (lambda _message: None)
        self.temporal: TemporalDevServer | None = None
        self.kube: ControlPlane | None = None
        self.arm: ArmEmulator | None = None
        self.controller: NodeProcesses | None = None
        self.network: NodeNetwork | None = None
        self.metadata: NodeMetadata | None = None
        self.agents: NodeAgents | None = None
        self.runtimes: NodeRuntimes | None = None
        self.traces: DevTraces | None = None  # --traces
        self.cni_managers: CniManagers | None = None
        self.service_front: ServiceFront | None = None
        self._gateway_placements: list[AgentPlacement] = []
        self._fabric_built = False
        self._started = False  # endpoints.json written: restarts rewrite its PIDs
        self.restarter = Restarter(
            ProcessRecords(self.paths.process_records),
            self._progress,
            on_restart=self._rewrite_endpoints,
        )

    async def start(self) -> dict[str, Any]:
        """Start everything and seed it; returns the endpoints document it also wrote."""
        paths = self.paths
        paths.root.mkdir(parents=True, exist_ok=True)
        paths.logs.mkdir(exist_ok=True)
        taken = busy_ports(self.ports)
        if taken:
            listing = ", ".join(f"{name} {port}" for name, port in taken)
            raise DevStackError(
                f"ports already in use: {listing}; stop what uses them, or pick other ports "
                "with --port-base N"
            )
        build_network, why_not = network_wanted(self.options.network, os.geteuid())
        prefix = check_prefix(self.options.net_prefix)
        write_json_atomic(paths.ports_file, self.ports.named())
        ensure_ca(paths.root)
        self.restarter.start()
        try:
            await self._launch_temporal()
            await self._start_kube()
            await self._start_arm()
            seed_nodes = await self._seed(networked=build_network)
            self._progress("waiting for Temporal to accept connections")
            assert self.temporal is not None
            placements = await self._ready_nodes(build_network, why_not, prefix)
            self._gateway_placements = placements
            run_egressgw = self.options.egressgw
            if self.network is not None:
                assert self.network.fabric is not None
                plan = self.network.fabric.plan
                await self._start_service_front(plan.router_netns)
                if not run_egressgw:
                    # What the chart's agents find on their nodes (createGatewayNetns: false).
                    await asyncio.to_thread(self.network.node_gateway_netns, placements)
                self._launch_node_runtimes(seed_nodes, plan)
                if run_egressgw:
                    self._launch_cni_managers(plan)
            if self.options.traces:
                self.traces = DevTraces(
                    paths, self._progress, usual_ports=self.options.port_base is None
                )
                await self.traces.start()
                self._watch_jaeger()
            if run_egressgw:
                self._launch_controller()
            self.agents = NodeAgents(
                placements if run_egressgw else [],
                self.ports,
                paths,
                self._progress,
                env=self._process_environment(),
            )
            self.agents.launch()
            for part in self.agents.parts():
                self.restarter.watch(part)
            if self.network is not None:
                assert self.arm is not None and self.network.fabric is not None
                self.network.follow(self.arm)
                from egressgw.dev.node_metadata import NodeMetadata

                self.metadata = NodeMetadata(self.topology, self.network.fabric.plan)
                await self.metadata.start()
            if run_egressgw:
                await self._wait_serving([p.node_name for p in placements])
            else:
                await self._wait_nodes_ready()
        except BaseException:
            await self.stop()
            raise
        fabric = self.network.fabric if self.network is not None else None
        self._fabric_built = fabric is not None
        assert self.agents is not None
        agents = self.agents.document()
        managers = self.cni_managers.document() if self.cni_managers is not None else {}
        write_json_atomic(
            paths.network_file,
            network_document(fabric, why_not, agents, paths.nodes_dir, managers),
        )
        document = self._endpoints()
        write_json_atomic(paths.endpoints, document)
        self._started = True
        return document

    def _endpoints(self) -> dict[str, Any]:
        """endpoints.json with the PIDs running now."""
        assert self.temporal is not None
        agents = self.agents.document() if self.agents is not None else {}
        managers = self.cni_managers.document() if self.cni_managers is not None else {}
        document = endpoints_document(
            self.ports,
            self.paths,
            os.getpid(),
            self.temporal.pid,
            self.controller.pid("controller") if self.controller is not None else None,
            {name: info["pid"] for name, info in agents.items()},
            network_built=self._fabric_built,
            kube_pids=self.kube.pids() if self.kube is not None else {},
            node_runtime_pids={
                name: info["pid"] for name, info in self._runtimes_document().items()
            },
            cni_manager_pids={name: info["pid"] for name, info in managers.items()},
            egressgw=self.options.egressgw,
            ui=self.options.ui,
            restarts=self.restarter.restarts(),
        )
        if self.traces is not None:
            document.update(self.traces.document())
        return document

    def _rewrite_endpoints(self) -> None:
        """After a restart: endpoints.json names the new PIDs (and counts the restarts)."""
        if self._started:
            write_json_atomic(self.paths.endpoints, self._endpoints())

    def _watch_jaeger(self) -> None:
        jaeger = self.traces.jaeger if self.traces is not None else None
        if jaeger is None:
            return

        def exited() -> int | None:
            return jaeger.process.poll() if jaeger.process is not None else None

        self.restarter.watch(Part("jaeger", pid_of(jaeger), exited, jaeger.launch, jaeger.log_path))

    def _process_environment(self) -> dict[str, str]:
        """The controller's and agents' environment: ours, plus where to send traces."""
        return {**os.environ, **(self.traces.environment() if self.traces else {})}

    async def _ready_nodes(
        self, build_network: bool, why_not: str, prefix: str
    ) -> list[AgentPlacement]:
        """Build the node network while Temporal finishes booting (root), or plan dry runs."""
        assert self.temporal is not None and self.arm is not None
        if not build_network:
            self._progress(
                f"{why_not}: the node network is not built; the gateway agents record what "
                f"they would do in {self.paths.agents_dir.resolve()}/<node>.jsonl"
            )
            await self.temporal.wait_ready()
            names = [node["metadata"]["name"] for node in gateway_nodes(self.topology, {})]
            return dry_run_placements(names, self.paths.agents_dir)
        self.network = NodeNetwork(prefix, self.paths.network_state, self.paths.nodes_dir)
        plan = self.network.plan_from(self.arm)
        placements = networked_placements(prefix, [(n.name, n.netns) for n in plan.gateway_nodes])
        self._progress(
            f"building the node network: {len(plan.nodes)} node namespaces behind "
            f"{plan.router_netns}, load balancer probes every 5 s, echo service at "
            f"{plan.echo_ip}:{plan.echo_port} in {plan.internet_netns}, outbound SNAT to "
            f"{plan.outbound_ip}"
        )
        results = await asyncio.gather(
            self.temporal.wait_ready(),
            self._build_network(plan, placements),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return placements

    async def _launch_temporal(self) -> None:
        self._progress(f"starting Temporal dev server on {LOCALHOST}:{self.ports.temporal}")
        self.temporal = TemporalDevServer(
            TemporalServerSettings(
                host=LOCALHOST,
                port=self.ports.temporal,
                http_port=self.ports.temporal_http,
                metrics_port=self.ports.temporal_metrics,
                ui_port=self.ports.temporal_ui if self.options.ui else None,
                db_file=self.paths.temporal_db,
                log_file=self.paths.logs / "temporal.log",
                search_attributes=search_attributes.registrations(),
            )
        )
        await self.temporal.launch()
        temporal = self.temporal
        self.restarter.watch(
            Part(
                "temporal",
                pid_of(temporal),
                temporal.exited,
                temporal.respawn,
                temporal.settings.log_file,
            )
        )

    async def _wait_serving(self, nodes: list[str]) -> None:
        """Until the controller and every agent poll their task queues and every node holds the
        gateways its configurations want (re-applied after a restart): `dev up` then reports
        ready, not before (egressgw/dev/readiness.py)."""
        from temporalio.client import Client

        from egressgw.dev.cni_managers import manager_answers, tainted_nodes
        from egressgw.dev.node_runtimes import ready_nodes
        from egressgw.dev.readiness import NodesWaiting, wait_serving

        assert self.temporal is not None and self.kube is not None
        kube = self.kube
        client = await Client.connect(self.temporal.address)

        async def read_gateway_statuses() -> list[Any]:
            listed = await kube.get_json(GATEWAY_STATUSES_PATH)
            return [item for item in listed.get("items", []) if isinstance(item, dict)]

        runtime_nodes = [p.spec.name for p in self.runtimes.placements] if self.runtimes else []
        sockets = (
            {p.node_name: p.socket_path for p in self.cni_managers.placements}
            if self.cni_managers
            else {}
        )

        async def nodes_waiting() -> NodesWaiting:
            if not runtime_nodes:
                return NodesWaiting()
            listed = await kube.get_json("/api/v1/nodes")
            items = listed.get("items", [])
            ready, tainted = ready_nodes(items), tainted_nodes(items)
            return NodesWaiting(
                not_ready=tuple(n for n in runtime_nodes if n not in ready),
                # A local socket: answered (or refused) within a millisecond.
                cni_not_installed=tuple(
                    node
                    for node, socket in sockets.items()
                    if node in tainted or not manager_answers(socket)
                ),
            )

        self._progress("waiting for the nodes, the controller and agents, and the nodes' gateways")
        report = await wait_serving(
            client,
            nodes,
            read_gateway_statuses,
            timeout=SERVING_TIMEOUT,
            progress=self._progress,
            nodes_waiting=nodes_waiting,
        )
        if not report.serving:
            raise DevStackError(
                f"the stack is not serving after {SERVING_TIMEOUT:.0f} s: still waiting for "
                f"{report.waiting_for()}; see the logs in {self.paths.logs.resolve()}"
            )

    async def _start_service_front(self, router_netns: str) -> None:
        from egressgw.dev.service_front import ServiceFront, relays

        front = ServiceFront(
            router_netns, relays(self.ports.kube_api, self.ports.temporal, self.ports.arm)
        )
        self.service_front = front
        await front.start()

    async def _wait_nodes_ready(self) -> None:
        """Without our own components: until every node's runtime has made its Node Ready (the
        regular nodes keep their cni-not-ready taint until a CNI manager is installed)."""
        from egressgw.dev.node_runtimes import ready_nodes

        assert self.kube is not None
        wanted = {p.spec.name for p in self.runtimes.placements} if self.runtimes else set()
        self._progress("waiting for the nodes to be Ready")
        deadline = asyncio.get_running_loop().time() + SERVING_TIMEOUT
        while True:
            listed = await self.kube.get_json("/api/v1/nodes")
            missing = wanted - ready_nodes(listed.get("items", []))
            if not missing:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise DevStackError(
                    f"the nodes {', '.join(sorted(missing))} are not Ready after "
                    f"{SERVING_TIMEOUT:.0f} s; see {self.paths.logs.resolve()}/node-*.log"
                )
            await asyncio.sleep(0.5)

    async def _build_network(self, plan: FabricPlan, placements: list[AgentPlacement]) -> None:
        from pyroute2 import NetlinkError

        assert self.network is not None
        try:
            await self.network.build(plan, placements)
        except (OSError, RuntimeError, subprocess.SubprocessError, NetlinkError) as err:
            raise DevStackError(
                f"building the node network failed: {err}; "
                "`egressgw dev up --network off` starts the stack without it"
            ) from err

    def _launch_controller(self) -> None:
        """Start the controller process and return at once: its imports and connections happen
        while `dev up --detach` already reports ready (it retries Temporal until it answers)."""
        log_path = self.paths.logs / "controller.log"
        self._progress(f"starting the controller (log {log_path})")
        self.controller = NodeProcesses(CONTROLLER_STOP_TIMEOUT)
        self.controller.start(
            "controller",
            controller_command(self.ports, self.paths),
            log_path,
            self._process_environment(),
        )
        self.restarter.watch(self.controller.part("controller", "controller"))

    async def _stop_controller(self) -> None:
        controller, self.controller = self.controller, None
        if controller is not None:
            await controller.stop()

    async def _start_kube(self) -> None:
        from sim.control_plane.binaries import kube_binaries
        from sim.control_plane.cluster import ControlPlane, ControlPlanePorts
        from sim.control_plane.kubeconfig import certificate_kubeconfig, write_kubeconfig

        # Built from the pinned Go modules on first use (minutes), cached afterwards.
        binaries = await asyncio.to_thread(kube_binaries)
        self._progress(
            f"starting Kubernetes (etcd, kube-apiserver on https://{LOCALHOST}:"
            f"{self.ports.kube_api}, controller manager, scheduler)"
        )
        self.kube = ControlPlane(
            self.paths.kube_state,
            ControlPlanePorts(self.ports.kube_api, self.ports.etcd, self.ports.etcd_peer),
            binaries,
            crd_dir=CRD_DIR,
            restart_exited=False,  # the restarter below restarts every process, with back-off
        )
        await self.kube.start()
        for process in self.kube.processes():
            self.restarter.watch(
                Part(
                    process.name,
                    pid_of(process),
                    process.exited,
                    process.start,
                    process.log,
                )
            )
        pki = self.kube.pki
        assert pki is not None
        write_kubeconfig(
            self.paths.kubeconfig,
            certificate_kubeconfig(
                self.kube.server,
                pki.ca,
                pki.admin.cert,
                pki.admin.key,
                namespace=self.topology.kube_namespace,
            ),
        )

    async def _start_arm(self) -> None:
        from sim.arm.server import ArmEmulator

        self._progress(
            f"starting Azure Resource Manager emulator on https://{LOCALHOST}:{self.ports.arm}"
        )
        from egressgw.dev.service_front import SERVICES_IP
        from sim.tls import DEFAULT_HOSTS

        self.arm = ArmEmulator(
            self.paths.arm_state,
            host=LOCALHOST,
            port=self.ports.arm,
            tls_dir=self.paths.root,
            # Pods and nodes dial it at the services address (egressgw/dev/service_front.py).
            tls_hosts=(*DEFAULT_HOSTS, SERVICES_IP),
        )
        await self.arm.start()

    def _launch_node_runtimes(self, seed_nodes: list[dict[str, Any]], plan: FabricPlan) -> None:
        from egressgw.dev.node_runtimes import NodeRuntimes, runtime_placements

        assert self.kube is not None
        self.runtimes = NodeRuntimes(
            runtime_placements(seed_nodes, plan, self.paths.nodes_dir),
            self.kube,
            self.paths,
            self._progress,
        )
        self.runtimes.launch()
        for part in self.runtimes.parts():
            self.restarter.watch(part)

    def _launch_cni_managers(self, plan: FabricPlan) -> None:
        from egressgw.dev.cni_managers import CniManagers, manager_placements
        from sim.control_plane.pki import SERVICE_CLUSTER_IP_RANGE

        self.cni_managers = CniManagers(
            manager_placements(
                [node.name for node in plan.regular_nodes], self.paths.nodes_dir, self.paths.root
            ),
            self.paths.cni_manager_kubeconfig,
            # What stays on a pod's eth0 under staticEgressGateway: the pods, the services,
            # the nodes (the whole VNet).
            (plan.pod_cidr, SERVICE_CLUSTER_IP_RANGE, self.topology.vnet_cidr),
            self.paths,
            self._progress,
        )
        self.cni_managers.launch()
        for part in self.cni_managers.parts():
            self.restarter.watch(part)

    def _runtimes_document(self) -> dict[str, dict[str, Any]]:
        return self.runtimes.document() if self.runtimes is not None else {}

    async def _seed(self, *, networked: bool) -> list[dict[str, Any]]:
        """Seed ARM and Kubernetes; returns the Nodes as AKS would have them. They are created
        here only when no node runtime will register them (no node network); with the node
        network the CNI managers get their ServiceAccount too."""
        from egressgw.dev.azure_inventory import node_ips
        from sim.control_plane.service_accounts import service_account_kubeconfig

        assert self.kube is not None and self.arm is not None
        self._progress(
            "seeding Azure: resource group, vnet, gateway VMSS and VM pools, a regular node pool, "
            "the outbound public IP"
        )
        self.arm.seed(self.topology)
        write_json_atomic(
            self.paths.azure_config,
            azure_cloud_config(self.topology, self.arm.url, _read_client_secret(self.paths)),
            mode=0o600,  # it holds the dev service principal's secret
        )
        self._progress(
            "seeding Kubernetes: namespaces, the controller's, agents' and CNI managers' "
            "ServiceAccounts and roles (deploy/rbac), labelled and tainted gateway nodes, "
            "regular nodes"
        )
        await self.kube.apply_objects(namespaces(self.topology))
        accounts = [
            service_account_kubeconfig(
                self.kube, "controller", SYSTEM_NAMESPACE, self.paths.controller_kubeconfig
            ),
            service_account_kubeconfig(
                self.kube, "agent", SYSTEM_NAMESPACE, self.paths.agent_kubeconfig
            ),
        ]
        if networked:
            accounts.append(
                service_account_kubeconfig(
                    self.kube, "cni-manager", SYSTEM_NAMESPACE, self.paths.cni_manager_kubeconfig
                )
            )
        await asyncio.gather(*accounts)
        ips = await node_ips(self.topology, self.paths.azure_config, self.paths.ca)
        nodes = gateway_nodes(self.topology, ips) + regular_nodes(self.topology, ips)
        if not networked:
            await self.kube.apply_objects(nodes)
        return nodes

    async def stop(self) -> None:
        # Reverse order of start; each part's stop is safe when it never started. Agents go
        # before their network (processes left in a namespace keep it alive), and before
        # Temporal (their workers shut down through it). Nothing is restarted from here on.
        await self.restarter.stop()
        await self._stop_controller()
        runtimes, self.runtimes = self.runtimes, None
        if runtimes is not None:
            await runtimes.stop()
        managers, self.cni_managers = self.cni_managers, None
        if managers is not None:
            await managers.stop()
        if self.network is not None:
            # What pods of a runtime that could not run their CNI DEL (it crashed) left.
            from egressgw.dev.pod_leftovers import remove_pod_namespaces, stop_pod_daemons

            if managers is not None:
                await asyncio.to_thread(
                    stop_pod_daemons, [p.plugin_state_dir for p in managers.placements]
                )
            await asyncio.to_thread(remove_pod_namespaces, self.network.prefix)
        agents, self.agents = self.agents, None
        if agents is not None:
            await agents.stop()
        traces, self.traces = self.traces, None
        if traces is not None:  # after the processes that send to it flushed their spans
            await traces.stop()
        metadata, self.metadata = self.metadata, None
        if metadata is not None:
            await metadata.stop()
        front, self.service_front = self.service_front, None
        if front is not None:
            await front.stop()
        network, self.network = self.network, None
        if network is not None:
            self._progress("removing the node network")
            # The gateway namespaces the stack made for the chart's agents go the same way.
            await network.stop(self._gateway_placements)
        if self.arm is not None:
            await self.arm.stop()
        if self.kube is not None:
            await self.kube.stop()
        if self.temporal is not None:
            await self.temporal.stop()
