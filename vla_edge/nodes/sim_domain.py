"""A DDS domain to itself for a simulated pipeline: the demo and the fault drills.

Their nodes publish `command`, `joint_states` and camera frames under the names a robot's stack
uses, and a fault drill injects jumps into the commands. On a domain shared with a real stack they
would talk to it. So they use localhost-only discovery whatever the environment says (ROS 2's
default range is the whole subnet), and skip any domain where another ROS 2 node is already
running on this machine.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

import rclpy
from rclpy.context import Context
from rclpy.node import Node

log = logging.getLogger(__name__)
SETTLE_S = 0.5   # long enough for localhost discovery to list the nodes already there


def foreign_nodes(context: Context, settle_s: float = SETTLE_S) -> list[str]:
    """The nodes other than a probe of ours seen on the context's domain within `settle_s`."""
    probe = Node('vla_edge_domain_probe', context=context, start_parameter_services=False)
    try:
        deadline = time.monotonic() + settle_s
        while True:
            others = [f'{ns.rstrip("/")}/{name}'
                      for name, ns in probe.get_node_names_and_namespaces()
                      if name != probe.get_name()]
            if others or time.monotonic() >= deadline:
                return others
            time.sleep(0.02)
    finally:
        probe.destroy_node()


def sim_context(domains: Iterable[int], settle_s: float = SETTLE_S) -> Context:
    """An initialised rclpy Context on the first of `domains` with no other node on it
    (localhost-only discovery, set for this process). RuntimeError if every one is in use."""
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    busy: list[str] = []
    for domain in domains:
        context = Context()
        rclpy.init(context=context, args=[], domain_id=domain)
        others = foreign_nodes(context, settle_s)
        if not others:
            return context
        rclpy.try_shutdown(context=context)
        busy.append(f'{domain} ({", ".join(sorted(others)[:3])})')
        log.warning('ROS domain %d has other nodes on this machine (%s): the simulated '
                    'pipeline takes another', domain, ', '.join(sorted(others)[:3]))
    raise RuntimeError('no free ROS domain for the simulated pipeline; in use: '
                       + '; '.join(busy))
