"""Errors of the bag layer, each naming the bag and what to do about it."""
from vla_edge.core.errors import VlaEdgeError


class BagError(VlaEdgeError):
    """Base class: a bag that cannot be read, written or replayed as asked."""


class BagReadError(BagError):
    """The bag is missing, truncated, corrupt, or not a rosbag2 at all."""


class BagWriteError(BagError):
    """Recording could not create, fill or finalize the bag."""
