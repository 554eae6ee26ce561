"""Logic with no rclpy: model runtime, scheduling, latency, checks."""
