"""The control rate a node runs at when its parameter says 0: the model manifest's, the rate the
policy was trained for. The executor and the watchdog both follow it by default, so a model planned
at another rate moves the whole command chain with it and nobody copies a number into two files.
"""
from __future__ import annotations

from vla_edge.core.errors import VlaEdgeError
from vla_edge.core.manifest import Manifest, load_manifest
from vla_edge.core.model_dir import default_model_dir
from vla_edge.nodes.params import ParameterError


def resolve_control_rate(rate_hz: float, model_dir: str, manifest: Manifest | None = None,
                         name: str = 'control_rate_hz') -> float:
    """The rate: as given, or (0) the model manifest's, so the executor plays chunks at the rate
    they were planned for and the watchdog differentiates commands at that rate. `manifest`, if
    already read from that folder, is used instead of reading it again; `name` is the parameter
    the messages name."""
    if rate_hz > 0.0:
        if rate_hz < 1.0:
            raise ParameterError(f"parameter {name!r} = {rate_hz!r} must be 0 (from the "
                                 'model manifest) or in [1, 1000] Hz')
        return float(rate_hz)
    if manifest is not None:
        return float(manifest.control_rate_hz)
    folder = model_dir or default_model_dir()
    try:
        return float(load_manifest(folder, verify_hashes=False).control_rate_hz)
    except VlaEdgeError as exc:
        raise ParameterError(f'{name} is 0 (from the model manifest), but the manifest '
                             f'in {folder} cannot be read: {exc}') from exc


def tied_manifest(rate_hz: float, model_dir: str) -> Manifest | None:
    """The manifest of the model folder the executor is tied to (model_dir set, or control_rate_hz
    0 taking the rate from it), read once for both the rate and the joint names; None when not
    tied (an executor with its own rate and no model_dir may be fed by another policy) or not
    readable (resolve_control_rate then says why, where the rate needs it)."""
    if not model_dir and rate_hz > 0.0:
        return None
    try:
        return load_manifest(model_dir or default_model_dir(), verify_hashes=False)
    except VlaEdgeError:
        return None
