"""Parameter files and overrides are checked against what the nodes declare before any node
starts: rcl would drop a later file's wrong-typed value, and ignore a misspelt key or node."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vla_edge.cli import main as cli_main
from vla_edge.nodes.bringup import (
    CONFIG_DIR,
    NODE_PARAMETERS,
    check_param_files,
    default_param_files,
    param_files_for,
)
from vla_edge.nodes.chunk_executor import check_command_layout
from vla_edge.nodes.param_files import check_parameters, merged_parameters, read_param_file
from vla_edge.nodes.params import ParameterError
from vla_edge.tools.bringup_cli import parse_overrides

BIN = Path(sys.executable).parent


def check_param_files_notes(files: list[Path]) -> list[str]:
    return check_parameters(files, {}, NODE_PARAMETERS)


def write(tmp_path: Path, text: str, name: str = 'extra.yaml') -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_config_files_match_the_declarations():
    # every file in config/, not only the three defaults: raises on any stale or misspelt key
    # (the position-target overlay goes after the defaults, as bringup and the demo pass it)
    assert set(CONFIG_DIR.glob('*.yaml')) == set(param_files_for('position'))
    check_param_files(param_files_for('velocity'))
    check_param_files(param_files_for('position'))
    assert default_param_files() == param_files_for('position')   # the sim's default
    sections = {}
    for f in param_files_for('velocity'):
        sections.update(read_param_file(f))
    assert set(sections) == {f'/**/{node}' for node in NODE_PARAMETERS}
    assert sections['/**/chunk_executor']['merge.strategy'] == 'blend'   # nested keys flattened


@pytest.mark.parametrize('namespace', ['', 'arm', 'robot1/arm'])
def test_the_shipped_files_reach_nodes_in_any_namespace(ros_context, namespace):
    """rcl matches a section key against the node's full name: a bare `vla_node:` misses
    /arm/vla_node, and `ros2 launch ... namespace:=arm` would then run on built-in defaults."""
    import rclpy

    for f in default_param_files():
        for key, params in read_param_file(f).items():
            name = key.rsplit('/', 1)[-1]
            node = rclpy.create_node(name, namespace=namespace, context=ros_context,
                                     cli_args=['--ros-args', '--params-file', str(f)],
                                     automatically_declare_parameters_from_overrides=True)
            try:
                missing = [p for p in params if not node.has_parameter(p)]
                assert not missing, (f'{f.name} [{key}] does not reach '
                                     f'{node.get_fully_qualified_name()}: {missing}')
            finally:
                node.destroy_node()


@pytest.mark.parametrize('file, nodes', [('pipeline.yaml', ('vla_node', 'chunk_executor')),
                                         ('sim.yaml', ('sim_robot', 'sim_camera'))])
def test_the_pipeline_and_sim_files_list_every_parameter(file, nodes):
    # README: these files document the nodes' parameters (the watchdog's sets only what the
    # setup relies on), so a parameter added to a node must appear in its file too.
    sections = read_param_file(next(f for f in default_param_files() if f.name == file))
    for node in nodes:
        missing = {s.name for s in NODE_PARAMETERS[node]} - set(sections[f'/**/{node}'])
        assert not missing, f'{file} lacks {node} parameters {sorted(missing)}'


def test_a_later_file_with_a_wrong_type_is_refused_naming_file_and_key(tmp_path):
    bad = write(tmp_path, 'chunk_executor:\n  ros__parameters:\n    control_rate_hz: "fast"\n')
    with pytest.raises(ParameterError) as err:
        check_param_files([*default_param_files(), bad])
    assert f"{bad}: chunk_executor.control_rate_hz: expected float, got string 'fast'" \
        in str(err.value)


def test_misspelt_keys_and_nodes_are_refused_with_a_suggestion(tmp_path):
    bad = write(tmp_path, 'chunk_executor:\n  ros__parameters:\n    control_rate: 100.0\n'
                '    merge:\n      blend_step: 10\n'
                'chunk_exec:\n  ros__parameters:\n    mode: sync\n')
    with pytest.raises(ParameterError) as err:
        check_param_files([bad])
    text = str(err.value)
    assert "chunk_executor.control_rate: unknown parameter (did you mean 'control_rate_hz'?)" \
        in text
    assert "chunk_executor.merge.blend_step: unknown parameter (did you mean " \
        "'merge.blend_steps'?)" in text
    assert "'chunk_exec' is not a node of this pipeline (did you mean 'chunk_executor'?)" in text


@pytest.mark.parametrize('text, expected', [
    ('hello world\n', 'not a ROS 2 parameters file'),
    ('vla_node: [\n', 'not valid YAML'),
    ('vla_node:\n  instruction: "pick"\n', "section 'vla_node' has no ros__parameters mapping"),
])
def test_files_that_are_not_parameter_files_are_named(tmp_path, text, expected):
    bad = write(tmp_path, text)
    with pytest.raises(ParameterError, match=expected) as err:
        check_param_files([bad])
    assert str(bad) in str(err.value)


def test_wildcard_and_namespaced_sections(tmp_path):
    ok = write(tmp_path, '/**:\n  ros__parameters:\n    use_sim_time: true\n'
               '    camera_topic: "cam/image"\n', 'ok.yaml')
    assert check_param_files_notes([ok]) == []  # every node has use_sim_time; two camera_topic
    namespaced = write(tmp_path, '/robot1/chunk_executor:\n  ros__parameters:\n'
                       '    mode: "sync"\n', 'ns.yaml')
    assert check_parameters([namespaced], {}, NODE_PARAMETERS, '/robot1') == []
    # Checked all the same when the nodes run elsewhere, but rcl would not apply it: said so,
    # and the merged values (what bringup's cross-node checks see) keep the default.
    assert check_param_files_notes([namespaced]) == [
        f"{namespaced}: section '/robot1/chunk_executor' does not reach nodes in namespace '/': "
        'checked, but not applied']
    assert merged_parameters([namespaced], {}, NODE_PARAMETERS)['chunk_executor']['mode'] == \
        'async'
    assert merged_parameters([namespaced], {}, NODE_PARAMETERS, '/robot1')['chunk_executor'][
        'mode'] == 'sync'
    wrong = write(tmp_path, '/**:\n  ros__parameters:\n    camera_topic: 3\n', 'wrong.yaml')
    with pytest.raises(ParameterError, match='vla_node.camera_topic: expected string'):
        check_param_files([wrong])


def test_nested_namespace_levels_are_read_like_rcl(tmp_path):
    """rcl also takes `ns: {node: {ros__parameters: ...}}`; the node's keys are still checked."""
    ok = write(tmp_path, 'robot1:\n  chunk_executor:\n    ros__parameters:\n'
               '      max_action_age_s: 0.2\n', 'ok.yaml')
    assert read_param_file(ok) == {'robot1/chunk_executor': {'max_action_age_s': 0.2}}
    check_param_files([ok])
    bad = write(tmp_path, 'robot1:\n  chunk_executor:\n    ros__parameters:\n'
                '      max_action_age: 0.2\n', 'bad.yaml')
    with pytest.raises(ParameterError, match='chunk_executor.max_action_age: unknown parameter'):
        check_param_files([bad])


