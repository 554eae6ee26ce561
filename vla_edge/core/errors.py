"""Errors the runtime raises on purpose, each with a message a robot operator can act on."""


class VlaEdgeError(Exception):
    """Base class: anything vla_edge rejects deliberately."""


class ModelLoadError(VlaEdgeError):
    """The model folder is missing, incomplete, tampered with, or disagrees with its manifest."""


class InputError(VlaEdgeError):
    """An input at run time (image, state, instruction, prefix) cannot be used."""
