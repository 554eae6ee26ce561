"""`vla-edge bringup`: the launch files' job where `ros2 launch` is not installed.

In-process (default): the nodes composed in one process, one executor thread per node.
`--processes`: each node executable in its own process (`vla_node`, `chunk_executor`,
`watchdog_node`, `sim`), with the same parameter files passed as `--ros-args --params-file`, as
`ros2 launch` would. The watchdog stands between command_raw and the robot's command unless
`with_watchdog` is False (then the sim robot listens to command_raw).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

STOP_WAIT_S = 5.0   # per node after its SIGINT, then SIGKILL (ros2 launch: SIGTERM at 5 s)


def parse_overrides(items: list[str]) -> dict[str, dict[str, object]]:
    """['chunk_executor.mode=sync', ...] -> {'chunk_executor': {'mode': 'sync'}}."""
    import yaml

    from vla_edge.core.errors import one_line
    from vla_edge.nodes.param_files import yaml_loader

    out: dict[str, dict[str, object]] = {}
    for item in items:
        key, sep, value = item.partition('=')
        node, dot, param = key.partition('.')
        if not sep or not dot or not param:
            raise ValueError(f'override {item!r} must look like NODE.PARAM=VALUE')
        try:
            parsed = yaml.load(value, Loader=yaml_loader())
        except yaml.YAMLError as exc:
            raise ValueError(f'override {item!r}: the value is not valid YAML '
                             f'({one_line(exc)})') from exc
        out.setdefault(node, {})[param] = parsed
    return out


def announce_files(config_files: list[Path]) -> None:
    """Say which files configure the nodes: naming any file replaces the defaults (with the sim,
    the position-target overlay too: name it to keep position targets)."""
    print(f'bringup: parameter files {" ".join(map(str, config_files))}', flush=True)


def run_in_process(config_files: list[Path], with_sim: bool, duration_s: float | None,
                   overrides: dict[str, dict[str, object]], with_watchdog: bool = True,
                   namespace: str = '', remap: dict[str, str] | None = None) -> int:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from vla_edge.nodes.bringup import build_pipeline
    from vla_edge.nodes.spin import StopSignals

    announce_files(config_files)
    # args=[]: the nodes get their parameters from bringup, not from this argv. No rclpy signal
    # handlers (StopSignals instead): Ctrl-C ends the loop below with the context still up, so
    # the nodes, destroyed in pipe.stop(), can still send the robot their last, safe command.
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    pipe = None
    stop = StopSignals()
    try:
        pipe = build_pipeline(config_files, with_sim=with_sim, overrides=overrides,
                              with_watchdog=with_watchdog, namespace=namespace, remap=remap)
        if with_sim:
            pipe.nodes['sim_robot'].start_episode()
        pipe.start()
        end = None if duration_s is None else time.monotonic() + duration_s
        while (end is None or time.monotonic() < end) and pipe.running() and \
                not stop.requested:
            time.sleep(0.1)
    finally:
        stop.defer()
        if pipe is not None:
            pipe.stop()
        rclpy.try_shutdown()
        stop.restore()
    return 0


def write_overrides_file(overrides: dict[str, dict[str, object]], path: Path) -> Path:
    """The `-p NODE.PARAM=VALUE` overrides as one more parameter file, keyed `/**/NODE` like the
    shipped ones. rcl's own `-p node:param:=value` only reaches a node outside any namespace
    (checked: under `-r __ns:=/arm` it is dropped without a word), a file's `/**/` reaches it
    anywhere."""
    import yaml

    sections: dict[str, dict] = {}
    for node, params in overrides.items():
        tree: dict = {}
        for key, value in params.items():
            *parents, leaf = key.split('.')
            level = tree
            for part in parents:
                level = level.setdefault(part, {})
            level[leaf] = value
        sections[f'/**/{node}'] = {'ros__parameters': tree}
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def node_commands(config_files: list[Path], with_sim: bool, with_watchdog: bool = True,
                  namespace: str = '', remap: dict[str, str] | None = None,
                  ) -> tuple[list[str], list[list[str]]]:
    """(executables, their command lines): the parameter files (the overrides' file last),
    namespace and topic remaps as `--ros-args`, as `ros2 launch` passes them."""
    from vla_edge.nodes.bringup import ros_args, sim_robot_remap

    bin_dir = Path(sys.executable).parent
    executables = ['vla_node', 'chunk_executor'] + (['watchdog_node'] if with_watchdog else []) \
        + (['sim'] if with_sim else [])
    commands = []
    for exe in executables:
        path = shutil.which(exe, path=str(bin_dir)) or shutil.which(exe)
        if path is None:
            raise FileNotFoundError(f'node executable {exe!r} not found (is the package '
                                    'installed with pip or colcon?)')
        node_remap = sim_robot_remap(remap, with_watchdog) if exe == 'sim' else remap
        cmd = [path, *ros_args(config_files, node_remap)]
        if namespace.strip('/'):
            cmd += ['-r', f'__ns:=/{namespace.strip("/")}']
        commands.append(cmd)
    return executables, commands


# The node each executable runs, for the stop order (`bringup.stop_rank`, the in-process one);
# the others are named as their node.
EXECUTABLE_NODE = {'watchdog_node': 'watchdog', 'sim': 'sim_robot'}


def start_node_process(cmd: list[str]) -> subprocess.Popen:
    """A node process in its own session, so that Ctrl-C in the terminal (SIGINT to the whole
    foreground process group) reaches bringup alone, which then stops the nodes in order;
    on Linux it is sent SIGTERM (a stop, for our nodes) if bringup itself dies without stopping
    it. systemd: KillMode=mixed, or its default control-group stops all at once."""
    return subprocess.Popen(cmd, start_new_session=True,
                            preexec_fn=_stop_with_parent(os.getpid()))


def _stop_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """For preexec_fn, where Linux has prctl: PR_SET_PDEATHSIG = SIGTERM, and if the parent
    died between the fork and here, the node is never started. The function is looked up here,
    in the parent: the forked child only calls it (no dlopen or import between fork and exec)."""
    if not sys.platform.startswith('linux'):
        return None
    import ctypes
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pdeathsig, sigterm = ctypes.c_int(1), ctypes.c_ulong(int(signal.SIGTERM))

    def arm() -> None:
        prctl(pdeathsig, sigterm)
        if os.getppid() != parent_pid:
            os._exit(1)
    return arm


def stop_in_order(executables: list[str], procs: list[subprocess.Popen]) -> None:
    """SIGINT the nodes one at a time in the in-process stop order (`bringup.stop_rank`:
    watchdog, executor, vla_node, sim), each once the one before has exited. One at a time also
    narrows the overlap of a node deleting its DDS entities with its peers leaving: Fast DDS has
    open shutdown deadlocks of that shape (e.g. eProsima/Fast-DDS#6502), and once in CI the
    executor did not stop within 5 s of a SIGINT sent to all four at once. A node still running
    STOP_WAIT_S after its SIGINT is killed, and said so."""
    from vla_edge.nodes.bringup import stop_rank

    def rank(exe_and_proc: tuple[str, subprocess.Popen]) -> int:
        return stop_rank(EXECUTABLE_NODE.get(exe_and_proc[0], exe_and_proc[0]))

    for exe, p in sorted(zip(executables, procs), key=rank):
        if p.poll() is None:
            p.send_signal(signal.SIGINT)   # each node sends the robot its last command
        try:
            p.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            print(f'bringup: {exe} (pid {p.pid}) did not stop within {STOP_WAIT_S:g} s of SIGINT: '
                  'killing it (a stop that hung printed its Python stacks above)',
                  file=sys.stderr, flush=True)
            p.kill()
            p.wait()


def run_processes(config_files: list[Path], with_sim: bool, duration_s: float | None,
                  overrides: dict[str, dict[str, object]], with_watchdog: bool = True,
                  namespace: str = '', remap: dict[str, str] | None = None) -> int:
    from vla_edge.nodes.bringup import check_param_files
    from vla_edge.nodes.spin import StopSignals

    announce_files(config_files)
    check_param_files(config_files, overrides, with_watchdog, with_sim,   # before any starts
                      namespace)
    workdir = Path(tempfile.mkdtemp(prefix='vla_edge_bringup_'))
    try:
        files = list(config_files)
        if overrides:
            files.append(write_overrides_file(overrides, workdir / 'overrides.yaml'))
        executables, commands = node_commands(files, with_sim, with_watchdog, namespace, remap)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    # SIGTERM to this process alone (systemd, docker) stops the nodes too, in order; so does a
    # closed terminal (SIGHUP): the nodes, in their own session, would otherwise get SIGTERM all
    # at once from their death signal
    stop = StopSignals(signals=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    procs = []
    try:
        for cmd in commands:
            procs.append(start_node_process(cmd))
        end = None if duration_s is None else time.monotonic() + duration_s
        while (end is None or time.monotonic() < end) and \
                all(p.poll() is None for p in procs) and not stop.requested:
            time.sleep(0.1)
    finally:
        stop.defer()
        stop_in_order(executables, procs)
        stop.restore()
        shutil.rmtree(workdir, ignore_errors=True)
    failed = [(exe, p.returncode) for exe, p in zip(executables, procs)
              if p.returncode not in (0, -signal.SIGINT)]
    for exe, code in failed:
        print(f'bringup: {exe} exited with status {code}', file=sys.stderr)
    return 1 if failed else 0
