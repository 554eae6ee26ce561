"""The package's Python log records (the runtime's notes: a resized frame, the model loaded, a
missing execution provider) through rclpy's logging, in a node executable.

Without this they went to Python's `logging`, which a node executable never configures: INFO
notes vanished and warnings printed without the ROS format. Forwarded, they show like the
node's own lines (`[INFO] [...] [vla_edge.runtime]: ...`), at ROS's INFO default.
"""
from __future__ import annotations

import logging

import rclpy.logging

PACKAGE_LOGGER = 'vla_edge'


class RclpyForwarder(logging.Handler):
    """Writes each record with the rcutils logger of the same name."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logger = rclpy.logging.get_logger(record.name)
            text = self.format(record)
            if record.levelno >= logging.CRITICAL:
                logger.fatal(text)
            elif record.levelno >= logging.ERROR:
                logger.error(text)
            elif record.levelno >= logging.WARNING:
                logger.warning(text)
            elif record.levelno >= logging.INFO:
                logger.info(text)
            else:
                logger.debug(text)
        except Exception:  # a log line must never take a node down
            self.handleError(record)


def forward_python_logging(level: int = logging.INFO) -> None:
    """Send `vla_edge.*` records at `level` and above to rclpy's logging (idempotent). Meant for
    a node executable's process: it stops them propagating to Python's root logger."""
    package = logging.getLogger(PACKAGE_LOGGER)
    if not any(isinstance(h, RclpyForwarder) for h in package.handlers):
        package.addHandler(RclpyForwarder())
    package.setLevel(level)
    package.propagate = False
