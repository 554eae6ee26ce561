"""The watchdog's logic, without ROS: frame health, motion consistency, command gate, heartbeats
and the veto latch. `Watchdog` (supervisor.py) wires them together; the node only adds topics,
parameters (from `parameter_table`) and /diagnostics (from `CheckResult`s)."""
from vla_edge.core.watchdog.command_checks import CommandGate, GateDecision
from vla_edge.core.watchdog.config import (
    CommandGateConfig,
    FrameCheckConfig,
    LatchConfig,
    LivenessConfig,
    MotionCheckConfig,
    ParamInfo,
    WatchdogConfig,
    parameter_table,
)
from vla_edge.core.watchdog.frame_checker import FrameChecker, FrameReport
from vla_edge.core.watchdog.frame_checks import FrozenDetector, PreparedFrame, prepare_frame
from vla_edge.core.watchdog.latch import ResetResult, VetoLatch, safe_command
from vla_edge.core.watchdog.liveness import Heartbeat
from vla_edge.core.watchdog.motion_check import MotionCheck
from vla_edge.core.watchdog.overlay import draw_overlay
from vla_edge.core.watchdog.results import CheckResult, Level, Region
from vla_edge.core.watchdog.supervisor import Watchdog, WatchdogDecision

__all__ = [
    'CheckResult', 'CommandGate', 'CommandGateConfig', 'FrameCheckConfig', 'FrameChecker',
    'FrameReport', 'FrozenDetector', 'GateDecision', 'Heartbeat', 'LatchConfig', 'Level',
    'LivenessConfig', 'MotionCheck', 'MotionCheckConfig', 'ParamInfo', 'PreparedFrame', 'Region',
    'ResetResult', 'VetoLatch', 'Watchdog', 'WatchdogConfig', 'WatchdogDecision',
    'draw_overlay', 'parameter_table', 'prepare_frame', 'safe_command',
]
