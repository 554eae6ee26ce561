"""Run the pipeline's nodes composed in one process, with the launch files' parameter files.

This is the tested path where `ros2 launch` is not installed: the same node classes, the same
`config/*.yaml` (passed to each node as `--params-file`), one executor per node on its own
thread: rclpy's EventsExecutor for vla_node (where rclpy has it), a SingleThreadedExecutor for
the others (see `isolated_executors.executor_kind_for`, also for why not the
MultiThreadedExecutor).

The chain to the robot: chunk_executor -> command_raw -> watchdog -> command -> robot. Without the
watchdog (`with_watchdog=False`) the robot listens to `command_raw` directly.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.node import Node

from vla_edge.core.package_share import package_path
from vla_edge.nodes import chunk_executor, sim_nodes, vla_node, watchdog_node
from vla_edge.nodes.chunk_executor import ChunkExecutor, index_list
from vla_edge.nodes.isolated_executors import IsolatedExecutors, forced_executor_kind
from vla_edge.nodes.model_rate import resolve_control_rate
from vla_edge.nodes.param_files import check_parameters, merged_parameters
from vla_edge.nodes.params import ParameterError
from vla_edge.nodes.sim_nodes import SimCamera, SimRobot, SimSession
from vla_edge.nodes.vla_node import VlaNode
from vla_edge.nodes.watchdog_node import WatchdogNode
from vla_edge.sim.world import COMMAND_INTERFACES, DEFAULT_COMMAND_INTERFACE

CONFIG_DIR = package_path('config')   # the checkout's, or share/vla_edge/config when installed
DEFAULT_CONFIG_NAMES = ('pipeline.yaml', 'sim.yaml', 'watchdog.yaml')
POSITION_OVERLAY = 'position_targets.yaml'   # the sim and the pipeline on position targets

# Every node a parameter file of this package may address, with what it declares.
NODE_PARAMETERS = {
    'vla_node': vla_node.PARAMETERS,
    'chunk_executor': chunk_executor.PARAMETERS,
    'watchdog': watchdog_node.PARAMETERS,
    'sim_robot': sim_nodes.ROBOT_PARAMETERS,
    'sim_camera': sim_nodes.CAMERA_PARAMETERS,
}


def default_param_files(with_sim: bool = True) -> list[Path]:
    """The parameter files used when none are named: with the sim, pipeline, sim, watchdog and the
    overlay of the default command interface (as sim_demo.launch.py); without it (a real robot,
    a bag replayed), the three base files, the model's own actions (as vla_edge.launch.py)."""
    return param_files_for(DEFAULT_COMMAND_INTERFACE if with_sim else 'velocity')


def param_files_for(command_interface: str) -> list[Path]:
    """pipeline, sim and watchdog, with the position-target overlay for `position`."""
    if command_interface not in COMMAND_INTERFACES:
        raise ValueError(f'command_interface must be one of {COMMAND_INTERFACES}, '
                         f'got {command_interface!r}')
    extra = [CONFIG_DIR / POSITION_OVERLAY] if command_interface == 'position' else []
    return [CONFIG_DIR / name for name in DEFAULT_CONFIG_NAMES] + extra


def check_param_files(param_files: list[Path],
                      overrides: dict[str, dict[str, object]] | None = None,
                      with_watchdog: bool = True, with_sim: bool = True,
                      namespace: str = '') -> None:
    """Refuse unknown keys, wrong types and out-of-range values for our nodes in the parameter
    files and overrides, before any node starts (rcl itself drops some of them silently); warn
    about sections and `/**` keys only other nodes use. Then check what must agree across the
    nodes (`check_command_chain`)."""
    ns = '/' + namespace.strip('/')
    for note in check_parameters(param_files, overrides or {}, NODE_PARAMETERS, ns):
        print(f'warning: {note}', file=sys.stderr)
    check_command_chain(merged_parameters(param_files, overrides or {}, NODE_PARAMETERS, ns),
                        with_watchdog, with_sim)


