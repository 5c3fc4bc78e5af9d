"""What the CNI manager keeps in place on its node besides the socket:

- the plugin executables in the CNI bin dir: small launcher scripts (`launcher_script`) that run
  this installation's interpreter on agent.cni.plugin / agent.cni.ipam with `-I -S` (isolated, no
  site: start-up time, and nothing from the runtime's environment or working directory);
- our conflist (conflist.py), written atomically and regenerated whenever the main one changes
  (the conf dir is polled: a few small reads per interval);
- the node's taint `egressgateway.kubernetes.azure.com/cni-not-ready`, removed once both are
  installed, and looked at again every `taint_check_interval` (at the next poll when the look
  failed, e.g. before the node has registered its Node);
- on stop, our conflist removed only when the uninstall ConfigMap says `uninstall: "true"` (the
  launchers stay: pods set up by the plugin still need it for their DEL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

import agent
from agent.cni import conflist
from agent.cni.manager_events import (
    INSTALL,
    REGENERATE,
    UNINSTALL,
    ManagerObserver,
    Unobserved,
)
from agent.cni.manager_settings import ManagerSettings, conf_entry
from contracts import kube_names
from kubeclient.errors import TRANSPORT_ERRORS, ApiErrorKind, api_failure, is_conflict
from kubeclient.patch_types import MERGE_PATCH

log = logging.getLogger(__name__)

PLUGINS: Final = {
    kube_names.CNI_PLUGIN_TYPE: "agent.cni.plugin",
    kube_names.CNI_IPAM_TYPE: "agent.cni.ipam",
}
TAINT_ATTEMPTS: Final = 5
UNINSTALL_ATTEMPTS: Final = 3
_SHEBANG_MAX: Final = 255  # Linux's limit for the interpreter line
# Why removing the taint can fail this time (tried again at the next check).
_TAINT_ERRORS: Final[tuple[type[BaseException], ...]] = (
    ApiException,
    *TRANSPORT_ERRORS,
    RuntimeError,
)


def source_root() -> str:
    """The directory holding the `agent` and `contracts` packages (the checkout for an editable
    install, site-packages otherwise): all a launcher puts on sys.path, since the plugins import
    the standard library and these packages only."""
    return str(Path(agent.__file__).resolve().parent.parent)


def launcher_script(command: str, module: str, *, python: str, root: str) -> str:
    shebang = f"#!{python} -IS"
    if len(shebang) > _SHEBANG_MAX or any(c.isspace() for c in python):
        raise ValueError(f"interpreter path {python!r} cannot be used in a #! line")
    return (
        f"{shebang}\n"
        f"# {command}: installed by egressgw cni-manager; runs {module} from {root}.\n"
        "import sys\n"
        f"sys.path.insert(0, {root!r})\n"
        f"from {module} import main\n"
        "sys.exit(main())\n"
    )


def write_if_changed(path: Path, text: str, mode: int) -> bool:
    """Atomically (temporary file, rename) replace `path` when its content differs."""
    try:
        if path.read_text() == text and (path.stat().st_mode & 0o777) == mode:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.chmod(mode)
    temporary.replace(path)
    return True


@dataclass(frozen=True)
class ConflistState:
    installed: bool  # our conflist is in place for the current main configuration
    changed: bool  # this sync wrote it
    problem: str = ""  # why it is not installed (no main configuration, unreadable one)


class NodeInstaller:
    def __init__(
        self,
        settings: ManagerSettings,
        api: ApiClient,
        *,
        python: str = sys.executable,
        observer: ManagerObserver | None = None,
    ) -> None:
        self._settings = settings
        self._observer: ManagerObserver = observer or Unobserved()
        self._ever_installed = False
        self._api = api
        self._core = CoreV1Api(api)
        self._python = python
        self._own = settings.conf_dir / settings.conf_file
        self._last_problem = ""

    # --- files (blocking: run in a thread) ---------------------------------------------------

    def install_plugins(self) -> list[str]:
        """Write the launchers; the names of those that changed."""
        self._settings.bin_dir.mkdir(parents=True, exist_ok=True)
        root = source_root()
        changed = []
        for command, module in PLUGINS.items():
            text = launcher_script(command, module, python=self._python, root=root)
            if write_if_changed(self._settings.bin_dir / command, text, 0o755):
                changed.append(command)
        return changed

    def sync_conflist(self) -> ConflistState:
        conf_dir = self._settings.conf_dir
        try:
            names = [entry.name for entry in os.scandir(conf_dir) if entry.is_file()]
        except FileNotFoundError:
            names = []
        main = conflist.main_conf_name(names, self._settings.conf_file)
        if main is None:
            return self._problem(f"no main CNI configuration in {conf_dir} yet")
        try:
            text = (conf_dir / main).read_text()
            document = conflist.render(main, text, conf_entry(self._settings))
        except FileNotFoundError:
            return self._problem(f"{main} disappeared while being read")
        except conflist.ConflistError as err:
            return self._problem(str(err))
        if main < self._settings.conf_file:
            log.warning(
                "%s sorts before %s: runtimes that take the first file will not use ours",
                main,
                self._settings.conf_file,
            )
        try:
            changed = write_if_changed(self._own, conflist.render_text(document), 0o644)
        except OSError as err:
            return self._problem(f"cannot write {self._own}: {err}")
        if changed:
            log.info("wrote %s from %s", self._own, main)
        self._last_problem = ""
        self._ever_installed = True
        return ConflistState(installed=True, changed=changed)

    def _problem(self, problem: str) -> ConflistState:
        """Logged, and counted as a failed install (before ours was ever written) or
        regeneration, once per distinct problem: the conf dir is polled every second."""
        if problem != self._last_problem:
            log.warning("CNI configuration not installed: %s", problem)
            self._last_problem = problem
            self._observer.cni_config_failed(REGENERATE if self._ever_installed else INSTALL)
        return ConflistState(installed=self._own.exists(), changed=False, problem=problem)

    def remove_conflist(self) -> bool:
        try:
            self._own.unlink()
        except FileNotFoundError:
            return False
        except OSError:
            self._observer.cni_config_failed(UNINSTALL)
            raise
        log.info("removed %s", self._own)
        return True

    # --- the API server --------------------------------------------------------------------------

    async def remove_taint(self) -> bool:
        """Remove the not-ready taint from this node; True when it was there."""
        name = self._settings.node_name
        for _ in range(TAINT_ATTEMPTS):
            node = await self._core.read_node(name)
            taints = list(node.spec.taints or []) if node.spec else []
            kept = [t for t in taints if t.key != kube_names.CNI_NOT_READY_TAINT_KEY]
            if len(kept) == len(taints):
                return False
            serialize = self._api.sanitize_for_serialization
            body: dict[str, Any] = {
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "spec": {"taints": [serialize(t) for t in kept] or None},
            }
            try:
                await self._core.patch_node(name, body, **MERGE_PATCH)
            except ApiException as exc:
                if is_conflict(exc):
                    continue  # the node changed since it was read: read it again
                raise
            log.info("removed taint %s from node %s", kube_names.CNI_NOT_READY_TAINT_KEY, name)
            return True
        raise RuntimeError(f"node {name} kept changing while its taint was being removed")

    async def uninstall_requested(self) -> bool:
        """The uninstall ConfigMap exists and says uninstall: "true" (absent: keep)."""
        settings = self._settings
        for attempt in range(1, UNINSTALL_ATTEMPTS + 1):
            try:
                found = await self._core.read_namespaced_config_map(
                    settings.uninstall_configmap, settings.namespace
                )
            except ApiException as exc:
                failure = api_failure(exc)
                if failure.kind is ApiErrorKind.NOT_FOUND:
                    return False
                if failure.kind is not ApiErrorKind.UNAVAILABLE or attempt == UNINSTALL_ATTEMPTS:
                    log.warning(
                        "cannot read ConfigMap %s/%s (%s): keeping the CNI configuration",
                        settings.namespace,
                        settings.uninstall_configmap,
                        failure.describe(),
                    )
                    return False
            except TRANSPORT_ERRORS as exc:
                if attempt == UNINSTALL_ATTEMPTS:
                    log.warning("cannot read the uninstall ConfigMap (%s): keeping", exc)
                    return False
            else:
                data: Mapping[str, str] = found.data or {}
                return data.get(kube_names.CNI_UNINSTALL_KEY) == "true"
            await asyncio.sleep(1.0)
        return False

    # --- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, installed: asyncio.Event) -> None:
        """Keep launchers and conflist in place until `stop`; `installed` is set once both are
        (and the taint handled)."""
        settings = self._settings
        if settings.install_plugins:
            changed = await asyncio.to_thread(self.install_plugins)
            if changed:
                log.info("installed %s into %s", ", ".join(changed), settings.bin_dir)
        loop = asyncio.get_running_loop()
        next_taint_check = 0.0
        while not stop.is_set():
            state = await asyncio.to_thread(self.sync_conflist)
            if state.installed:
                installed.set()
                if state.changed or loop.time() >= next_taint_check:
                    looked = await self._remove_taint_logged()
                    # A look that failed (the Node not registered yet, the API server away) is
                    # tried again at the next poll: pods wait for the taint to go.
                    wait = settings.taint_check_interval if looked else settings.poll_interval
                    next_taint_check = loop.time() + wait
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.poll_interval)

    async def _remove_taint_logged(self) -> bool:
        """Whether the node could be looked at (and the taint, if there, removed)."""
        try:
            await self.remove_taint()
        except _TAINT_ERRORS as exc:
            self._observer.node_taint_failed(self._settings.node_name)
            # Tried again at the next check; pods wait for the taint, nothing breaks meanwhile.
            detail = api_failure(exc).describe() if isinstance(exc, ApiException) else f"{exc}"
            log.warning("could not remove the node's not-ready taint: %s", detail)
            return False
        return True

    async def uninstall_if_requested(self) -> bool:
        if await self.uninstall_requested():
            return self.remove_conflist()
        log.info("keeping %s (no uninstall requested)", self._own)
        return False
