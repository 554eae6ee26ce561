"""A small real rosbag2 of a sim episode, as a robot (or `replay-test --record-sim-run`) records
it: rendered camera frames, joint_states as the sim robot publishes them, an instruction."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000


@dataclass
class SimBag:
    """What was written, to check against: frames (stamp, rgb), states (stamp, vector or None
    for a rejected one), the instruction and its stamp."""

    path: Path
    frames: list[tuple[int, np.ndarray]]
    states: list[tuple[int, np.ndarray | None]]
    instruction: str
    instruction_ns: int

    t0_ns: int = T0

    @staticmethod
    def stamp_of(obs) -> int:
        """Receive stamp of the frame an observation came from (time_s counts from T0)."""
        return T0 + int(round(obs.time_s * 1e9))

    def ms_of(self, obs) -> int:
        return (self.stamp_of(obs) - T0) // MS

    def expected_state(self, stamp_ns: int) -> np.ndarray | None:
        good = [s for t, s in self.states if t <= stamp_ns and s is not None]
        return good[-1] if good else None


def _stamped(msg, stamp_ns: int):
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return msg


def _camera_message(rgb: np.ndarray, encoding: str, stamp_ns: int, corrupt: bool):
    from sensor_msgs.msg import CompressedImage, Image

    from vla_edge.core.ros_image import rgb_to_image_msg_fields

    if encoding == 'jpeg':
        data = cv2.imencode('.jpg', np.ascontiguousarray(rgb[..., ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        return _stamped(CompressedImage(format='jpeg', data=b'not a jpeg' if corrupt else data),
                        stamp_ns)
    fields = rgb_to_image_msg_fields(rgb, encoding)
    if corrupt:
        fields['data'] = fields['data'][:100]      # fewer bytes than height * step
    return _stamped(Image(**fields), stamp_ns)


def write_sim_bag(path: Path, frames: int = 12, encoding: str = 'rgb8', storage: str = 'mcap',
                  namespace: str = '', seed: int = 2_000_001, nan_state: int | None = 5,
                  instruction_ms: int = 100, corrupt_frames: tuple[int, ...] = (),
                  with_camera: bool = True) -> SimBag:
    """The expert drives a sim episode at 50 Hz: a state every 20 ms from 20 ms on (joint order
    gripper, y, x; state `nan_state` NaN), a frame at 0 ms (before any state) and every 40 ms
    from 40 ms on (the same stamp as a state, written *before* it), the instruction at
    `instruction_ms`."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from vla_edge.replay.bag_writer import write_bag
    from vla_edge.sim.env import TeaTableEnv

    env = TeaTableEnv()
    env.reset(seed)     # 2_000_001: 'put the red block in the mug', not vla_node's default
    camera = f'{namespace}/camera/image_raw' + ('/compressed' if encoding == 'jpeg' else '')
    shot, states, msgs = [], [], []   # msgs: (stamp, order at equal stamps, topic, message)

    def frame(stamp_ns: int) -> None:
        rgb = env.observe().image
        shot.append((stamp_ns, rgb))
        msgs.append((stamp_ns, 0, camera, _camera_message(
            rgb, encoding, stamp_ns, len(shot) - 1 in corrupt_frames)))

    frame(T0)
    for j in range(2 * (frames - 1)):
        env.step(env.expert_action())
        x, y, aperture, vx, vy = (float(v) for v in env.world.state())
        stamp = T0 + (j + 1) * 20 * MS
        if j == nan_state:
            x = float('nan')
        msgs.append((stamp, 1, f'{namespace}/joint_states', _stamped(JointState(
            name=['gripper', 'y', 'x'], position=[aperture, y, x], velocity=[0.0, vy, vx]),
            stamp)))
        states.append((stamp, None if j == nan_state else
                       np.array([x, y, aperture, vx, vy], np.float32)))
        if (j + 1) % 2 == 0:
            frame(stamp)
    msgs.append((T0 + instruction_ms * MS, 2, f'{namespace}/instruction',
                 String(data=env.instruction)))
    if not with_camera:
        msgs = [m for m in msgs if m[2] != camera]
    msgs.sort(key=lambda m: m[:2])
    write_bag(path, [(topic, msg, stamp) for stamp, _, topic, msg in msgs], storage=storage)
    return SimBag(path, shot, states, env.instruction, T0 + instruction_ms * MS)


@pytest.fixture(scope='session')
def sim_bag_writer():
    """`write_sim_bag` for test modules (a conftest is not imported directly)."""
    return write_sim_bag


@pytest.fixture(scope='session')
def sim_bag(tmp_path_factory) -> SimBag:
    """The default bag: rgb8 frames, mcap."""
    return write_sim_bag(tmp_path_factory.mktemp('bags') / 'sim_run')