def check_command_interface(values: dict[str, dict[str, object]], with_watchdog: bool,
                            with_sim: bool) -> None:
    """Velocities or position targets: every node on the way must read the command the same
    way. A watchdog or executor that takes position targets for velocities zeroes them on a hold,
    which sends the robot to the origin (config/position_targets.yaml sets all of them)."""
    positions = values['vla_node']['command_interface'] == 'position'
    executor = values['chunk_executor']
    said = {'vla_node.command_interface': positions,
            'chunk_executor.position_dims': bool(index_list(executor, 'position_dims'))}
    if with_sim:
        said['sim_robot.command_interface'] = \
            values['sim_robot']['command_interface'] == 'position'
    if with_watchdog:
        said['watchdog.command.velocity_dims'] = \
            list(values['watchdog']['command.velocity_dims']) == [-1]
    if len(set(said.values())) > 1:
        raise ParameterError(
            'the nodes disagree on what a command is (position targets: ' + ', '.join(
                f'{k} {"yes" if v else "no"}' for k, v in said.items()) + '); pass '
            'config/position_targets.yaml after the default files, or none of it')
    if not positions:
        return
    names = list(values['vla_node']['position.joint_names'])
    if list(executor['joint_names']) != names:
        raise ParameterError(f"chunk_executor.joint_names = {list(executor['joint_names'])} must "
                             f"be vla_node's position.joint_names {names}: chunks are matched "
                             'by name')
    integrated = sorted(int(i) for i in values['vla_node']['position.action_dims'])
    if integrated != index_list(executor, 'position_dims'):
        raise ParameterError(f'chunk_executor.position_dims = {list(executor["position_dims"])} '
                             f"must be the columns vla_node integrates (position.action_dims "
                             f'{integrated}): the executor fades and holds exactly those')
    if with_watchdog:
        watchdog = values['watchdog']
        if watchdog['command_type'] == 'twist_stamped':
            raise ParameterError("watchdog.command_type = 'twist_stamped' carries velocities; "
                                 'position targets need float64_multi_array or '
                                 'joint_trajectory')
        fields = list(watchdog['state.fields'])
        moved = [i for i in integrated if i < len(fields) and fields[i] != 'position']
        if moved:
            raise ParameterError(f'watchdog.state.fields = {fields}: the position dims {moved} '
                                 "must read the joint 'position' (its state-step check compares "
                                 'targets with where the robot is)')
    if with_watchdog and values['watchdog']['latch.hold_mode'] == 'zero_velocity':
        raise ParameterError("watchdog.latch.hold_mode = 'zero_velocity': with position targets "
                             "a hold must keep a position ('last'), not zero it")


def check_command_chain(values: dict[str, dict[str, object]], with_watchdog: bool,
                        with_sim: bool) -> None:
    """The command chain executor -> (watchdog) -> robot must agree on message types and rate,
    and the watchdog must watch the policy's camera.
    A type mismatch leaves the robot without commands (in one process DDS refuses the second
    type with a bare RCLError; across processes nothing is delivered) and nobody is told why;
    a watchdog at another rate than the executor turns command steps into wrong velocities,
    accelerations and jerks (too loose when the executor is faster)."""
    executor = values['chunk_executor']
    raw = executor['command_type']
    last = raw
    if with_watchdog:
        if raw != 'float64_multi_array':
            raise ParameterError(
                f"chunk_executor.command_type = {raw!r}: the watchdog gates float64_multi_array "
                "command_raw; keep that and set the robot's interface as watchdog.command_type")
        watchdog = values['watchdog']
        last = watchdog['command_type']
        rate = resolve_control_rate(float(executor['control_rate_hz']),
                                    str(executor['model_dir']))
        gate_rate = resolve_control_rate(float(watchdog['command.control_rate_hz']),
                                         str(watchdog['model_dir']),
                                         name='command.control_rate_hz')
        if abs(gate_rate - rate) > 1e-6 * rate:
            raise ParameterError(
                f'chunk_executor ticks at {rate:g} Hz but the watchdog checks commands at '
                f'{gate_rate:g} Hz (command.control_rate_hz, 0 = its model_dir\'s manifest): it '
                'derives velocity, acceleration and jerk from consecutive commands at its rate; '
                'set it to the executor\'s')
        policy_camera, gate_camera = values['vla_node']['camera_topic'], watchdog['camera_topic']
        if policy_camera != gate_camera:
            raise ParameterError(
                f'vla_node reads the camera on {policy_camera!r} but the watchdog on '
                f'{gate_camera!r}: the watchdog must judge the frames the policy sees, and with '
                'no frames it never arms; set both camera_topic (ros2 launch sets both from '
                'its camera_topic argument)')
    check_command_interface(values, with_watchdog, with_sim)
    if with_sim and last != 'float64_multi_array':
        who = 'watchdog' if with_watchdog else 'chunk_executor'
        raise ParameterError(f'{who}.command_type = {last!r}: the simulated robot takes '
                             'float64_multi_array commands')