def test_sections_for_other_nodes_are_skipped_with_a_note(tmp_path):
    """A robot-wide file also configures the driver: not ours, so noted, not refused; a `/**`
    key none of our nodes has likewise. A near miss of one of our names is a typo: refused."""
    shared = write(tmp_path, 'ur_driver:\n  ros__parameters:\n    robot_ip: "10.0.0.2"\n'
                   '/**:\n  ros__parameters:\n    robot_ip: "10.0.0.2"\n', 'shared.yaml')
    notes = check_param_files_notes([shared])
    assert any("section 'ur_driver' is for a node this pipeline does not run" in n
               for n in notes), notes
    assert any('/**.robot_ip: none of this pipeline' in n for n in notes), notes
    typo = write(tmp_path, 'vla_nod:\n  ros__parameters:\n    instruction: "pick"\n',
                 'typo.yaml')
    with pytest.raises(ParameterError, match="did you mean 'vla_node'"):
        check_param_files([typo])


def test_numbers_are_read_as_rcl_reads_them(tmp_path):
    """`1e-3` is a float to rcl (YAML 1.2); PyYAML alone would read a string."""
    f = write(tmp_path, 'chunk_executor:\n  ros__parameters:\n    max_action_age_s: 3e-1\n'
              '    request_timeout_s: 1.5E+0\n')
    assert read_param_file(f)['chunk_executor'] == {'max_action_age_s': 0.3,
                                                   'request_timeout_s': 1.5}
    check_param_files([f])
    assert parse_overrides(['chunk_executor.max_action_age_s=1e-3']) == {
        'chunk_executor': {'max_action_age_s': 0.001}}


