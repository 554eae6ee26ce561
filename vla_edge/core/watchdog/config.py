"""Every watchdog setting in one place: defaults, meaning, allowed range, validation.

Each field is a scalar or a flat tuple, and carries `metadata={'description', 'range', 'choices',
'item_range', 'item_choices'}`, so the node declares each as a ROS parameter without repeating
any of it: `[Spec(**p.as_spec_kwargs()) for p in parameter_table()]`, then
`WatchdogConfig.from_params(values)`. Parameter names are `<section>.<field>` (`frame.max_age_s`).

Defaults are tuned on the simulator (128x128 frames with per-frame sensor noise, commands
[vx, vy, grip] at 50 Hz, |v| <= 1): they give no veto on the scripted expert over 50 seeds (see
test/core/watchdog/test_false_vetoes.py) and no veto, only clamps, on the reference policy.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

FRAME_CHECKS = ('stale', 'format', 'frozen', 'dark', 'saturated', 'blur', 'blocked')
CAMERA_MOUNTS = ('fixed', 'wrist', 'off')
GATE_MODES = ('clamp', 'veto', 'off')
HOLD_MODES = ('last', 'zero_velocity', 'state')   # as the chunk executor holds
COLOUR_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8')


def param(default: Any, description: str, *, range: tuple[float, float] | None = None,
          choices: Sequence[str] | None = None, item_range: tuple[float, float] | None = None,
          item_choices: Sequence[str] | None = None) -> Any:
    """A config field whose metadata is all the node needs to declare it as a parameter."""
    meta = {'description': description, 'range': range, 'choices': choices,
            'item_range': item_range, 'item_choices': item_choices}
    if isinstance(default, list):
        default = tuple(default)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ParamInfo:
    """One ROS parameter as the node layer's `Spec` wants it (lists carry their per-item limits
    in the description: Spec's range check is for scalars)."""

    name: str
    default: Any
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None

    def as_spec_kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_scalar(name: str, value: Any, kind: type, rng, choices) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f'{name} = {value!r} must be true or false')
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f'{name} = {value!r} must be of type {kind.__name__}')
    if kind is float and math.isnan(value):
        raise ValueError(f'{name} = {value!r} must be a number')
    if rng is not None and not rng[0] <= value <= rng[1]:
        raise ValueError(f'{name} = {value!r} is outside the allowed range [{rng[0]}, {rng[1]}]')
    if choices is not None and value not in choices:
        raise ValueError(f'{name} = {value!r} must be one of {list(choices)}')
    return value


def validate_fields(config: Any) -> None:
    """Check every field against its metadata; coerce ints to floats and lists to tuples.

    Raises ValueError naming the parameter (`section.field`), the value and what is allowed.
    """
    for f in dataclasses.fields(config):
        name = f'{config.SECTION}.{f.name}'
        value = getattr(config, f.name)
        meta = f.metadata
        if isinstance(f.default, tuple):
            if not _is_list(value):
                raise ValueError(f'{name} = {value!r} must be a list')
            kind = type(f.default[0]) if f.default else str
            items = tuple(_check_scalar(f'{name}[{i}]', v, kind, meta['item_range'],
                                        meta['item_choices']) for i, v in enumerate(value))
            object.__setattr__(config, f.name, items)
        else:
            checked = _check_scalar(name, value, type(f.default), meta['range'], meta['choices'])
            object.__setattr__(config, f.name, checked)


def _describe(meta: Mapping[str, Any]) -> str:
    text = meta['description']
    if meta['item_range'] is not None:
        text += f' Each item in [{meta["item_range"][0]}, {meta["item_range"][1]}].'
    if meta['item_choices'] is not None:
        text += f' Items from: {", ".join(meta["item_choices"])}.'
    return text