def _first_line(exc: Exception) -> str:
    """rclpy's name exceptions end their first line with ':' and then draw a caret diagram."""
    return str(exc).splitlines()[0].rstrip(':')


# What a remap may point at: absolute or relative tokens of letters, digits and '_', no '__'
# (rcl's remap lexer reserves it), no '~' or '{}' (each node would resolve those to a topic of
# its own, so the robot and the watchdog would stop hearing each other without a word).
_REMAP_TARGET = re.compile(r'/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*')


def checked_namespace(namespace: str) -> str:
    """'' or '/a/b': the namespace every node gets, in one process or several, with slashes at
    either end forgiven and anything rcl would refuse refused here, before any node starts."""
    from rclpy.validate_namespace import validate_namespace

    inner = namespace.strip('/')
    if not inner:
        return ''
    try:
        validate_namespace('/' + inner)
    except Exception as exc:   # rclpy's InvalidNamespaceException (a caret diagram)
        raise ParameterError(f'namespace {namespace!r}: {_first_line(exc)}') from None
    return '/' + inner


def robot_remaps(command_topic: str | None = None, joint_states_topic: str | None = None,
                 with_watchdog: bool = True) -> dict[str, str]:
    """Remaps onto the robot's own topics (the launch file's command_topic and
    joint_states_topic), checked before any node starts: a name rcl's remap parser refuses
    (it takes more than rclpy's validator does: `x__y`, `a//b`, `{node}`) fails a node's start
    far from the flag that caused it. The robot's command comes from the
    watchdog: without it there is no `command` to rename."""
    from rclpy.validate_topic_name import validate_topic_name

    remap = {}
    for name, topic in (('command', command_topic), ('joint_states', joint_states_topic)):
        if topic is None:
            continue
        try:
            validate_topic_name(topic)
        except Exception as exc:
            raise ParameterError(f'{name} topic {topic!r}: {_first_line(exc)}') from None
        if not _REMAP_TARGET.fullmatch(topic) or '__' in topic:
            raise ParameterError(f'{name} topic {topic!r}: a robot topic is a plain name (letters, '
                                 "digits, single '_', '/' between them): '~' and '{}' would "
                                 "resolve differently in each node, and rcl reserves '__'")
        remap[name] = topic
    if 'command' in remap and not with_watchdog:
        raise ParameterError('--command-topic needs the watchdog, the only publisher of the '
                             "robot's command: drop --no-watchdog (without it the robot must "
                             'listen to command_raw itself)')
    return remap


def ros_args(param_files: list[Path], remap: dict[str, str] | None = None) -> list[str]:
    """`--ros-args` with the parameter files in order and the topic remaps: what a node gets,
    composed here or started as its own executable (`bringup_cli.node_commands`)."""
    cli = ['--ros-args']
    for f in param_files:
        cli += ['--params-file', str(f)]
    for src, dst in (remap or {}).items():
        cli += ['-r', f'{src}:={dst}']
    return cli


