"""How the process runtime starts a container: the process chain, built from util-linux and ``sh``.

Isolated (root, Linux)::

    nsenter --uts=<pod> --ipc=<pod> [--net=<pod netns>] --     the shim: our child, its own session,
      unshare --pid --mount --propagation=private --wd=<dir> -- outside the container's cgroups
        sh -c SHIM <exit file>                                  (one process: each execs the next)
          sh -c INIT <mount> /proc <bind mounts> <cgroup.procs files> <env fixes>
            <command>                                           PID 1 of the new pid namespace:
                                                                mounts /proc and the bind mounts,
                                                                joins the cgroups, reports ready on
                                                                fd 3, execs

``unshare`` without ``--fork`` puts the shim's first child, and only it, into the new pid namespace as
PID 1; the shim waits for it and writes its exit code (``128 + signal`` when killed) to a file, so a
runtime that restarted meanwhile still learns how the container ended.  (``unshare --fork`` cannot
report a child killed by SIGKILL: it exits 1.)  Every process of the container is PID 1 or a
descendant, in the container's cgroups from before the command runs (nothing escapes), and dies with
PID 1 (the kernel kills a pid namespace whose init exits).

Unisolated::

    sh -c SHIM <exit file>  setsid unshare --wd=<dir> --  sh -c INIT "" "" 0 <env fixes>  <command>

The command leads its own session and process group, which is what stopping signals.

The ready report on fd 3 closes a race: `start_container` returns only after PID 1 is in its cgroups,
so a stop that follows at once kills everything.  ``sh`` exports ``PWD``/``OLDPWD``; INIT removes
them again unless the container's environment sets them.

Isolated containers without a `rootfs` run in a root of their own built by INIT in their private mount
namespace (``--propagation=private``): the host's / as a copy-on-write overlay with /proc new and /sys,
/dev, /tmp and the host's other file systems bound (`containerroot`); their `ContainerConfig.mounts` go
in there, missing targets created in the overlay, and ``unshare --root`` enters it before the ready
report.  So a container never changes the host's files outside its mounts and shared directories.
Cost, measured here: start ≈ 26 ms instead of ≈ 12 ms (five more small execs).

In a `rootfs`, bind mounts are made by INIT one by one inside the container's own mount namespace, so
none of them is seen on the host; a read-only one is remounted ``ro,bind`` at once.
They apply in order (a later mount may sit inside an earlier one); a
missing source or target ends the start with a message saying which.  Unisolated containers share the
host's mount namespace: mounts cannot be honoured there and are ignored (the runtime's isolation note
says so).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubelite.agent.runtime import containerroot
from kubelite.agent.runtime.interface import ContainerConfig, StartError

__all__ = [
    "DEFAULT_PATH",
    "Tools",
    "check_mounts",
    "check_startable",
    "container_argv",
    "container_environment",
    "exec_argv",
    "mount_targets",
    "read_ready",
    "spawn",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # containerd's default

# $1 = exit-code file; the rest is the command.  Runs the command, records its exit code, exits with it.
# The shim's own stderr goes to /dev/null (sh reports "Killed" for a child killed by a signal), the
# command's to the container's stderr; the subshell makes the command's redirection its own (sh would
# apply it to itself while it waits and report there).
SHIM_SCRIPT = """f=$1; shift
exec 4>&2 2>/dev/null
( exec "$@" 2>&4 4>&- )
c=$?
echo "$c" > "$f"
exit "$c"
"""

# $1 = mount program, $2 = where to mount a new /proc ("" = do not), or ``+<mount dir>`` to build the
# container a root of its own there (see `containerroot`).  With a root: $1 = mkdir program, $2 = the root's fstab,
# $3 = the mounts' fstab, $4 = the working directory inside the root, $5 = j, then j file targets to create.
# Then $1 = k, then k triples (source, target, "ro" or "rw") to bind-mount one by one (a rootfs); $1 = n,
# then n cgroup.procs files; $1 = m, then m NAME=VALUE to export; then the command.  Messages go to the
# container's stderr, which a failed start reports.
INIT_SCRIPT = """m=$1; p=$2; shift 2
case $p in +*) r=${p#+} ;; *) r= ;; esac
if [ -n "$r" ]; then
  d=$1; f=$2; g=$3; w=$4; j=$5; shift 5
  "$m" -t tmpfs -o mode=755 tmpfs "$r" || { echo "container root: tmpfs on $r failed" >&2; exit 125; }
  "$d" "$r/upper" "$r/work" "$r/root" || exit 125
  printf '%s\\n' "$f" > "$r/fstab" || exit 125
  "$m" -a -T "$r/fstab" || { echo "container root: mounting the host's file systems failed" >&2; exit 125; }
  while [ "$j" -gt 0 ]; do
    if [ ! -e "$1" ]; then
      [ -d "${1%/*}" ] || "$d" -p "${1%/*}" || exit 125
      : > "$1" || { echo "mount target ${1#$r/root} cannot be created" >&2; exit 125; }
    fi
    shift; j=$((j - 1))
  done
  if [ -n "$g" ]; then
    printf '%s\\n' "$g" > "$r/mounts" || exit 125
    "$m" -a -T "$r/mounts" || { echo "bind mounts into the container failed" >&2; exit 125; }
  fi
  [ -d "$w" ] || "$d" -p "$w" || exit 125
elif [ -n "$p" ]; then "$m" -t proc -o nosuid,nodev,noexec proc "$p" || exit 125; fi
n=$1; shift
while [ "$n" -gt 0 ]; do
  if [ ! -e "$1" ]; then echo "mount source $1 does not exist" >&2; exit 125; fi
  if [ ! -e "$2" ]; then echo "mount target $2 does not exist in the container" >&2; exit 125; fi
  "$m" --bind "$1" "$2" || { echo "bind mount of $1 on $2 failed" >&2; exit 125; }
  if [ "$3" = ro ]; then "$m" -o remount,bind,ro "$2" || { echo "read-only remount of $2 failed" >&2; exit 125; }; fi
  shift 3; n=$((n - 1))
done
n=$1; shift
while [ "$n" -gt 0 ]; do echo 0 > "$1" || exit 125; shift; n=$((n - 1)); done
unset PWD OLDPWD
n=$1; shift
while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n - 1)); done
if [ -z "$r" ]; then echo $$ >&3 && exec 3>&-; fi
exec "$@"
"""

# In a container root: run (by ``unshare --root --wd``) inside it, so that an exec right after the
# start never finds PID 1 still outside.  $1 = m, then m NAME=VALUE to export; then the command.
ROOTED_SCRIPT = """unset PWD OLDPWD
n=$1; shift
while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n - 1)); done
echo $$ >&3 && exec 3>&-
exec "$@"
"""

# Change to a directory, then run the command: $1 = working dir (inside a rootfs, after chroot).
CHROOT_SCRIPT = """cd "$1" || exit 125
shift
unset PWD OLDPWD
exec "$@"
"""

# $1 = n, then n cgroup.procs files; then the command (exec into a running container).
JOIN_SCRIPT = """n=$1; shift
while [ "$n" -gt 0 ]; do echo 0 > "$1" || exit 126; shift; n=$((n - 1)); done
exec "$@"
"""

# Signals whose disposition Python changes (SIGPIPE ignored) or a daemon may have inherited ignored.
RESET_SIGNALS = (
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


@dataclass(frozen=True, slots=True)
class Tools:
    """Absolute paths of the host programs the chain uses (``None``: not installed)."""

    sh: str
    unshare: str | None
    nsenter: str | None
    setsid: str | None
    chroot: str | None
    mount: str | None
    mkdir: str | None = None

    @classmethod
    def find(cls) -> Tools:
        search = os.pathsep.join([os.environ.get("PATH", ""), DEFAULT_PATH])
        return cls(
            sh=shutil.which("sh", path=search) or "/bin/sh",
            unshare=shutil.which("unshare", path=search),
            nsenter=shutil.which("nsenter", path=search),
            setsid=shutil.which("setsid", path=search),
            chroot=shutil.which("chroot", path=search),
            mount=shutil.which("mount", path=search),
            mkdir=shutil.which("mkdir", path=search),
        )


def init_args(
    procs_files: Sequence[Path],
    env: Mapping[str, str],
    *,
    mount: str = "",
    proc: str = "",
    binds: Sequence[tuple[str, str, bool]] = (),
    root: Sequence[str] = (),
) -> list[str]:
    """INIT's arguments before the command; `binds` are (source, target as the host sees it, readonly),
    mounted one by one; `root` is ``(mount dir, mkdir, root fstab, mounts fstab, working dir, *files)``
    for a container root of its own (`containerroot`)."""
    restore = [f"{name}={env[name]}" for name in ("PWD", "OLDPWD") if name in env]
    triples = [part for source, target, ro in binds for part in (source, target, "ro" if ro else "rw")]
    root_args = [*root[1:5], str(len(root) - 5), *root[5:]] if root else []
    return [
        mount,
        f"+{root[0]}" if root else proc,
        *root_args,
        str(len(binds)),
        *triples,
        str(len(procs_files)),
        *map(str, procs_files),
        str(len(restore)),
        *restore,
    ]


def mount_targets(config: ContainerConfig) -> list[tuple[str, str, bool]]:
    """(source, target, readonly) for each of the config's mounts, the target resolved in its rootfs."""
    root = Path(config.rootfs) if config.rootfs is not None else Path("/")
    return [(m.host_path, str(root / m.container_path.lstrip("/")), m.readonly) for m in config.mounts]