def test_an_empty_or_all_comment_file_sets_nothing(tmp_path):
    f = write(tmp_path, '# local overrides, none yet\n')
    assert read_param_file(f) == {}
    check_param_files([*default_param_files(), f])


@pytest.mark.parametrize('overrides, expected', [
    ({'nosuchnode': {'x': 1}}, "'nosuchnode' is not a node of this pipeline"),
    ({'chunk_executor': {'nosuch': 1}}, 'chunk_executor.nosuch: unknown parameter'),
    ({'chunk_executor': {'mode': 'bogus'}}, "must be one of \\['sync', 'async'\\]"),
    ({'chunk_executor': {'control_rate_hz': 2000.0}}, 'outside the allowed range'),
    ({'chunk_executor': {'velocity_dims': []}}, 'cannot carry an empty list'),
    ({'chunk_executor': {'velocity_dims': [0, 'a']}}, 'expected a list of int'),
    ({'watchdog': {'state.scale': [float('nan'), 1.0, 1.0]}}, 'must be finite'),
    ({'vla_node': {'use_compressed': 'yes'}}, 'expected bool'),
])
def test_overrides_are_checked_like_files(overrides, expected):
    with pytest.raises(ParameterError, match=expected):
        check_param_files(default_param_files(), overrides)


def test_whole_numbers_are_fine_floats_but_bools_are_not_numbers():
    check_parameters([], {'chunk_executor': {'max_action_age_s': 0, 'control_rate_hz': 100}},
                     NODE_PARAMETERS)
    with pytest.raises(ParameterError, match='expected float, got bool'):
        check_parameters([], {'chunk_executor': {'control_rate_hz': True}}, NODE_PARAMETERS)


@pytest.mark.parametrize('processes', [False, True])
def test_bringup_refuses_a_bad_layered_file_before_starting(tmp_path, capsys, processes):
    bad = write(tmp_path, 'chunk_executor:\n  ros__parameters:\n    control_rate_hz: "fast"\n')
    args = ['bringup', *map(str, default_param_files()), str(bad), '--duration', '5']
    code = cli_main(args + (['--processes'] if processes else []))
    err = capsys.readouterr().err
    assert code == 2
    assert 'control_rate_hz: expected float' in err and 'Traceback' not in err


@pytest.mark.parametrize('names, dims, expected', [
    (['vx', 'vy', 'grip'], [0, 1], None),
    (['vx', 'vy', 'grip'], [2], 'leading indices'),   # the motion dims lead the command
    (['vx', 'vy', 'grip'], [3], 'distinct indices in \\[0, 2\\]'),
    (['vx', 'vy', 'grip'], [-1], None),                 # none: a position interface
    (['vx', 'vy', 'grip'], [0, 0], 'distinct indices'),
    (['vx', 'vx'], [0], "'joint_names'"),
    (['vx', ''], [0], "'joint_names'"),
])
def test_the_executor_checks_velocity_dims_against_joint_names(names, dims, expected):
    p = {'joint_names': names, 'velocity_dims': dims, 'position_dims': [-1],
         'hold_mode': 'zero_velocity', 'hold_state.joints': ['x', 'y', '']}
    if expected is None:
        check_command_layout(p)
    else:
        with pytest.raises(ParameterError, match=expected):
            check_command_layout(p)


