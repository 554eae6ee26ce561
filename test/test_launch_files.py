"""Launch files can't run here (no `launch`/`launch_ros`); check what can be checked statically:
they parse, declare the documented arguments, and name executables that setup.py installs."""
import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, 'id', getattr(n.func, 'attr', None)) == name]


def _str_args(call):
    return [a.value for a in call.args if isinstance(a, ast.Constant)]


def test_launch_arguments_and_executables():
    entry_points = set(re.findall(r"'(\w+) = vla_edge", (REPO / 'setup.py').read_text()))
    expected_args = {'model_dir', 'instruction', 'camera_topic', 'namespace', 'use_sim_time',
                     'config_file', 'watchdog_config_file', 'overlay_config_file'}
    for name in ('vla_edge.launch.py', 'sim_demo.launch.py'):
        tree = ast.parse((REPO / 'launch' / name).read_text())
        assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description'
                   for n in tree.body)
        declared = {_str_args(c)[0] for c in _calls(tree, 'DeclareLaunchArgument')}
        assert expected_args <= declared, f'{name} lacks {expected_args - declared}'
        for node in _calls(tree, 'Node'):
            exe = {k.arg: k.value.value for k in node.keywords
                   if isinstance(k.value, ast.Constant)}.get('executable')
            assert exe in entry_points, f'{name} runs {exe!r}, not a console script'


def test_package_xml_declares_the_runtime_dependencies():
    xml = (REPO / 'package.xml').read_text()
    for dep in ('rclpy', 'sensor_msgs', 'trajectory_msgs', 'diagnostic_msgs', 'std_srvs',
                'launch_ros', 'python3-opencv', 'python3-numpy'):
        assert f'<exec_depend>{dep}</exec_depend>' in xml
    assert '<build_type>ament_python</build_type>' in xml


def test_package_xml_declares_every_ros_package_the_code_imports():
    """Each ROS package imported anywhere under vla_edge/ (message packages, rclpy's own
    interfaces, ament_index_python) is an exec_depend, or rosdep would not install it."""
    xml = (REPO / 'package.xml').read_text()
    declared = set(re.findall(r'<exec_depend>([\w-]+)</exec_depend>', xml))
    ros_like = re.compile(r'^(rcl\w*|\w+_msgs|\w+_srvs|\w+_interfaces|ament_\w+|cv_bridge'
                          r'|launch\w*)$')
    imported = set()
    for path in (REPO / 'vla_edge').rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module
                     and node.level == 0 else [])
            imported |= {n.split('.')[0] for n in names}
    needed = {m for m in imported if ros_like.match(m)}
    assert needed, 'the scan found no ROS imports at all'
    assert needed <= declared, f'imported but not in package.xml: {sorted(needed - declared)}'


def _node_calls(tree):
    out = {}
    for node in _calls(tree, 'Node'):
        kw = {k.arg: k.value for k in node.keywords}
        exe = kw['executable'].value if isinstance(kw.get('executable'), ast.Constant) else None
        out[exe] = kw
    return out


def _picked(node_kw) -> set[str]:
    """The launch-argument overrides a node gets: the names in its `pick(...)` call."""
    picks = _calls(node_kw['parameters'], 'pick')
    assert len(picks) == 1, ast.unparse(node_kw['parameters'])
    return set(_str_args(picks[0]))


def test_the_watchdog_stands_between_the_executor_and_the_robot():
    """vla_edge.launch.py runs watchdog_node with config/watchdog.yaml, and nothing else is
    remapped onto the robot's `command` topic (the watchdog slot is filled)."""
    text = (REPO / 'launch' / 'vla_edge.launch.py').read_text()
    tree = ast.parse(text)
    nodes = _node_calls(tree)
    assert 'watchdog_node' in nodes
    params = ast.unparse(nodes['watchdog_node']['parameters'])
    assert "LaunchConfiguration('watchdog_config_file')" in params and 'sim_time' in params
    # a compressed camera must reach both readers of the camera, or the watchdog never arms
    for exe in ('watchdog_node', 'vla_node'):
        assert {'camera_topic', 'use_compressed'} <= _picked(nodes[exe]), exe
    assert "'watchdog.yaml'" in text and (REPO / 'config' / 'watchdog.yaml').is_file()
    for exe, kw in nodes.items():   # only the watchdog's output may become the robot's topic
        remaps = _remaps(kw)
        assert ('command' in remaps) == (exe == 'watchdog_node'), (exe, remaps)
    sim = ast.parse((REPO / 'launch' / 'sim_demo.launch.py').read_text())
    sim_nodes = _node_calls(sim)
    sim_remaps = ast.unparse(sim_nodes['sim'].get('remappings', ast.List(elts=[])))
    # the sim robot listens where the watchdog publishes, never to command_raw
    assert 'command_raw' not in sim_remaps
    assert "('command', topics['command'])" in sim_remaps, 'the sim robot must listen to `command`'
    include = ast.unparse(_calls(sim, 'IncludeLaunchDescription')[0])
    assert "'watchdog_config_file'" in include


def _remaps(node_kw):
    return ast.unparse(node_kw['remappings']) if 'remappings' in node_kw else ''


