"""Message types: which ones this Python can (de)serialize, and their definitions for bag schemas.

Two questions, two sources:

- *Can we publish/deserialize it here?* Only if its rosidl Python package imports
  (`import_message_class`). A bag may hold types from packages this machine lacks; the reader
  skips those with a warning instead of failing.
- *What is its definition?* A bag stores the full text definition (`ros2msg`, dependencies
  appended) and the RIHS01 type hash so `ros2 bag info/play` and Foxglove can decode it without
  the package. They come from rosbags' Kilted typestore; a type it lacks (a custom package) is
  parsed from its `.msg` file in a `share/<pkg>/msg/` folder on AMENT_PREFIX_PATH (or this
  Python's prefix, where the PyPI ROS wheels put them).

No rclpy import here.
"""
from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from vla_edge.replay.errors import BagWriteError

_store_lock = threading.Lock()


def normalize_msgtype(name: str) -> str:
    """'pkg/Name' or 'pkg/msg/Name' -> 'pkg/msg/Name' (the form rosbag2 metadata uses)."""
    parts = name.strip().split('/')
    if len(parts) == 2 and all(parts):
        return f'{parts[0]}/msg/{parts[1]}'
    if len(parts) == 3 and all(parts):
        return name.strip()
    raise ValueError(f'message type {name!r} is not of the form pkg/msg/Name')


@functools.cache
def import_message_class(msgtype: str) -> type | None:
    """The rosidl Python class for 'pkg/msg/Name', or None when it does not import here."""
    try:
        pkg, kind, name = normalize_msgtype(msgtype).split('/')
        module = importlib.import_module(f'{pkg}.{kind}')
        cls = getattr(module, name)
    except (ImportError, AttributeError, ValueError):
        return None
    # A rosidl message class carries its metaclass-generated type support hooks.
    return cls if hasattr(cls, '_TYPE_SUPPORT') or hasattr(type(cls), '_TYPE_SUPPORT') else None


@functools.lru_cache(maxsize=1)
def typestore():
    """rosbags' Kilted typestore, extended on demand with types found in share/ folders."""
    return get_typestore(Stores.ROS2_KILTED)


def share_dirs() -> list[Path]:
    """Where `.msg` files may live: every AMENT_PREFIX_PATH entry, then this Python's prefix."""
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    prefixes.append(sys.prefix)
    return [Path(p) / 'share' for p in dict.fromkeys(prefixes)]


def _find_msg_file(msgtype: str) -> Path | None:
    pkg, kind, name = msgtype.split('/')
    for share in share_dirs():
        candidate = share / pkg / kind / f'{name}.msg'
        if candidate.is_file():
            return candidate
    return None


def _referenced_types(fielddefs) -> set[str]:
    """Every 'pkg/msg/Name' a parsed definition refers to (walks rosbags' nested field tuples)."""
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, tuple):
            if len(node) == 2 and getattr(node[0], 'name', None) == 'NAME' \
                    and isinstance(node[1], str):
                found.add(node[1])
                return
            for item in node:
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(fielddefs)
    return found


def _register_from_share(msgtype: str) -> None:
    store = typestore()
    pending, parsed = [msgtype], {}
    while pending:
        name = pending.pop()
        if name in parsed or name in store.fielddefs:
            continue
        path = _find_msg_file(name)
        if path is None:
            raise BagWriteError(
                f'no message definition for {name}: it is not in the rosbags Kilted typestore '
                f'and no {name.split("/")[-1]}.msg was found under '
                f'{", ".join(str(s) for s in share_dirs())}; source the workspace that builds it '
                f'(AMENT_PREFIX_PATH) or pass the definition explicitly')
        types = get_types_from_msg(path.read_text(), name)
        parsed.update(types)
        pending.extend(_referenced_types(types[name]))
    store.register(parsed)


def message_definition(msgtype: str) -> tuple[str, str]:
    """(ros2msg definition text with dependencies, RIHS01 hash) for a bag connection.

    Raises BagWriteError when no definition can be found: a bag without one plays back only
    where the package is installed, and `ros2 bag info` cannot describe it.
    """
    msgtype = normalize_msgtype(msgtype)
    with _store_lock:
        store = typestore()
        if msgtype not in store.fielddefs:
            _register_from_share(msgtype)
        try:
            msgdef, _ = store.generate_msgdef(msgtype, ros_version=2)
            return msgdef, store.hash_rihs01(msgtype)
        except Exception as exc:   # rosbags raises several types for broken definitions
            raise BagWriteError(f'cannot build the definition of {msgtype}: {exc}') from exc


def decode_cdr(data: bytes | memoryview, msgtype: str) -> tuple[object, int]:
    """(rosbags message object, bytes the message really uses) for a CDR payload.

    Unlike `Typestore.deserialize_cdr`, trailing bytes are tolerated: rclpy's
    `serialize_message` returns the rmw's size *estimate*, not the size used (a JointTrajectory
    of 3 points: 180 bytes, of which 136 are the message and the rest uninitialized memory).
    DDS sends only the used bytes, so recorded traffic is exact; hand-made bags are not.
    """
    msgtype = normalize_msgtype(msgtype)
    raw = memoryview(data)
    if len(raw) < 4 or raw[0] != 0 or raw[1] not in (0, 1):
        raise ValueError(f'{msgtype}: not a CDR payload (bad encapsulation header)')
    with _store_lock:
        store = typestore()
        if msgtype not in store.fielddefs:
            _register_from_share(msgtype)
        msgdef = store.get_msgdef(msgtype)
    decode = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    message, pos = decode(raw[4:], 0, msgdef.cls, store)
    return message, 4 + pos