def check_mounts(config: ContainerConfig) -> None:
    """Refuse, before spawning, a mount whose source is missing, or whose target is not of the
    source's kind (a directory on a file).  In a `rootfs` a target must exist unless it is inside an
    earlier mount (there INIT checks it, once the earlier mount is in place); in the container root
    built from the host's (`containerroot`) a missing target is created.  Raises `StartError`."""
    earlier: list[str] = []
    for mount, (source, target, _) in zip(config.mounts, mount_targets(config), strict=True):
        if not mount.container_path.startswith("/"):
            raise StartError(f"mount target {mount.container_path!r} is not an absolute path")
        if not os.path.exists(source):
            raise StartError(f"mount source {source} does not exist on the node")
        nested = any(target == e or target.startswith(e.rstrip("/") + "/") for e in earlier)
        if not nested and not os.path.exists(target) and config.rootfs is None:
            earlier.append(target)
            continue
        if not nested and not os.path.exists(target):
            raise StartError(f"mount target {mount.container_path} does not exist in the container")
        if not nested and os.path.isdir(source) != os.path.isdir(target):
            kind = "directory" if os.path.isdir(source) else "file"
            raise StartError(f"mount of {kind} {source} on {mount.container_path}: not a {kind}")
        earlier.append(target)


def _high(fd: int) -> int:
    """A close-on-exec duplicate of `fd` numbered ≥ 10, so ``dup2`` onto 0–3 never collides."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)


def _inherited_fds() -> list[int]:
    """Descriptors above 2 that an exec would pass on: ones this process inherited from whoever
    started it (Python opens its own close-on-exec)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for name in names:
        fd = int(name)
        with contextlib.suppress(OSError):
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
    return found


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdin: int,
    stdout: int,
    stderr: int,
    ready_fd: int | None = None,
    new_session: bool = True,
) -> int:
    """Start `argv` (``argv[0]`` an absolute path) with the given descriptors as 0, 1, 2 (and
    `ready_fd` as 3) and no other, default signal dispositions and an empty signal mask.  Returns the
    pid; the caller reaps it."""
    sources = [stdin, stdout, stderr] + ([ready_fd] if ready_fd is not None else [])
    copies = [_high(fd) for fd in sources]
    try:
        actions: list[tuple[int, ...]] = [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds()]
        actions += [(os.POSIX_SPAWN_DUP2, copy, target) for target, copy in enumerate(copies)]
        return os.posix_spawn(
            argv[0],
            list(argv),
            dict(env),
            file_actions=actions,
            setsid=new_session,
            setsigdef=RESET_SIGNALS,
            setsigmask=(),
        )
    finally:
        for copy in copies:
            os.close(copy)


