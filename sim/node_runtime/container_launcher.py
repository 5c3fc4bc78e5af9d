"""Starts one container's process: `python -I -S container_launcher.py SPEC`.

It joins the pod's network namespace (setns), makes a private mount namespace when the container
mounts volumes (unshare, / made rprivate so nothing propagates back to the host), bind-mounts each
volume at its mountPath (read-only ones remounted so), changes to the working directory and execs
the command: the container's process is this process, so its pid is what the runtime tracks.

It runs once per container start, so it starts fast: `-I -S`, no package imports, not even json,
typing or pathlib (20 ms of imports between them): the spec is a `marshal` dump of the same
interpreter (launch_spec.LaunchSpec.to_json()). Python 3.11 has no os.setns/os.unshare, so they
come from libc through ctypes. Failures
print one `egressgw-launcher:` line to stderr (the container's log) and exit 127 (command not
found), 126 (not executable) or 128 (namespace or mount setup).
"""

from __future__ import annotations

import ctypes
import marshal
import os
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000


class LaunchError(Exception):
    def __init__(self, message: str, code: int = 128) -> None:
        super().__init__(message)
        self.code = code


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise LaunchError(f"{what}: {os.strerror(err)}")


def join_netns(libc: ctypes.CDLL, path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(libc.setns(fd, CLONE_NEWNET), f"setns {path}")
    finally:
        os.close(fd)


def _make_mount_point(target: str, is_file: bool) -> None:
    """A missing mount point is created on the host (an empty directory or file); it is shared
    by every container that mounts something there."""
    # os.path, not pathlib: pathlib costs 4 ms to import here.
    if os.path.lexists(target):
        return
    os.makedirs(os.path.dirname(target) or "/", exist_ok=True)  # noqa: PTH103, PTH120
    if is_file:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
    else:
        os.makedirs(target, exist_ok=True)  # noqa: PTH103


def bind_mounts(libc: ctypes.CDLL, mounts: list[dict[str, object]]) -> None:
    _check(libc.unshare(CLONE_NEWNS), "unshare mount namespace")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / rprivate")
    # Every source is opened before the first mount (in the new namespace: a bind source must
    # be a mount of the caller's): a volume mounted over a directory that holds another
    # volume's source (an emptyDir at /tmp while the runtime's state dir is under /tmp) would
    # otherwise hide that source from the binds after it.
    sources = []
    for mount in mounts:
        source = str(mount["source"])
        try:
            fd = os.open(source, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            raise LaunchError(f"mount source {source} does not exist") from None
        sources.append((fd, source))
    for mount, (fd, source) in zip(mounts, sources, strict=True):
        target = str(mount["target"])
        _make_mount_point(target, not os.path.isdir(f"/proc/self/fd/{fd}"))  # noqa: PTH112
        _check(
            libc.mount(
                f"/proc/self/fd/{fd}".encode(), target.encode(), None, MS_BIND | MS_REC, None
            ),
            f"bind {source} at {target}",
        )
        os.close(fd)
        if mount.get("readOnly"):
            _check(
                libc.mount(None, target.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY, None),
                f"remount {target} read-only",
            )


def launch(spec: dict[str, object]) -> None:
    libc = _libc()
    if spec.get("netns"):
        join_netns(libc, str(spec["netns"]))
    mounts = spec.get("mounts")
    if isinstance(mounts, list) and mounts:
        bind_mounts(libc, mounts)
    cwd = str(spec.get("cwd") or "/")
    try:
        os.chdir(cwd)
    except OSError as err:
        raise LaunchError(f"workingDir {cwd}: {err.strerror}") from None
    argv_in, env_in = spec["argv"], spec["env"]
    assert isinstance(argv_in, list) and isinstance(env_in, dict)
    argv = [str(a) for a in argv_in]
    env = {str(k): str(v) for k, v in env_in.items()}
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; the command must not
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        raise LaunchError(f'exec: "{argv[0]}": executable file not found in $PATH', 127) from None
    except PermissionError:
        raise LaunchError(f'exec: "{argv[0]}": permission denied', 126) from None


def main() -> None:
    try:
        with open(sys.argv[1], "rb") as f:
            spec = marshal.load(f)
        launch(spec)
    except LaunchError as err:
        print(f"egressgw-launcher: {err}", file=sys.stderr, flush=True)
        sys.exit(err.code)
    except (OSError, ValueError, KeyError, IndexError) as err:
        print(f"egressgw-launcher: {err!r}", file=sys.stderr, flush=True)
        sys.exit(128)


if __name__ == "__main__":
    main()
