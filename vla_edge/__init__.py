"""vla_edge: onboard Vision-Language-Action policies for ROS 2."""
