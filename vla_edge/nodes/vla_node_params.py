"""vla_node's parameters: declared with descriptions and ranges, listed in config/pipeline.yaml."""
from __future__ import annotations

from vla_edge.core.key_frame import DEFAULT_MAX_INTERVAL_S, DEFAULT_MIN_CHANGE
from vla_edge.nodes.params import ParameterError, Spec, distinct_names

PARAMETERS = (
    Spec('model_dir', '', 'Model folder (manifest.yaml + ONNX per stage). Empty: '
         '$VLA_EDGE_MODEL_DIR or the packaged reference model.'),
    Spec('providers', ['CPUExecutionProvider'], 'ONNX Runtime execution providers, in order of '
         'preference; unavailable ones are skipped with a warning.'),
    Spec('intra_op_threads', 1, 'Threads per ONNX session (0 lets ONNX Runtime choose).',
         range=(0, 64)),
    Spec('instruction', 'put the tea bag in the mug', 'Initial instruction; the instruction topic '
         'overrides it.'),
    Spec('camera_topic', 'camera/image_raw', 'Camera topic (sensor_msgs/Image; with '
         'use_compressed, CompressedImage on <camera_topic>/compressed).'),
    Spec('use_compressed', False, 'Subscribe to sensor_msgs/CompressedImage instead of Image.'),
    Spec('state_position_joints', ['x', 'y', 'gripper'], 'JointState names whose positions form '
         'the start of the state vector.'),
    Spec('state_velocity_joints', ['x', 'y'], 'JointState names whose velocities follow.'),
    Spec('state_pairing', 'frame_time', 'Which robot state goes with a frame. frame_time: the '
         'joint_states sample stamped nearest to the frame (image and state of one instant; the '
         'chunk is stamped with that instant). newest: the newest state received, which is ahead '
         'of the image while the robot moves (README "Image and state of one instant").',
         choices=('frame_time', 'newest')),
    Spec('state_history_s', 1.0, 'How much joint_states history is kept for frame_time pairing.',
         range=(0.05, 10.0)),
    Spec('state_max_offset_s', 0.1, 'A state stamped farther than this from its frame is still '
         'used (it is the nearest there is) but counted (errors_state_offset) and warned about: '
         'joint_states lagging or stalled, or stamped on another clock than the camera. So is a '
         'state arriving this much after (or before) its stamp (errors_state_clock).',
         range=(0.001, 10.0)),
    Spec('key_frame_min_change', DEFAULT_MIN_CHANGE, 'Encode a frame only when some part of '
         'the scene changed by at least this many levels (0-255) in some colour channel since '
         'the last encoded frame, on a 32x32 thumbnail (cell means: sensor noise shrinks; at '
         '128 px a 1 px shift of an edge of contrast C moves a cell by C/4, at 640x480 by C/15 or '
         'less). Otherwise the last embedding stands for the frame, re-stamped with its time '
         '(frames_skipped_unchanged). 0: encode every frame.', range=(0.0, 255.0)),
    Spec('key_frame_max_interval_s', DEFAULT_MAX_INTERVAL_S, 'Encode at least this often (by '
         'frame stamps), changed or not: a re-stamped frame\'s pixels are at most this much '
         'older than its stamp (keep it at or below the executor\'s max_action_age_s). 0: encode '
         'every frame.', range=(0.0, 10.0)),
    Spec('noise_seed', -1, 'Seed of the denoiser noise (-1: a fresh seed per chunk; >= 0: the '
         'noise is a function of this seed and the observation stamp, so a replay on sim time '
         'reproduces every chunk exactly: replay tests).', range=(-1, 2**31 - 1)),
    Spec('plan_on_frame', False, 'Free-running: plan a chunk on every encoded frame instead of '
         'on chunk_request (no executor; used by the pipeline-overhead benchmark).'),
    Spec('fresh_frame_timeout_s', 0.5, 'After an executor reset (a new request epoch), plan only '
         'from a frame received after the reset and stamped no earlier than it, waiting at most '
         'this long (wall time: it guards against a dead camera) for one; then plan from the '
         'newest frame and report it (errors_stale_frame_after_reset). 0 turns the wait off.',
         range=(0.0, 10.0)),
    Spec('emulated_latency_s', 0.0, 'EMULATION: make every chunk take at least this long from '
         'when its planning starts (on the node clock: sim time with use_sim_time), to emulate '
         'a slower board. Reported in diagnostics.', range=(0.0, 10.0)),
    Spec('command_interface', 'velocity', 'What the published chunks carry. velocity: the '
         "model's actions as they are. position: for a position-controlled robot, the model's "
         'velocity columns (position.action_dims) integrated into position targets, one control '
         'step each, from the robot state the chunk was planned from (position.state_dims), named '
         'position.joint_names (core/position_targets.py).', choices=('velocity', 'position')),
    Spec('position.joint_names', ['x', 'y', 'grip'], 'command_interface position: the names of '
         "the chunk's columns (one per model action; the executor's joint_names)."),
    Spec('position.action_dims', [0, 1], 'command_interface position: the model action columns '
         'that are velocities (normalized: 1 = top speed), integrated into positions.'),
    Spec('position.state_dims', [0, 1], 'command_interface position: the state vector entries '
         '(state_position_joints first) they start from, one per action dim.'),
    Spec('position.top_speed', 0.6, 'command_interface position: the speed of velocity 1, in '
         'position units per second (the sim: 0.6 table units/s); one step of the chunk is '
         '1/control_rate_hz of the model.', range=(1e-9, 1e6)),
    Spec('position.lower', [0.03, 0.03], 'command_interface position: per action dim, the lowest '
         'target (the sim: its workspace); targets stop there as the robot does.'),
    Spec('position.upper', [0.97, 0.97], 'command_interface position: per action dim, the '
         'highest target.'),
    Spec('diagnostics_period_s', 1.0, 'Period of /diagnostics messages.', range=(0.05, 60.0)),
)


