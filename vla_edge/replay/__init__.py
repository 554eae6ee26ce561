"""Record, replay and compare rosbag2 bags without the rosbag2 C++ stack (issue #5).

One concept per module:

- `msg_types`: message classes (rosidl, importable here?) and definitions (for bag schemas).
- `qos`: QoS profiles between rclpy and the bag's `offered_qos_profiles`.
- `bag_writer`: a rosbag2 writer that never leaves a half-written bag under the final name.
- `bag_reader`: (topic, msgtype, timestamp_ns, raw bytes) from an mcap or sqlite3 bag.
- `recorder`: rclpy node that records topics as serialized bytes (`record_main(argv)`).
- `schedule`: which message when (rate, offset, loop, pause/step), on a virtual clock.
- `message_source`: the player's validated, preloaded or prefetched supply of messages.
- `precise_timing`: GIL switch interval, timer slack, SCHED_FIFO for the publishing thread.
- `player`: rclpy node that republishes a bag with its original timing (`replay_main(argv)`).
- `lockstep`: rclpy node that plays a bag one message at a time on its own /clock, each camera
  frame gated on the system's answer: reproducible replays (`vla-edge replay-test`).
- `stop_signals`: Ctrl-C/SIGTERM as a stop request for the record/replay verbs.
- `errors`: BagError, BagReadError, BagWriteError (VlaEdgeError subclasses).
- `compare`: action outputs of a new run vs a golden bag (`compare_main(argv)`).
- `overlay_plot`: PNG of golden vs new trajectories (matplotlib, optional).
- `pytest_helper`: write a bag, replay it into a system under test, compare, in a few lines.

rclpy is imported only by `recorder`, `player`, `lockstep`, `qos` and `pytest_helper`.
"""
