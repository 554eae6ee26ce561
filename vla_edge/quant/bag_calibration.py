"""Calibration observations from a rosbag2: each camera frame with what the robot knew then.

A frame is paired by arrival with the newest joint_states received at or before it (the bag's
receive timestamps; a frame with no state before it is skipped and counted), as `vla_node` does
with `state_pairing: newest`. vla_node's default pairs by header stamps instead (the state
nearest the frame's); calibration only needs activation ranges and states a robot really had,
which either pairing gives. Each frame also gets the newest instruction at or before it (else
`DEFAULT_INSTRUCTION`, vla_node's initial one). The state vector is
`core.joint_state.state_vector`, as in vla_node; a joint state it rejects (missing joint, NaN) is
counted and the previous one stays in force, as live.

Topics default to vla_node's (`/camera/image_raw`, or its `/compressed` when only that was
recorded, `/joint_states`, `/instruction`), which is what `vla-edge replay-test --record-sim-run`
records; the same names under a namespace (`/robot1/camera/image_raw`) are found too. Messages
are decoded with rosbags' typestore (no rclpy, no sourced ROS), and frames with
`ImageConverter` (rgb8/bgr8/mono/..., jpeg/png). Frames that cannot be decoded are skipped and
counted; only a bag with no usable frame is an error.

Memory stays bounded on long bags: frames are thinned on the fly to an even stride (at most
2 * max_frames kept), then evenly subsampled to `max_frames`: exactly even up to 2 * max_frames
usable frames, even to within one stride (at most usable / max_frames frames) beyond.

rosbags comes with the `replay` extra; it is imported only when a bag is read.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vla_edge.core.errors import VlaEdgeError
from vla_edge.core.joint_state import (
    DEFAULT_POSITION_JOINTS,
    DEFAULT_VELOCITY_JOINTS,
    state_vector,
)
from vla_edge.core.ros_image import ImageConverter
from vla_edge.quant.even_spread import evenly_spread
from vla_edge.sim.env import Observation

DEFAULT_INSTRUCTION = 'put the tea bag in the mug'   # vla_node's `instruction` parameter
DEFAULT_MAX_FRAMES = 200
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
STATE_TYPES = ('sensor_msgs/msg/JointState',)
INSTRUCTION_TYPES = ('std_msgs/msg/String',)


@dataclass(frozen=True)
class BagTopicNames:
    """Topics to read (as vla_node subscribes to them); also found under a namespace."""

    camera: str = '/camera/image_raw'       # or <camera>/compressed when only that is in the bag
    joint_states: str = '/joint_states'
    instruction: str = '/instruction'       # optional: without it, DEFAULT_INSTRUCTION


@dataclass
class BagObservations:
    """The observations of a bag and what was left out, and why (JSON via `to_dict`)."""

    bag: Path
    camera_topic: str
    state_topic: str
    instruction_topic: str | None
    observations: list[Observation] = field(default_factory=list)
    frames_in_bag: int = 0
    frames_before_state: int = 0      # no joint_states at or before them
    frames_undecodable: int = 0
    frames_usable: int = 0            # decoded and paired, before subsampling
    states_rejected: int = 0          # joint_states without the joints, or with NaN/inf
    default_instruction_frames: int = 0   # used frames with no instruction before them
    instructions: list[str] = field(default_factory=list)   # distinct, in order of use
    first_frame_error: str = ''
    first_state_error: str = ''

    @property
    def frames_used(self) -> int:
        return len(self.observations)

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != 'observations'}
        d['bag'] = str(self.bag)
        d['frames_used'] = self.frames_used
        d['frames_skipped'] = self.frames_before_state + self.frames_undecodable
        return d

    def describe(self) -> str:
        text = (f'{self.frames_used} of {self.frames_in_bag} frames of {self.bag} '
                f'({self.camera_topic}, state {self.state_topic}); skipped '
                f'{self.frames_before_state} before the first joint state, '
                f'{self.frames_undecodable} undecodable')
        if self.frames_undecodable:
            text += f' (first: {self.first_frame_error})'
        if self.states_rejected:
            text += f'; {self.states_rejected} joint states rejected ({self.first_state_error})'
        return text


def _replay_modules():
    """BagReader and decode_cdr, or a VlaEdgeError naming the extra to install."""
    try:
        from vla_edge.replay.bag_reader import BagReader
        from vla_edge.replay.msg_types import decode_cdr
    except ImportError as exc:
        raise VlaEdgeError(f'calibration from a rosbag2 needs rosbags: '
                           f"pip install 'vla_edge[replay]' ({exc})") from exc
    return BagReader, decode_cdr


def resolve_topics(bag: str | Path, topics: dict[str, str],
                   names: BagTopicNames | None = None) -> tuple[str, str, str | None]:
    """(camera, joint_states, instruction or None) topics of a bag whose topics are
    {name: msgtype}; a required one that is missing, ambiguous or of another type is an error
    that lists what the bag has."""
    names = names or BagTopicNames()

    def find(wanted: list[str], types: tuple[str, ...], role: str, required: bool = True):
        for name in wanted:                     # exact names first, in order of preference
            if name in topics:
                if topics[name] not in types:
                    raise VlaEdgeError(f'{role} topic {name} of bag {bag} has type '
                                       f'{topics[name]}, not {" or ".join(types)}')
                return name
        for name in wanted:                     # then the same names under a namespace
            found = sorted(t for t in topics if t.endswith(name) and topics[t] in types)
            if len(found) > 1:
                raise VlaEdgeError(f'bag {bag} has several {role} topics ({", ".join(found)}); '
                                   f'name the {role} topic to use')
            if found:
                return found[0]
        if not required:
            return None
        have = ', '.join(f'{t} [{m}]' for t, m in sorted(topics.items())) or 'no topics'
        raise VlaEdgeError(f'bag {bag} has no {role} topic {" or ".join(wanted)} (also looked '
                           f'under namespaces); name the {role} topic to use. The bag has: '
                           f'{have}')

    camera = _absolute(names.camera)
    return (find([camera, f'{camera}/compressed'], IMAGE_TYPES, 'camera'),
            find([_absolute(names.joint_states)], STATE_TYPES, 'joint_states'),
            find([_absolute(names.instruction)], INSTRUCTION_TYPES, 'instruction',
                 required=False))


def _absolute(topic: str) -> str:
    return topic if topic.startswith('/') else f'/{topic}'


class _EvenThinning:
    """Keeps every stride-th item of a stream, doubling the stride whenever more than
    2 * limit are held: an even spread over a stream of unknown length in bounded memory."""

    def __init__(self, limit: int):
        self.limit, self.stride, self.seen, self.items = limit, 1, 0, []

    def add(self, make):
        """`make()` builds the item, called only for items that are kept."""
        if self.seen % self.stride == 0:
            self.items.append(make())
            if len(self.items) > 2 * self.limit:
                self.items = self.items[::2]
                self.stride *= 2
        self.seen += 1

    def result(self) -> list:
        return evenly_spread(self.items, self.limit)


def bag_observations(bag: str | Path, max_frames: int = DEFAULT_MAX_FRAMES,
                     topics: BagTopicNames | None = None,
                     position_joints: tuple[str, ...] = DEFAULT_POSITION_JOINTS,
                     velocity_joints: tuple[str, ...] = DEFAULT_VELOCITY_JOINTS,
                     default_instruction: str = DEFAULT_INSTRUCTION,
                     progress: bool = True) -> BagObservations:
    """At most `max_frames` observations, evenly spread over the bag's usable frames.

    Raises VlaEdgeError: no bag (or not a rosbag2), a required topic missing, no camera
    messages, or no usable frame (the error names the counts and the first decoding error).
    """
    if max_frames < 1:
        raise ValueError(f'max_frames must be >= 1, got {max_frames}')
    bag_reader, decode_cdr = _replay_modules()
    bag = Path(bag)
    with bag_reader(bag, topics=[], require_importable=False) as reader:
        types = {t: info.msgtype for t, info in reader.topics.items()}
    camera, state_topic, instruction_topic = resolve_topics(bag, types, topics)
    selected = [t for t in (camera, state_topic, instruction_topic) if t is not None]
    out = BagObservations(bag, camera, state_topic, instruction_topic)
    converter = ImageConverter()
    thinning = _EvenThinning(max_frames)
    state: np.ndarray | None = None          # the newest accepted joint state
    instruction: str | None = None
    pending = []          # frames of the newest timestamp: a state of the same stamp may follow

    def error(exc: Exception) -> str:
        return f'{type(exc).__name__}: {exc}'

    def frame(msg, start_ns: int):
        try:
            rgb = converter.to_rgb(decode_cdr(msg.data, msg.msgtype)[0])
        except Exception as exc:   # corrupt CDR or pixels raise many types: count, go on
            out.frames_undecodable += 1
            out.first_frame_error = out.first_frame_error or error(exc)
            return
        out.frames_usable += 1
        text = instruction if instruction is not None else default_instruction
        thinning.add(lambda: (Observation(rgb, state, text,
                                          (msg.timestamp_ns - start_ns) / 1e9),
                              instruction is None))

    def flush(start_ns: int) -> None:
        for msg in pending:
            if state is None:
                out.frames_before_state += 1
            else:
                frame(msg, start_ns)
        pending.clear()

    with bag_reader(bag, topics=selected, require_importable=False) as reader:
        out.frames_in_bag = reader.topics[camera].message_count
        if out.frames_in_bag == 0:
            raise VlaEdgeError(f'bag {bag} has no messages on its camera topic {camera}')
        total = sum(reader.topics[t].message_count for t in selected)
        start_ns = reader.start_ns
        for msg in tqdm(reader.messages(), total=total, desc='read bag', unit='msg',
                        disable=not progress):
            if pending and msg.timestamp_ns > pending[0].timestamp_ns:
                flush(start_ns)
            if msg.topic == camera:
                pending.append(msg)
            elif msg.topic == state_topic:
                try:
                    js = decode_cdr(msg.data, msg.msgtype)[0]
                    state = state_vector(js.name, js.position, js.velocity, position_joints,
                                         velocity_joints)
                except Exception as exc:   # ValueError from state_vector, or corrupt CDR
                    out.states_rejected += 1
                    out.first_state_error = out.first_state_error or error(exc)
            else:
                try:
                    instruction = str(decode_cdr(msg.data, msg.msgtype)[0].data)
                except Exception:   # a corrupt instruction: the previous one stays in force
                    pass
        flush(start_ns)
    kept = thinning.result()
    out.observations = [obs for obs, _ in kept]
    out.default_instruction_frames = sum(default for _, default in kept)
    out.instructions = list(dict.fromkeys(obs.instruction for obs in out.observations))
    if not out.observations:
        why = []
        if out.frames_before_state:
            why.append(f'{out.frames_before_state} came before any usable joint state on '
                       f'{state_topic}' + (f' ({out.states_rejected} rejected, first: '
                                           f'{out.first_state_error})' if out.states_rejected
                                          else ''))
        if out.frames_undecodable:
            why.append(f'{out.frames_undecodable} could not be decoded (first: '
                       f'{out.first_frame_error})')
        raise VlaEdgeError(f'bag {bag}: none of the {out.frames_in_bag} frames on {camera} is '
                           f'usable for calibration: {"; ".join(why)}')
    return out