def read_ready(fd: int, timeout: float) -> str | None:
    """The line the container's INIT writes to fd 3 once it is in its cgroups; ``None`` if the
    descriptor reaches end of file first (INIT failed).  Raises `TimeoutError`.  Blocking."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the container did not report ready")
        if not poller.poll(remaining * 1000):
            continue
        with contextlib.suppress(BlockingIOError):
            chunk = os.read(fd, 256)
            if not chunk:
                return None
            data += chunk
    return data.split(b"\n", 1)[0].decode()


def container_environment(config: ContainerConfig, *, hostname: str, home: str) -> dict[str, str]:
    """The container's environment: what a container runtime adds (``PATH``, ``HOSTNAME``, ``HOME``,
    ``TERM`` with a tty), overridden by the container's own variables."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, "HOME": home}
    if config.tty:
        env["TERM"] = "xterm"
    env.update(config.env)
    return env


def check_startable(config: ContainerConfig, env: Mapping[str, str]) -> None:
    """Refuse, before spawning anything, what runc would refuse: a missing working directory or
    executable (worded as runc words it).  Raises `StartError`."""
    if config.rootfs is not None:
        if not (Path(config.rootfs) / "bin" / "sh").exists():
            raise StartError(f"rootfs {config.rootfs} has no /bin/sh")
        return
    working_dir = config.working_dir or "/"
    inside_mount = any(_under(working_dir, m.container_path) for m in config.mounts)
    if not inside_mount and not os.path.isdir(working_dir):
        raise StartError(f'chdir to cwd ("{working_dir}") set in config.json failed: no such file or directory')
    command = config.command[0]
    if "/" in command:
        candidates = [os.path.join(working_dir, command)]
    else:
        candidates = [os.path.join(working_dir, d or ".", command) for d in env.get("PATH", "").split(":")]
    if inside_mount and "/" in command:
        return  # on a volume: only the container sees it
    if not any(os.path.isfile(c) and os.access(c, os.X_OK) for c in candidates):
        raise StartError(f'exec: "{command}": executable file not found in $PATH')


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def root_mount_dir(exit_file: Path) -> Path:
    """The runtime's one directory every container mounts its root's tmpfs on (in its own mount
    namespace): ``<runtime root>/container-root``, beside ``containers/<id>/exit``."""
    return exit_file.parent.parent.parent / "container-root"