def _assigned(tree, name):
    return next(ast.unparse(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                and getattr(n.targets[0], 'id', None) == name)


def test_the_robot_topics_are_remappable_and_default_to_themselves():
    """A robot's controller and state topics rarely are `command` and `joint_states`: the robot
    launch file remaps them, for every node that uses them, and its defaults change nothing;
    sim_demo takes the same arguments and moves its robot with them."""
    for name in ('vla_edge.launch.py', 'sim_demo.launch.py'):
        tree = ast.parse((REPO / 'launch' / name).read_text())
        defaults = {_str_args(c)[0]: next(ast.literal_eval(k.value) for k in c.keywords
                                          if k.arg == 'default_value')
                    for c in _calls(tree, 'DeclareLaunchArgument')
                    if _str_args(c)[0].endswith('_topic')}
        assert defaults['command_topic'] == 'command', name
        assert defaults['joint_states_topic'] == 'joint_states', name
    tree = ast.parse((REPO / 'launch' / 'vla_edge.launch.py').read_text())
    assert _assigned(tree, 'state') == "('joint_states', topics['joint_states'])"
    assert _assigned(tree, 'command') == "('command', topics['command'])"
    nodes = _node_calls(tree)
    assert {exe: _remaps(kw) for exe, kw in nodes.items()} == {
        'vla_node': '[state]', 'chunk_executor': '[state]', 'watchdog_node': '[state, command]'}
    sim = ast.parse((REPO / 'launch' / 'sim_demo.launch.py').read_text())
    include = ast.unparse(_calls(sim, 'IncludeLaunchDescription')[0])
    assert '*ROBOT_TOPIC_ARGUMENTS' in include
    robot = _remaps(_node_calls(sim)['sim'])
    assert "('command', topics['command'])" in robot
    assert "('joint_states', topics['joint_states'])" in robot


def test_overriding_arguments_default_to_the_parameter_files_value():
    """An argument's default must not beat what someone edited into the parameter file: each
    argument the nodes take as an override defaults to '' (given_overrides drops it)."""
    tree = ast.parse((REPO / 'launch' / 'vla_edge.launch.py').read_text())
    overridable = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                       and n.targets[0].id == 'OVERRIDABLE')
    nodes = _node_calls(tree)
    assert set().union(*(_picked(kw) for kw in nodes.values())) == set(overridable)
    defaults = {_str_args(c)[0]: next(k.value.value for k in c.keywords
                                      if k.arg == 'default_value')
                for c in _calls(tree, 'DeclareLaunchArgument')
                if _str_args(c)[0] in overridable}
    assert defaults == {name: '' for name in overridable}
    sim = ast.parse((REPO / 'launch' / 'sim_demo.launch.py').read_text())
    instruction = next(c for c in _calls(sim, 'DeclareLaunchArgument')
                       if _str_args(c)[0] == 'instruction')
    assert next(k.value.value for k in instruction.keywords if k.arg == 'default_value') == ''


def test_sim_demo_forwards_the_camera_topic_to_the_pipeline_and_the_sim_camera():
    tree = ast.parse((REPO / 'launch' / 'sim_demo.launch.py').read_text())
    text = ast.unparse(tree)
    assert "'camera_topic'" in text.split('IncludeLaunchDescription', 1)[1]   # forwarded
    sim = next(c for c in _calls(tree, 'Node'))
    remaps = next(k.value for k in sim.keywords if k.arg == 'remappings')
    assert "('camera/image_raw', LaunchConfiguration('camera_topic'))" in ast.unparse(remaps)


def test_the_executor_and_the_watchdog_follow_the_same_model():
    """Both default their rate to the model manifest's (0): they must read the same folder, or
    the watchdog differentiates commands at another rate than they are sent at."""
    nodes = _node_calls(ast.parse((REPO / 'launch' / 'vla_edge.launch.py').read_text()))
    for exe in ('vla_node', 'chunk_executor', 'watchdog_node'):
        assert 'model_dir' in _picked(nodes[exe]), exe


def test_the_sim_launch_runs_position_targets_and_the_robot_launch_the_base_files():
    """sim_demo.launch.py defaults its overlay to config/position_targets.yaml (the sim's
    default interface, as `vla-edge bringup`), forwards it to the pipeline and gives it to the
    sim node too; vla_edge.launch.py (a real robot) has no overlay unless given one."""
    def overlay_default(tree):
        call = next(c for c in _calls(tree, 'DeclareLaunchArgument')
                    if _str_args(c)[0] == 'overlay_config_file')
        return ast.unparse(next(k.value for k in call.keywords if k.arg == 'default_value'))

    sim = ast.parse((REPO / 'launch' / 'sim_demo.launch.py').read_text())
    assert "'position_targets.yaml'" in overlay_default(sim)
    assert (REPO / 'config' / 'position_targets.yaml').is_file()
    assert "'overlay_config_file'" in ast.unparse(_calls(sim, 'IncludeLaunchDescription')[0])
    sim_node = _node_calls(sim)['sim']
    assert 'extra' in ast.unparse(sim_node['parameters'])      # the overlay, when set
    robot = ast.parse((REPO / 'launch' / 'vla_edge.launch.py').read_text())
    assert overlay_default(robot) == "''"
