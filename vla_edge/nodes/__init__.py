"""Thin rclpy shells over `core`: parameters, topics, QoS, threads, diagnostics."""