def container_argv(
    tools: Tools,
    config: ContainerConfig,
    *,
    isolated: bool,
    exit_file: Path,
    env: Mapping[str, str],
    namespaces: Mapping[str, str] | None = None,
    netns_path: str | None = None,
    procs_files: Sequence[Path] = (),
) -> list[str]:
    """The whole chain (module docstring) for `config`; `namespaces` maps kind → file to join."""
    working_dir = config.working_dir or "/"
    command = list(config.command)
    shim = [tools.sh, "-c", SHIM_SCRIPT, "sh", str(exit_file)]
    if not isolated:
        chdir = (
            [tools.unshare, f"--wd={working_dir}", "--"]
            if tools.unshare
            else [tools.sh, "-c", CHROOT_SCRIPT, "sh", working_dir]
        )
        init = [tools.sh, "-c", INIT_SCRIPT, "sh", *init_args([], env)]
        return [*shim, *([tools.setsid] if tools.setsid else []), *chdir, *init, *command]
    if tools.nsenter is None or tools.unshare is None or tools.mount is None:
        raise StartError("nsenter, unshare and mount (util-linux) are needed to isolate containers")
    enter = [f"--{kind}={path}" for kind, path in (namespaces or {}).items()]
    if netns_path:
        enter.append(f"--net={netns_path}")
    unshare = [tools.unshare, "--pid", "--mount", "--propagation=private"]
    proc = "/proc"
    root: list[str] = []
    binds = mount_targets(config)
    if config.rootfs is None and tools.mkdir is not None:
        mount_dir = root_mount_dir(exit_file)
        mount_dir.mkdir(parents=True, exist_ok=True)
        new_root = f"{mount_dir}/root"
        mounts, files = containerroot.bind_fstab(
            new_root, [(m.host_path, m.container_path, m.readonly) for m in config.mounts]
        )
        root = [
            str(mount_dir),
            tools.mkdir,
            containerroot.root_fstab(str(mount_dir)),
            mounts,
            new_root + working_dir.rstrip("/"),
            *files,
        ]
        binds, proc = [], ""
        restore = [f"{name}={env[name]}" for name in ("PWD", "OLDPWD") if name in env]
        rooted = [tools.sh, "-c", ROOTED_SCRIPT, "sh", str(len(restore)), *restore]
        command = [tools.unshare, f"--root={new_root}", f"--wd={working_dir}", "--", *rooted, *command]
    elif config.rootfs is not None:
        if tools.chroot is None:
            raise StartError("chroot (coreutils) is needed to run in a rootfs")
        proc = str(Path(config.rootfs) / "proc")
        command = [tools.chroot, config.rootfs, "/bin/sh", "-c", CHROOT_SCRIPT, "sh", working_dir, *command]
    else:
        unshare.append(f"--wd={working_dir}")
    args = init_args(procs_files, env, mount=tools.mount, proc=proc, binds=binds, root=root)
    init = [tools.sh, "-c", INIT_SCRIPT, "sh", *args]
    prefix = [tools.nsenter, *enter, "--"] if enter else []
    return [*prefix, *unshare, "--", *shim, *init, *command]


def exec_argv(
    tools: Tools,
    command: Sequence[str],
    *,
    isolated: bool,
    target_pid: int | None,
    working_dir: str,
    procs_files: Sequence[Path] = (),
    tty: bool = False,
) -> list[str]:
    """A command in a running container: join its cgroups, then enter its namespaces (its root and
    working directory) through its PID 1; with `tty`, the terminal on fd 0 becomes the controlling
    terminal of a new session."""
    ctty = [tools.setsid, "-c"] if tty and tools.setsid else []
    if not isolated:
        return [*ctty, tools.sh, "-c", CHROOT_SCRIPT, "sh", working_dir or "/", *command]
    if tools.nsenter is None or target_pid is None:
        raise StartError("cannot enter the container")
    join = [tools.sh, "-c", JOIN_SCRIPT, "sh", str(len(procs_files)), *map(str, procs_files)]
    enter = ["--pid", "--mount", "--uts", "--ipc", "--net", "--root", "--wd"]
    return [*join, *ctty, tools.nsenter, f"--target={target_pid}", *enter, "--", *command]
