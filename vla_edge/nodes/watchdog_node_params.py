"""watchdog_node's parameters: the core's checks (described, with ranges, in
core/watchdog/config.py) plus the node's own topics and timers."""
from __future__ import annotations

from vla_edge.core.watchdog import parameter_table
from vla_edge.nodes.messages import COMMAND_TYPES
from vla_edge.nodes.params import Spec
from vla_edge.nodes.twist_command import TWIST_PARAMETERS

NODE_PARAMETERS = (
    Spec('model_dir', '', 'Model folder whose manifest gives the command rate when '
         'command.control_rate_hz is 0 (only the manifest is read). Empty: $VLA_EDGE_MODEL_DIR '
         'or the packaged reference model, as the executor.'),
    Spec('camera_topic', 'camera/image_raw', 'Camera topic the policy sees (sensor_msgs/Image; '
         'with use_compressed, CompressedImage on <camera_topic>/compressed).'),
    Spec('use_compressed', False, 'Check sensor_msgs/CompressedImage on <camera_topic>/compressed '
         'instead (as vla_node\'s use_compressed; the decoded frame is checked, the encoding '
         'check is skipped).'),
    Spec('state.joints', ['', '', ''], 'Per command dimension: the joint_states name measured '
         'for it ("" = not measured; all "": joint_states is not used).'),
    Spec('state.fields', ['velocity', 'velocity', 'position'], 'Per command dimension: which '
         'JointState field (position or velocity) measures it.'),
    Spec('state.scale', [1.0, 1.0, 1.0], 'Per command dimension: factor from the measured value '
         'to command units.'),
    Spec('command_type', 'float64_multi_array', 'Message type of `command`, the robot\'s '
         'command interface. command_raw is always Float64MultiArray (keep the executor\'s '
         'command_type at float64_multi_array): every dimension is checked, then sent as this '
         'type (a twist: the twist.* parameters map dimensions to its fields).',
         choices=tuple(COMMAND_TYPES)),
    Spec('joint_names', ['vx', 'vy', 'grip'], 'Names of the command dimensions (the '
         'joint_trajectory command type).'),
    *TWIST_PARAMETERS,
    Spec('hold_timer_periods', 1.0, 'Send a command (the last one again, or the safe one while '
         'holding) when none went out for this many control periods.', range=(1.0, 10.0)),
    Spec('debug_image', False, 'Publish ~/debug_image: the frame with the check results drawn.'),
    Spec('diagnostics_period_s', 0.5, 'Period of /diagnostics messages (also sent on a latch).',
         range=(0.05, 60.0)),
    Spec('event_repeat_s', 1.0, 'A veto or clamp event from the same checks as the last one is '
         'repeated at most this often (latch, clear and reset events are always sent).',
         range=(0.0, 3600.0)),
)


# The node resolves 0 to the model manifest's rate before the core config sees it.
FROM_MODEL = {'command.control_rate_hz': dict(
    default=0.0, range=(0.0, 1000.0),
    description='Command rate; differences are taken at this rate (tick jitter would otherwise '
    'inflate them). Must be the executor\'s control_rate_hz. 0: the model manifest\'s '
    'control_rate_hz (model_dir), as the executor\'s default.')}


def parameter_specs() -> tuple[Spec, ...]:
    """Every watchdog parameter: the core's (described, with ranges) plus the node's own."""
    core = tuple(Spec(**{**p.as_spec_kwargs(), **FROM_MODEL.get(p.name, {})})
                 for p in parameter_table())
    return core + NODE_PARAMETERS


PARAMETERS = parameter_specs()
