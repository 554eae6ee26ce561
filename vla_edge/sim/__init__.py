"""The simulated tea-table task: world, rendering, expert, closed-loop evaluation (no rclpy)."""