@dataclass(frozen=True)
class FrameCheckConfig:
    """Camera frame health (frame_checks.py). Grey levels are 0..255 on the analysis image."""

    SECTION: ClassVar[str] = 'frame'

    checks: tuple[str, ...] = param(
        FRAME_CHECKS, 'Frame checks that run.', item_choices=FRAME_CHECKS)
    max_age_s: float = param(
        0.5, 'A frame whose stamp is older than this (or no frame at all) is stale.',
        range=(0.001, 60.0))
    stall_gap_periods: float = param(
        0.0, 'The watchdog is called at least once per hold-timer period; a gap of more than '
        'this many control periods between two calls means its own process stalled (an '
        'overloaded machine), and frames may be queued unseen behind the stall. Such stalls '
        '(less one control period each) do not count toward a frame\'s age: a frame is stale '
        'once it is older than max_age_s of the watchdog\'s own running time. 0: off.',
        range=(0.0, 1000.0))
    expected_width: int = param(0, 'Camera width in pixels; 0: any.', range=(0, 16384))
    expected_height: int = param(0, 'Camera height in pixels; 0: any.', range=(0, 16384))
    encodings: tuple[str, ...] = param(
        COLOUR_ENCODINGS, 'Accepted image encodings (a colour policy fed mono frames is '
        'misconfigured).')
    analysis_max_side: int = param(
        320, 'Frames are downscaled once so their longer side is at most this, and all checks '
        'share that grey image (bounds the cost; blur thresholds refer to this scale).',
        range=(32, 4096))
    min_bad_frames: int = param(
        3, 'Consecutive bad frames before dark/saturated/blur/blocked become an error (a single '
        'glitched frame only warns).', range=(1, 1000))
    frozen_max_mean_diff: float = param(
        0.2, 'Mean absolute grey difference between consecutive frames at or below which they '
        'count as identical. Real sensors (and the sim, noise std >= 1) never repeat a frame: '
        'static-scene noise measured >= 0.8 in the sim.', range=(0.0, 50.0))
    frozen_min_frames: int = param(
        5, 'Identical consecutive frames needed to call the stream frozen.', range=(2, 100000))
    frozen_min_duration_s: float = param(
        0.5, 'And for at least this long (by frame stamps).', range=(0.0, 600.0))
    dark_level: float = param(20.0, 'Pixels at or below this are dark.', range=(0.0, 255.0))
    dark_max_fraction: float = param(
        0.75, 'More dark pixels than this fraction: the frame is dark.', range=(0.0, 1.0))
    saturated_level: float = param(
        250.0, 'Pixels at or above this are saturated.', range=(0.0, 255.0))
    saturated_max_fraction: float = param(
        0.75, 'More saturated pixels than this fraction: the frame is saturated (the sim peaks '
        'at 2.3%: bright episodes clip the table).', range=(0.0, 1.0))
    blur_min_laplacian_var: float = param(
        50.0, 'Variance of the Laplacian below this: blurred (clean sim frames >= 171, after a '
        '5x5 Gaussian blur <= 24).', range=(0.0, 1e6))
    block_cols: int = param(8, 'Columns of the block grid.', range=(1, 64))
    block_rows: int = param(6, 'Rows of the block grid.', range=(1, 64))
    block_dark_level: float = param(30.0, 'Block mean at or below this: dark block.',
                                    range=(0.0, 255.0))
    block_saturated_level: float = param(
        245.0, 'Block mean at or above this: saturated block.', range=(0.0, 255.0))
    block_flat_std: float = param(
        1.0, 'Block standard deviation below this: no texture, not even sensor noise (the sim '
        'table, with noise, measured >= 1.4).', range=(0.0, 128.0))
    blocked_max_fraction: float = param(
        0.3, 'More bad (dark, saturated or flat) blocks than this fraction: view blocked.',
        range=(0.0, 1.0))

    def __post_init__(self) -> None:
        validate_fields(self)
        for name in self.encodings:
            if not name:
                raise ValueError('frame.encodings must not contain an empty name')
        if self.dark_level >= self.saturated_level:
            raise ValueError(f'frame.dark_level = {self.dark_level} must be below '
                             f'frame.saturated_level = {self.saturated_level}')
        if self.block_dark_level >= self.block_saturated_level:
            raise ValueError(f'frame.block_dark_level = {self.block_dark_level} must be below '
                             f'frame.block_saturated_level = {self.block_saturated_level}')


