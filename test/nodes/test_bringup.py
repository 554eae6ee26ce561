"""`vla-edge bringup` starts the pipeline with the launch files' parameter files."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from vla_edge.nodes.bringup import build_pipeline, param_files_for
from vla_edge.nodes.params import ParameterError
from vla_edge.tools.bringup_cli import STOP_WAIT_S, parse_overrides

CLI = str(Path(sys.executable).parent / 'vla-edge')


@pytest.mark.parametrize('processes,interface', [(True, 'position'), (False, 'position'),
                                                 (True, 'velocity')])
def test_bringup_runs_the_pipeline_and_stops_on_sigterm_leaving_the_robot_safe(
        processes, interface, reference_model_dir):
    """SIGTERM to bringup alone (systemd, docker stop): every node stops, and the robot's last
    command, sent by the watchdog in its own process or in bringup's, stops it: zero velocity,
    or on position targets the position the robot last reported."""
    domain = 150 + os.getpid() % 40 + (1 if processes else 0) + 2 * (interface == 'velocity')
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               VLA_EDGE_MODEL_DIR=str(reference_model_dir))
    files = [str(f) for f in param_files_for(interface)]
    cmd = [CLI, 'bringup', *files, '--duration', '40', '-p', 'chunk_executor.mode=sync']
    proc = subprocess.Popen(cmd + (['--processes'] if processes else []), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node('bringup_listener', context=ctx)
    seen = {'chunks': 0, 'commands': 0, 'gated': 0, 'moving': 0, 'last': None, 'robot': None}

    def on_gated(msg):
        before, seen['last'] = seen['last'], list(msg.data)
        seen['gated'] += 1
        seen['moving'] += (any(abs(v) > 0.0 for v in msg.data[:2]) if interface == 'velocity'
                           else before is not None and before[:2] != seen['last'][:2])

    def on_state(msg):
        position = dict(zip(msg.name, msg.position))
        seen['robot'] = [position['x'], position['y']]

    node.create_subscription(JointTrajectory, 'action_chunk',
                             lambda m: seen.__setitem__('chunks', seen['chunks'] + 1), 10)
    node.create_subscription(Float64MultiArray, 'command_raw',
                             lambda m: seen.__setitem__('commands', seen['commands'] + 1), 10)
    # `command` has a publisher only if the watchdog runs (the robot is no longer remapped)
    node.create_subscription(Float64MultiArray, 'command', on_gated, 100)
    node.create_subscription(JointState, 'joint_states', on_state, 100)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    out = ''
    try:
        end = time.monotonic() + 25
        while time.monotonic() < end and (seen['chunks'] < 2 or seen['commands'] < 50
                                          or seen['gated'] < 50 or seen['moving'] < 10):
            executor.spin_once(timeout_sec=0.1)
        proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + 4 * STOP_WAIT_S + 10   # each node in turn, and a kill
        while time.monotonic() < end and proc.poll() is None:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(10):      # whatever was still on its way
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        if proc.poll() is None:
            proc.kill()
        out, _ = proc.communicate(timeout=60)
    assert seen['chunks'] >= 2 and seen['commands'] >= 50, out[-2000:]
    assert seen['gated'] >= 50 and seen['moving'] >= 10, f'robot never moved\n{out[-2000:]}'
    assert proc.returncode == 0, out[-8000:]   # a hung node prints its stack
    assert 'Traceback' not in out, out[-3000:]
    if interface == 'velocity':
        assert seen['last'][:2] == [0.0, 0.0], seen['last']   # the watchdog's last word: stop
    else:   # ... hold where the robot is (it may take one more step toward the last target)
        assert seen['last'][:2] == pytest.approx(seen['robot'], abs=0.025), seen


def test_parameter_overrides_are_parsed_as_yaml():
    assert parse_overrides(['chunk_executor.mode=sync', 'vla_node.noise_seed=3',
                            'chunk_executor.velocity_dims=[0, 1]']) == {
        'chunk_executor': {'mode': 'sync', 'velocity_dims': [0, 1]},
        'vla_node': {'noise_seed': 3}}
    with pytest.raises(ValueError, match='NODE.PARAM=VALUE'):
        parse_overrides(['mode=sync'])


def test_pipeline_with_the_watchdog_runs_episodes(ros_context, reference_runtime):
    """executor -> command_raw -> watchdog -> command -> sim robot, with config/watchdog.yaml:
    episodes finish and the watchdog never vetoes."""
    pipe = build_pipeline(param_files_for('velocity'), context=ros_context,
                          runtime=reference_runtime, overrides={'sim_robot': {'auto_reset': True}})
    robot, watchdog = pipe.nodes['sim_robot'], pipe.nodes['watchdog']
    assert watchdog.config.frame.expected_width == 128      # the watchdog's file was applied
    robot.start_episode()
    pipe.start()
    try:
        end = time.monotonic() + 40
        # at least one success and 150 commands through the gate (a quick episode takes ~100)
        while time.monotonic() < end and not (any(e['success'] for e in robot.episodes)
                                              and watchdog.counts['commands_out'] > 150):
            time.sleep(0.1)
    finally:
        pipe.stop()
    assert any(e['success'] for e in robot.episodes), robot.episodes
    assert watchdog.wd.armed and watchdog.wd.latch.trips == 0, watchdog.wd.latch.reasons
    assert robot.commands_received >= watchdog.counts['commands_out'] - 5 > 100


def test_on_position_targets_episodes_run_and_every_target_is_near_the_robot(
        ros_context, reference_runtime):
    """config/position_targets.yaml: vla_node integrates its chunks into [x, y, grip] targets,
    the executor holds where the robot is, the sim robot follows positions. Across auto-reset
    episodes (the robot teleports to each new start; from seed 1000006 the instruction stays the
    same, so only the robot's position tells the executor its queue is stale) every target the
    robot takes is within a few top-speed steps (0.012) of where it is, and the watchdog never
    vetoes."""
    pipe = build_pipeline(param_files_for('position'), context=ros_context,
                          runtime=reference_runtime,
                          overrides={'sim_robot': {'auto_reset': True, 'first_seed': 1_000_006}})
    robot, watchdog = pipe.nodes['sim_robot'], pipe.nodes['watchdog']
    assert pipe.nodes['chunk_executor'].joint_names == ['x', 'y', 'grip']
    gaps = []
    take = robot.on_command

    def on_command(msg):   # in the robot's own subscription: how far is a target it takes?
        with robot.session.lock:
            at = robot.session.env.world.gripper_pos.copy()
        before = robot.commands_received
        take(msg)
        if robot.commands_received > before and robot.running:
            gaps.append(float(np.linalg.norm(np.asarray(msg.data[:2]) - at)))

    (sub,) = [s for s in robot.subscriptions if s.topic_name.endswith('/command')]
    sub.callback = on_command
    robot.running = False       # as the demo does: start once the watchdog is armed, with an
    robot.start_episode()       # empty queue (a paused robot did not follow the one it had)
    pipe.start()
    try:
        end = time.monotonic() + 40
        while time.monotonic() < end and not watchdog.wd.armed:
            time.sleep(0.05)
        pipe.nodes['chunk_executor'].reset_queue()
        time.sleep(0.06)   # commands already on their way were for the queue just dropped
        robot.running = True
        while time.monotonic() < end and sum(e['success'] for e in robot.episodes) < 2:
            time.sleep(0.1)
    finally:
        pipe.stop()
    assert sum(e['success'] for e in robot.episodes) >= 2, robot.episodes
    assert watchdog.wd.latch.trips == 0, watchdog.wd.latch.reasons
    assert len(gaps) > 100 and max(gaps) < 0.05, max(gaps)
    assert pipe.nodes['chunk_executor'].lost_track >= 1   # at the same-instruction reset


def test_position_targets_need_every_node_to_take_them(ros_context, reference_runtime):
    with pytest.raises(ParameterError, match='disagree on what a command is'):
        build_pipeline(param_files_for('velocity'), context=ros_context,
                       runtime=reference_runtime,
                       overrides={'sim_robot': {'command_interface': 'position'}})
    with pytest.raises(ParameterError, match="watchdog.latch.hold_mode = 'zero_velocity'"):
        build_pipeline(param_files_for('position'), context=ros_context,
                       runtime=reference_runtime,
                       overrides={'watchdog': {'latch.hold_mode': 'zero_velocity'}})
    with pytest.raises(ParameterError, match="must be vla_node's position.joint_names"):
        build_pipeline(param_files_for('position'), context=ros_context,
                       runtime=reference_runtime,
                       overrides={'vla_node': {'position.joint_names': ['px', 'py', 'grip']}})
    with pytest.raises(ParameterError, match='must be the columns vla_node integrates'):
        build_pipeline(param_files_for('position'), context=ros_context,
                       runtime=reference_runtime, overrides={
                           'vla_node': {'position.action_dims': [0], 'position.state_dims': [0],
                                        'position.lower': [0.0], 'position.upper': [1.0]}})
    with pytest.raises(ParameterError, match="'position'"):
        build_pipeline(param_files_for('position'), context=ros_context,
                       runtime=reference_runtime, overrides={
                           'watchdog': {'state.fields': ['velocity', 'velocity', 'position']}})


def test_without_the_watchdog_the_robot_listens_to_command_raw(ros_context, reference_runtime):
    pipe = build_pipeline(context=ros_context, runtime=reference_runtime, with_watchdog=False)
    robot = pipe.nodes['sim_robot']
    assert 'watchdog' not in pipe.nodes
    robot.start_episode()
    pipe.start()
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end and robot.commands_received < 20:
            time.sleep(0.1)
    finally:
        pipe.stop()
    assert robot.commands_received >= 20


def test_stopping_destroys_the_nodes_that_command_the_robot_first():
    """vla_node's destroy_node can wait seconds for a plan on a slow board: the watchdog and the
    executor must not send the robot their last command only after it (the sim goes last, so
    it takes that command)."""
    from vla_edge.nodes.bringup import Pipeline

    destroyed = []

    class Stub:   # stands in for a node: only the order of destroy_node calls is under test
        def __init__(self, name):
            self.name = name

        def destroy_node(self):
            destroyed.append(self.name)

    class NoExecutors:
        def shutdown(self):
            destroyed.append('executors')

    names = ['vla_node', 'chunk_executor', 'watchdog', 'sim_robot', 'sim_camera']
    Pipeline(nodes={n: Stub(n) for n in names}, executors=NoExecutors()).stop()
    assert destroyed == ['executors', 'watchdog', 'chunk_executor', 'vla_node', 'sim_robot',
                         'sim_camera']


def test_robot_topic_names_and_the_namespace_are_checked_before_any_node_starts():
    from vla_edge.nodes.bringup import checked_namespace, robot_remaps

    assert robot_remaps('/forward_velocity_controller/commands', 'arm_states') == {
        'command': '/forward_velocity_controller/commands', 'joint_states': 'arm_states'}
    assert robot_remaps() == {}
    with pytest.raises(ParameterError, match="command topic 'bad topic': Invalid topic name"):
        robot_remaps('bad topic')
    with pytest.raises(ParameterError, match="joint_states topic '1js'"):
        robot_remaps(None, '1js')
    # names rclpy's validator passes but rcl's remap parser refuses, or that each node would
    # resolve to a topic of its own
    for name in ('x__y', 'ab//c', '{node}/c', '~/cmd'):
        with pytest.raises(ParameterError, match='plain name'):
            robot_remaps(name)
    with pytest.raises(ParameterError, match='drop --no-watchdog'):
        robot_remaps('/ctrl/commands', with_watchdog=False)
    assert [checked_namespace(n) for n in ('', '/', 'arm', '/arm/', '//robot1/arm')] == \
        ['', '', '/arm', '/arm', '/robot1/arm']
    with pytest.raises(ParameterError, match="namespace 'a b'"):
        checked_namespace('a b')


def test_bad_robot_names_stop_bringup_before_any_node(tmp_path, capsys):
    from vla_edge.cli import main

    assert main(['bringup', '--no-sim', '--command-topic', 'x__y']) == 2
    assert main(['bringup', '--namespace', '1arm']) == 2
    err = capsys.readouterr()
    assert "command topic 'x__y'" in err.err and "namespace '1arm'" in err.err
    assert 'parameter files' not in err.out   # refused before bringup announced anything


def test_the_robot_topics_and_the_namespace_reach_every_node(ros_context, reference_runtime):
    """bringup's --namespace, --command-topic and --joint-states-topic (the launch file's
    arguments): the watchdog alone publishes the renamed command, every reader of the state
    reads the renamed state (a relative name, so in the namespace), and the sim, renamed
    alike, runs an episode through them."""
    remap = {'command': '/ctrl/commands', 'joint_states': 'robot/joint_states'}
    pipe = build_pipeline(param_files_for('position'), context=ros_context,
                          runtime=reference_runtime, namespace='/arm', remap=remap)
    robot, vla = pipe.nodes['sim_robot'], pipe.nodes['vla_node']
    robot.start_episode()
    pipe.start()
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and robot.commands_received < 50:
            time.sleep(0.1)
        graph = pipe.nodes['chunk_executor']

        def topics(kind, name):
            return {t for t, _ in getattr(graph, f'get_{kind}_names_and_types_by_node')(
                name, '/arm')}
        published = {n: topics('publisher', n) for n in ('vla_node', 'chunk_executor',
                                                          'watchdog', 'sim_robot')}
        read = {n: topics('subscriber', n) for n in ('vla_node', 'chunk_executor', 'watchdog',
                                                     'sim_robot')}
    finally:
        pipe.stop()
    assert robot.commands_received >= 50 and vla.frames_encoded > 0
    assert '/ctrl/commands' in published['watchdog'] and '/arm/command_raw' in \
        published['chunk_executor']
    assert not any('/ctrl/commands' in p for n, p in published.items() if n != 'watchdog')
    assert '/arm/robot/joint_states' in published['sim_robot']
    for name in ('vla_node', 'chunk_executor', 'watchdog'):   # position targets: all three
        assert '/arm/robot/joint_states' in read[name], (name, read[name])
    assert '/ctrl/commands' in read['sim_robot']
    assert '/arm/action_chunk' in read['chunk_executor']   # the rest keeps the namespace


@pytest.mark.parametrize('namespace,expected', [('/arm', '/arm'), ('/robot1/arm', '/robot1/arm'),
                                                ('', '')])
def test_processes_get_the_namespace_the_robot_topics_and_the_overrides(
        namespace, expected, tmp_path, ros_context):
    """Each process's command line, read by the real node class as its executable would: the
    overrides reach it in a namespace too (rcl's `-p node:param:=v` would not)."""
    from vla_edge.nodes.chunk_executor import ChunkExecutor
    from vla_edge.tools.bringup_cli import node_commands, write_overrides_file

    files = param_files_for('position')
    overrides = write_overrides_file({'chunk_executor': {'mode': 'sync', 'merge.blend_steps': 7},
                                      'watchdog': {'latch.arm_after_s': 0.7}},
                                     tmp_path / 'o.yaml')
    remap = {'command': '/ctrl/commands', 'joint_states': '/robot/joint_states'}
    exes, cmds = node_commands([*files, overrides], True, True, namespace, remap)
    assert exes == ['vla_node', 'chunk_executor', 'watchdog_node', 'sim']
    for cmd in cmds:
        args = ' '.join(cmd)
        assert ('__ns' in args) == bool(expected) and (f'-r __ns:={expected}' in args or
                                                      not expected)
        assert '-r joint_states:=/robot/joint_states' in args
        assert '-r command:=/ctrl/commands' in args
        assert all(cmd.index(str(f)) < cmd.index(str(overrides)) for f in files)   # last
    ex = ChunkExecutor(context=ros_context, cli_args=cmds[1][1:])
    try:
        assert ex.get_fully_qualified_name() == f'{expected}/chunk_executor'
        assert ex.params['mode'] == 'sync' and ex.params['merge.blend_steps'] == 7
        assert ex.params['position_dims'] == [0, 1]   # the shipped files still apply
    finally:
        ex.destroy_node()
    # no watchdog: the sim robot takes command_raw, and nobody is renamed onto the robot topic
    exes, cmds = node_commands(files, True, False, '', {'joint_states': 'js'})
    sim = ' '.join(cmds[exes.index('sim')])
    assert '-r command:=command_raw' in sim and '__ns' not in sim and '-r joint_states:=js' in sim


def test_the_pipeline_stops_robot_facing_nodes_first_and_the_sim_last():
    """One order for both bringups (in-process destroys by it, --processes signals by it)."""
    from vla_edge.nodes.bringup import stop_rank

    started = ['vla_node', 'chunk_executor', 'watchdog', 'sim_robot', 'sim_camera']
    assert sorted(started, key=stop_rank) == ['watchdog', 'chunk_executor', 'vla_node',
                                              'sim_robot', 'sim_camera']
