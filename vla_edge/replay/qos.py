"""QoS between the ROS graph and a bag, as rosbag2 does it.

Recording: the bag keeps the QoS the publishers *offered* (`offered_qos_profiles`), and the
recorder subscribes with a profile compatible with all of them (best effort if any publisher is
best effort, transient local only if all are). Playback: a topic is republished with the recorded
reliability and durability (a latched /tf_static stays latched), history keep-last.
"""
from __future__ import annotations

from collections.abc import Sequence

from rclpy.duration import Duration
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

RECORD_DEPTH = 100
PLAY_DEPTH = 100


def _time(duration: Duration) -> QosTime:
    sec, nsec = divmod(int(duration.nanoseconds), 1_000_000_000)
    return QosTime(sec, nsec)


def _enum(target, value: int, unknown):
    try:
        return target(int(value))
    except ValueError:
        return unknown


def to_bag_qos(profile: QoSProfile) -> Qos:
    """rclpy profile (e.g. from get_publishers_info_by_topic) -> rosbags Qos for the metadata."""
    return Qos(
        history=_enum(QosHistory, profile.history, QosHistory.UNKNOWN),
        depth=int(profile.depth),
        reliability=_enum(QosReliability, profile.reliability, QosReliability.UNKNOWN),
        durability=_enum(QosDurability, profile.durability, QosDurability.UNKNOWN),
        deadline=_time(profile.deadline),
        lifespan=_time(profile.lifespan),
        liveliness=_enum(QosLiveliness, profile.liveliness, QosLiveliness.UNKNOWN),
        liveliness_lease_duration=_time(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def subscription_qos(offered: Sequence[QoSProfile]) -> QoSProfile:
    """A profile that matches every offering publisher without losing what they guarantee."""
    reliable = all(p.reliability == ReliabilityPolicy.RELIABLE for p in offered)
    latched = bool(offered) and all(
        p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=RECORD_DEPTH,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def publisher_qos(recorded: Sequence[Qos]) -> QoSProfile:
    """Playback profile from a topic's recorded offers; reliable + volatile when none were kept."""
    best_effort = any(q.reliability == QosReliability.BEST_EFFORT for q in recorded)
    latched = bool(recorded) and all(
        q.durability == QosDurability.TRANSIENT_LOCAL for q in recorded)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=PLAY_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
        liveliness=LivelinessPolicy.AUTOMATIC)