@dataclass(frozen=True)
class MotionCheckConfig:
    """Commanded motion vs image motion (motion_check.py). Image speeds are in image widths per
    second, so they do not depend on the flow resolution or the frame rate."""

    SECTION: ClassVar[str] = 'motion'

    camera_mount: str = param(
        'fixed', 'fixed: the camera sees the arm move; wrist: the camera moves with the arm and '
        'sees ego-motion everywhere; off: no motion check.', choices=CAMERA_MOUNTS)
    flow_max_side: int = param(
        80, 'Optical flow runs on a grey image with this longer side (cost ~0.6 ms).',
        range=(16, 1024))
    flow_interval_s: float = param(
        0.1, 'Flow compares the newest frame with the one this much older: more motion per '
        'comparison than consecutive frames, and the same at any frame rate.',
        range=(0.0, 2.0))
    max_frame_gap_s: float = param(
        0.5, 'A longer gap between frames restarts the check (the stale check covers gaps).',
        range=(0.01, 60.0))
    window_s: float = param(
        1.0, 'How long commands and image must disagree before it is a fault.',
        range=(0.05, 60.0))
    speed_dims: tuple[int, ...] = param(
        (0, 1), 'Command dims whose norm is the commanded speed: the value of a velocity dim, '
        'the rate of change (per second) of a position dim. Not the sim gripper: its command '
        'toggles, and the closing fingers are too small to judge.', item_range=(0, 63))
    moving_command_min: float = param(
        0.3, 'Commanded speed (command units) above which the robot must be seen moving.',
        range=(0.0, 1e6))
    still_command_max: float = param(
        0.05, 'Commanded speed below which the robot is still.', range=(0.0, 1e6))
    pixel_speed_min: float = param(
        0.06, 'Flow speed (image widths/s) above which a pixel moves (sim noise stays below).',
        range=(0.0, 100.0))
    fixed_min_moving_fraction: float = param(
        0.005, 'fixed: at least this fraction of moving pixels shows the arm moving (sim arm '
        'moving: >= 0.03; noise: <= 0.002).', range=(0.0, 1.0))
    fixed_max_still_fraction: float = param(
        0.3, 'fixed: more moving pixels than this while commanded still is a fault (camera '
        'knocked, or something large moving in view).', range=(0.0, 1.0))
    wrist_min_speed: float = param(
        0.02, 'wrist: median flow speed over textured pixels that shows ego-motion.',
        range=(0.0, 100.0))
    wrist_max_still_speed: float = param(
        0.1, 'wrist: median flow speed while commanded still that is a fault.',
        range=(0.0, 100.0))
    texture_min_gradient: float = param(
        40.0, 'Sobel gradient magnitude above which a pixel has texture (flow is only '
        'measurable there).', range=(0.0, 4096.0))
    texture_min_fraction: float = param(
        0.02, 'wrist: fewer textured pixels than this and the check is not applicable.',
        range=(0.0, 1.0))

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.still_command_max >= self.moving_command_min:
            raise ValueError(f'motion.still_command_max = {self.still_command_max} must be below '
                             f'motion.moving_command_min = {self.moving_command_min}')


_PER_DIM = 'One value per command dimension'


