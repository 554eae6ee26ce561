"""Launch arguments as parameter overrides that win only when the user gave them.

A launch file's parameter list `[params_file, {'camera_topic': LaunchConfiguration(...)}]` lets
the dict win over the file for every key it names, so an argument's default would silently beat
the value someone edited into the parameter file. The launch files therefore default these
arguments to '' ("the parameter file's value") and pass on only the ones that were set. No rclpy
or launch import: the launch files call this, and the tests call it directly.
"""
from __future__ import annotations

from collections.abc import Mapping

BOOLEAN_ARGUMENTS = ('use_compressed',)
# The robot's two topics, as launch arguments: each names what a pipeline topic is remapped to.
ROBOT_TOPIC_ARGUMENTS = {'command_topic': 'command', 'joint_states_topic': 'joint_states'}


def given_overrides(arguments: Mapping[str, str], names: tuple[str, ...]) -> dict:
    """{name: value} for each of `names` whose launch argument is not empty; booleans parsed.

    Raises ValueError with the argument's name for a boolean that is not true/false."""
    out: dict = {}
    for name in names:
        text = arguments.get(name, '').strip()
        if not text:
            continue
        if name in BOOLEAN_ARGUMENTS:
            if text.lower() not in ('true', 'false'):
                raise ValueError(f'launch argument {name}:={text!r}: expected true or false')
            out[name] = text.lower() == 'true'
        else:
            out[name] = text
    return out


def robot_topic_remaps(arguments: Mapping[str, str]) -> dict[str, str]:
    """{'command': target, 'joint_states': target} from the robot-topic launch arguments; an
    empty argument keeps the topic's own name (`-r command:=` would fail the node's start)."""
    return {topic: arguments.get(name, '').strip() or topic
            for name, topic in ROBOT_TOPIC_ARGUMENTS.items()}