def check_state_joints(p: dict) -> None:
    """The state vector is looked up by joint name: a name listed twice would feed one joint
    where the model expects another."""
    for key in ('state_position_joints', 'state_velocity_joints'):
        names = list(p[key])
        if not distinct_names(names):
            raise ParameterError(f'parameter {key!r} = {names} must be distinct, non-empty '
                                 'joint names (a name twice would feed one joint twice)')


def check_position_targets(p: dict, action_dim: int, state_dim: int) -> None:
    """command_interface position names every chunk column and integrates some of them from the
    state: indices outside the model's actions or state would fail on the first chunk."""
    if p['command_interface'] != 'position':
        return
    names, dims = list(p['position.joint_names']), list(p['position.action_dims'])
    start = list(p['position.state_dims'])
    if len(names) != action_dim or not distinct_names(names):
        raise ParameterError(f"parameter 'position.joint_names' = {names} must be {action_dim} "
                             'distinct names, one per model action')
    if not dims or len(set(dims)) != len(dims) or not all(0 <= d < action_dim for d in dims):
        raise ParameterError(f"parameter 'position.action_dims' = {dims} must be distinct "
                             f'indices in [0, {action_dim - 1}]')
    positions = len(p['state_position_joints'])   # the state vector starts with the positions
    if len(start) != len(dims) or not all(0 <= d < min(positions, state_dim) for d in start):
        raise ParameterError(f"parameter 'position.state_dims' = {start} must be "
                             f'{len(dims)} indices (one per action dim) of the state\'s '
                             f'positions, in [0, {min(positions, state_dim) - 1}] '
                             '(state_position_joints come first)')
    lower, upper = list(p['position.lower']), list(p['position.upper'])
    if len(lower) != len(dims) or len(upper) != len(dims) or \
            any(not lo <= hi for lo, hi in zip(lower, upper)):
        raise ParameterError(f"parameters 'position.lower' = {lower} and 'position.upper' = "
                             f'{upper} must have {len(dims)} values each (one per action dim), '
                             'lower <= upper')