@dataclass(frozen=True)
class CommandGateConfig:
    """Command gate (command_checks.py). Per-dimension lists have command_dim items; a limit of
    0 disables that limit for that dimension.

    velocity_dims says which dimensions are velocities (the sim's vx, vy); the rest are
    positions. A limit means the same physical quantity either way: for a position dimension,
    velocity is the first difference of the command, for a velocity dimension it is the command
    itself (and acceleration the first difference, jerk the second)."""

    SECTION: ClassVar[str] = 'command'

    command_dim: int = param(3, 'Expected command length.', range=(1, 64))
    control_rate_hz: float = param(
        50.0, 'Command rate; differences are taken at this rate (tick jitter would otherwise '
        'inflate them).', range=(1.0, 1000.0))
    velocity_dims: tuple[int, ...] = param(
        (0, 1), 'Indices of velocity dimensions (zeroed on hold). [-1]: none (a position '
        'interface; ROS 2 parameters cannot carry an empty list).', item_range=(-1, 63))
    value_min: tuple[float, ...] = param(
        (-1.0, -1.0, -1.5), f'{_PER_DIM}: lower bound of the command value (the sim gripper '
        'command acts at +-0.5 and the reference policy overshoots +-1 by up to 0.1).',
        item_range=(-1e9, 1e9))
    value_max: tuple[float, ...] = param(
        (1.0, 1.0, 1.5), f'{_PER_DIM}: upper bound of the command value.',
        item_range=(-1e9, 1e9))
    bounds_mode: str = param('clamp', 'On a value outside its bounds.', choices=GATE_MODES)
    bounds_veto_ratio: float = param(
        2.0, 'In clamp mode, a value farther from the centre of its bounds than this many '
        'half-ranges is vetoed: a policy that far out is broken, not eager.',
        range=(1.0, 1e6))
    max_velocity: tuple[float, ...] = param(
        (0.0, 0.0, 0.0), f'{_PER_DIM}: |velocity| limit; 0: none (the sim\'s bounds already '
        'limit its velocity dims).', item_range=(0.0, 1e9))
    velocity_mode: str = param('clamp', 'On a velocity over its limit.', choices=GATE_MODES)
    max_acceleration: tuple[float, ...] = param(
        (10.0, 10.0, 0.0), f'{_PER_DIM}: |acceleration| limit; 0: none (sim expert <= 4, '
        'the reference policy in async mode <= 9).', item_range=(0.0, 1e9))
    acceleration_mode: str = param('clamp', 'On an acceleration over its limit.',
                                   choices=GATE_MODES)
    max_jerk: tuple[float, ...] = param(
        (1000.0, 1000.0, 0.0), f'{_PER_DIM}: |jerk| limit; 0: none (sim expert <= 400).',
        item_range=(0.0, 1e12))
    jerk_mode: str = param('clamp', 'On a jerk over its limit.', choices=GATE_MODES)
    max_state_step: tuple[float, ...] = param(
        (0.0, 0.0, 0.0), f'{_PER_DIM}: |command - measured state| limit (the caller maps the '
        'state into command space); 0: none.', item_range=(0.0, 1e9))
    state_step_mode: str = param('veto', 'On a command too far from the measured state.',
                                 choices=GATE_MODES)
    max_switch_jump: tuple[float, ...] = param(
        (0.5, 0.5, 0.0), f'{_PER_DIM}: |change| limit on the first command of a new chunk; '
        '0: none (the sim gripper command toggles between -1 and 1).', item_range=(0.0, 1e9))
    switch_jump_mode: str = param('clamp', 'On a jump at a chunk switch.', choices=GATE_MODES)
    history_timeout_s: float = param(
        0.5, 'After this long without a sent command, differences restart from rest at the '
        'last sent command (velocity dims from zero).', range=(0.001, 60.0))

    def __post_init__(self) -> None:
        validate_fields(self)
        if tuple(self.velocity_dims) == (-1,):
            object.__setattr__(self, 'velocity_dims', ())
        n = self.command_dim
        for name in ('value_min', 'value_max', 'max_velocity', 'max_acceleration', 'max_jerk',
                     'max_state_step', 'max_switch_jump'):
            if len(getattr(self, name)) != n:
                raise ValueError(f'command.{name} = {list(getattr(self, name))} must have '
                                 f'command.command_dim = {n} items')
        for i, (lo, hi) in enumerate(zip(self.value_min, self.value_max)):
            if lo > hi:
                raise ValueError(f'command.value_min[{i}] = {lo} must not exceed '
                                 f'command.value_max[{i}] = {hi}')
        if len(set(self.velocity_dims)) != len(self.velocity_dims) \
                or any(not 0 <= d < n for d in self.velocity_dims):
            raise ValueError(f'command.velocity_dims = {list(self.velocity_dims)} must be '
                             f'distinct indices in [0, {n - 1}]')