@pytest.mark.parametrize('args, expected', [
    (['mode:=bogus'], "ParameterError: parameter 'mode' = 'bogus' must be one of"),
    (['velocity_dims:=[5]'], "'velocity_dims' = [5] must be distinct indices"),
    (['velocity_dims:=[]'], 'cannot carry an empty list'),
    (['velocity_dims:=0'], "of type 'INTEGER', expecting type 'INTEGER_ARRAY'"),
])
def test_a_node_executable_says_what_is_wrong_in_one_line(args, expected):
    """`ros2 run vla_edge chunk_executor` with a bad parameter: exit 1 and one FATAL line."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(200 + os.getpid() % 30),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    cmd = [str(BIN / 'chunk_executor'), '--ros-args']
    for a in args:
        cmd += ['-p', a]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert expected in out and '[FATAL]' in out, out
    assert 'Traceback' not in out, out


def test_a_node_warns_about_parameters_it_does_not_declare():
    """Where bringup's file check does not run (`ros2 launch`, `ros2 run`), the node itself says
    which given parameters it ignores, and runs on."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(200 + os.getpid() % 30),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    proc = subprocess.Popen([str(BIN / 'chunk_executor'), '--ros-args', '-p', 'control_rate:=10.0',
                             '-p', 'mode:=sync'], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:            # until the node is up (its start-up INFO line)
            lines.append(line)
            if 'chunk executor: sync' in line:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    out = ''.join(lines) + rest
    assert 'ignoring parameters this node does not declare: control_rate' in out, out
    assert 'mode' not in out.split('does not declare:')[1].splitlines()[0]
    assert proc.returncode == 0, out


def test_a_params_file_that_does_not_parse_is_one_fatal_line(tmp_path):
    bad = write(tmp_path, 'vla_node: [\n')
    env = dict(os.environ, ROS_DOMAIN_ID=str(200 + os.getpid() % 30),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    proc = subprocess.run([str(BIN / 'chunk_executor'), '--ros-args', '--params-file', str(bad)],
                          env=env, capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "[FATAL]" in out and "Couldn't parse params file" in out, out
    assert 'Traceback' not in out, out


def test_whole_numbers_in_a_float_list_are_taken_as_floats(ros_context):
    """`scale: [1, 1, 1]` arrives as an integer array; rclpy alone would refuse it."""
    from rclpy.parameter import Parameter

    from vla_edge.nodes.watchdog_node import WatchdogNode

    node = WatchdogNode(context=ros_context,
                        parameter_overrides=[Parameter('state.scale', value=[2, 1, 1])])
    try:
        assert node.params['state.scale'] == [2.0, 1.0, 1.0]
        assert node.get_parameter('state.scale').type_ == Parameter.Type.DOUBLE_ARRAY
    finally:
        node.destroy_node()


@pytest.mark.parametrize('change, expected', [
    ({}, None),
    ({'position.joint_names': ['x', 'y']}, "'position.joint_names'"),
    ({'position.action_dims': [0, 3]}, "'position.action_dims'"),
    ({'position.state_dims': [3, 4]}, "of the state's positions"),    # x, y velocities
    ({'position.lower': [0.5, 0.0], 'position.upper': [0.4, 1.0]}, 'lower <= upper'),
    ({'position.lower': [0.0]}, "'position.lower'"),
])
def test_vla_node_checks_its_position_target_parameters(change, expected):
    from vla_edge.nodes.vla_node_params import PARAMETERS, check_position_targets

    p = {spec.name: spec.default for spec in PARAMETERS} | {'command_interface': 'position'}
    p.update(change)
    if expected is None:
        check_position_targets(p, action_dim=3, state_dim=5)
    else:
        with pytest.raises(ParameterError, match=expected):
            check_position_targets(p, action_dim=3, state_dim=5)