def sim_robot_remap(remap: dict[str, str] | None, with_watchdog: bool) -> dict[str, str]:
    """The sim robot's remaps: the robot topics', and without a watchdog in the chain it listens
    to command_raw directly."""
    return {**(remap or {}), **({} if with_watchdog else {'command': 'command_raw'})}


def node_args(param_files: list[Path], overrides: dict[str, object] | None = None,
              remap: dict[str, str] | None = None, namespace: str = '', context=None) -> dict:
    """Constructor kwargs for a node: params files, then per-node overrides, then remaps."""
    cli = ros_args(param_files, remap)
    from rclpy.parameter import Parameter

    params = [Parameter(k, value=v) for k, v in (overrides or {}).items()]
    return {'cli_args': cli, 'parameter_overrides': params, 'namespace': namespace,
            'context': context}


def stop_rank(node_name: str) -> int:
    """Where a node comes in the pipeline's stop, in one process or in several
    (`bringup_cli.stop_in_order`): the ones that command the robot first, so their last, safe
    command does not wait behind vla_node finishing a plan (up to seconds on a slow board); the
    sim last, so it takes it."""
    first = ('watchdog', 'chunk_executor')
    if node_name in first:
        return first.index(node_name)
    return len(first) + node_name.startswith('sim_')


@dataclass
class Pipeline:
    """The running nodes of one bringup, and the executors spinning them."""

    nodes: dict[str, Node]
    executors: IsolatedExecutors
    session: SimSession | None = None
    extra: dict = field(default_factory=dict)

    def start(self) -> Pipeline:
        self.executors.start()
        return self

    def running(self) -> bool:
        return self.executors.alive()

    def stop(self) -> None:
        """Stop spinning first, then destroy the nodes (never under a running callback), in
        `stop_rank` order."""
        self.executors.shutdown()
        for name in sorted(self.nodes, key=stop_rank):
            self.nodes[name].destroy_node()


def build_pipeline(param_files: list[Path] | None = None, with_sim: bool = True,
                   overrides: dict[str, dict[str, object]] | None = None,
                   runtime=None, namespace: str = '', context=None,
                   with_watchdog: bool = True,
                   remap: dict[str, str] | None = None) -> Pipeline:
    """Create vla_node + chunk_executor (+ watchdog) (+ sim robot and camera). Call rclpy.init()
    first. `overrides` are per node name ('watchdog' for the watchdog). `remap` renames topics
    for every node, as `ros2 launch`'s command_topic and joint_states_topic do (`robot_remaps`).

    Without a watchdog in the chain, the simulated robot listens to `command_raw` directly.
    """
    files = param_files or default_param_files(with_sim)
    o = overrides or {}
    check_param_files(files, o, with_watchdog, with_sim, namespace)
    forced_executor_kind()   # a bad $VLA_EDGE_EXECUTOR fails before any node

    def kw(name: str, node_remap: dict[str, str] | None = remap) -> dict:
        return node_args(files, o.get(name), node_remap, namespace, context)

    nodes: dict[str, Node] = {}
    session = None
    try:   # a node that refuses its parameters must not leave the others' threads running
        nodes['vla_node'] = VlaNode(runtime=runtime, **kw('vla_node'))
        nodes['chunk_executor'] = ChunkExecutor(**kw('chunk_executor'))
        if with_watchdog:
            nodes['watchdog'] = WatchdogNode(**kw('watchdog'))
        if with_sim:
            session = SimSession()
            nodes['sim_robot'] = SimRobot(session, **kw('sim_robot',
                                                        sim_robot_remap(remap, with_watchdog)))
            nodes['sim_camera'] = SimCamera(session, **kw('sim_camera'))
        executors = IsolatedExecutors(nodes.values(), context, kind=None)   # per node
    except Exception:
        for node in nodes.values():
            node.destroy_node()
        raise
    return Pipeline(nodes=nodes, executors=executors, session=session)