@dataclass(frozen=True)
class LivenessConfig:
    """Heartbeat timeouts (liveness.py); 0 leaves that input unmonitored."""

    SECTION: ClassVar[str] = 'liveness'

    command_timeout_s: float = param(
        0.5, 'No command_raw for this long: the executor is gone (ticks jitter up to ~0.1 s '
        'on a loaded machine).', range=(0.0, 60.0))
    chunk_timeout_s: float = param(
        3.0, 'No action_chunk for this long: inference hangs (a 50-step chunk at 50 Hz lasts '
        '1 s; add the inference latency and margin).', range=(0.0, 600.0))

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class LatchConfig:
    """What a veto does until it is cleared (latch.py)."""

    SECTION: ClassVar[str] = 'latch'

    auto_clear_after_s: float = param(
        0.0, 'Clear a latched veto after this long continuously healthy; 0: only a reset '
        'clears it.', range=(0.0, 3600.0))
    arm_after_s: float = param(
        0.5, 'Arm (let faults latch) only once every input has arrived and none has faulted '
        'for this long; until then hold without latching, so a start-up stall (first '
        'inferences, sessions warming up) needs no reset. 0: arm on the first of each input.',
        range=(0.0, 60.0))
    hold_mode: str = param(
        'zero_velocity', 'Safe command while latched: repeat the last safe command; that '
        'command with its velocity dims zeroed (as the chunk executor holds); or state: the '
        'measured state (state.*) for the dims it maps, read when the hold starts, velocity dims '
        'zeroed (position targets: stay where the robot is).',
        choices=HOLD_MODES)

    def __post_init__(self) -> None:
        validate_fields(self)


SECTIONS: dict[str, type] = {'frame': FrameCheckConfig, 'motion': MotionCheckConfig,
                             'command': CommandGateConfig, 'liveness': LivenessConfig,
                             'latch': LatchConfig}


@dataclass(frozen=True)
class WatchdogConfig:
    """All sections; `parameter_table` and `from_params` map them to flat ROS parameters."""

    frame: FrameCheckConfig = field(default_factory=FrameCheckConfig)
    motion: MotionCheckConfig = field(default_factory=MotionCheckConfig)
    command: CommandGateConfig = field(default_factory=CommandGateConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    latch: LatchConfig = field(default_factory=LatchConfig)

    def __post_init__(self) -> None:
        n = self.command.command_dim
        if not self.motion.speed_dims or any(d >= n for d in self.motion.speed_dims):
            raise ValueError(f'motion.speed_dims = {list(self.motion.speed_dims)} must be '
                             f'indices in [0, {n - 1}] (command.command_dim = {n})')

    @classmethod
    def from_params(cls, values: Mapping[str, Any]) -> WatchdogConfig:
        """Build from {'section.field': value}; missing names keep their defaults.

        Raises ValueError for an unknown name or a bad value (naming it).
        """
        by_section: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
        for name, value in values.items():
            section, _, key = name.partition('.')
            kind = SECTIONS.get(section)
            if kind is None or key not in {f.name for f in dataclasses.fields(kind)}:
                raise ValueError(f'unknown watchdog parameter {name!r}')
            by_section[section][key] = list(value) if _is_list(value) else value
        return cls(**{s: SECTIONS[s](**kw) for s, kw in by_section.items()})

    def flat(self) -> dict[str, Any]:
        """{'section.field': value}, the inverse of from_params."""
        return {p.name: p.default for p in parameter_table(self)}


def _is_list(value: Any) -> bool:
    return not isinstance(value, str | bytes) and hasattr(value, '__iter__')


def parameter_table(config: WatchdogConfig | None = None) -> tuple[ParamInfo, ...]:
    """One ParamInfo per field, defaults taken from `config` (the built-in defaults if None)."""
    config = config or WatchdogConfig()
    rows = []
    for section in SECTIONS:
        sub = getattr(config, section)
        for f in dataclasses.fields(sub):
            value = getattr(sub, f.name)
            meta = f.metadata
            rows.append(ParamInfo(
                name=f'{section}.{f.name}',
                default=list(value) if isinstance(value, tuple) else value,
                description=_describe(meta),
                range=meta['range'],
                choices=tuple(meta['choices']) if meta['choices'] is not None else None))
    return tuple(rows)
