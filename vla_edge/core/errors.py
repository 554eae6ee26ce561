"""Errors the runtime raises on purpose, each with a message a robot operator can act on."""


def one_line(exc: BaseException) -> str:
    """The message on one line: rclpy's name errors add a line with the name and one with a
    caret under the bad character; the caret line says nothing without its layout."""
    lines = [line.strip() for line in str(exc).splitlines()]
    return ' '.join(line for line in lines if line.strip('^ ')) or type(exc).__name__


def shown(value: object, limit: int = 80) -> str:
    """repr(value), cut to about `limit` characters with the full length said: an input quoted in
    a log line (an instruction, a list of joint names) can be megabytes long."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f'{text[:limit]}... ({len(text)} characters)'


class VlaEdgeError(Exception):
    """Base class: anything vla_edge rejects deliberately."""


class ModelLoadError(VlaEdgeError):
    """The model folder is missing, incomplete, tampered with, or disagrees with its manifest."""


class InputError(VlaEdgeError):
    """An input at run time (image, state, instruction, prefix) cannot be used."""


class ModelOutputError(VlaEdgeError):
    """The model's output cannot be used (NaN, values no action of it can have): a broken or
    mismatched model, so nothing from this call is published."""
