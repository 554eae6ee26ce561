"""Renders the tabletop as a top-down RGB camera would see it, with OpenCV.

Per-episode appearance (brightness, table tint, light direction, noise level) comes from the
episode; per-frame sensor noise comes from the generator passed in, so a seeded episode renders the
same frames every time.
"""
from __future__ import annotations

import cv2
import numpy as np

from vla_edge.sim.scenario import Episode
from vla_edge.sim.world import APERTURE_HOLDING, APERTURE_OPEN, World

_SHIFT = 4                      # fixed-point bits: sub-pixel drawing positions
_ONE = 1 << _SHIFT
_TABLE_RGB = np.array([196.0, 176.0, 146.0])
_COLOURS = {
    'tea_bag': (214, 178, 122),
    'red_block': (205, 40, 40),
    'blue_block': (40, 75, 210),
    'green_block': (45, 160, 60),
    'purple_block': (140, 60, 170),
    'yellow_ball': (235, 205, 35),
}
_SIZES = {  # half-size in table units
    'tea_bag': 0.03, 'red_block': 0.035, 'blue_block': 0.035, 'green_block': 0.035,
    'purple_block': 0.035, 'yellow_ball': 0.032, 'mug': 0.075, 'bowl': 0.085,
}


def _px(v: float, size: int) -> int:
    return int(round(v * size * _ONE))


def _pt(p: np.ndarray, size: int) -> tuple[int, int]:
    return _px(float(p[0]), size), _px(float(p[1]), size)


def _background(episode: Episode, size: int) -> np.ndarray:
    """Table colour with a soft lighting gradient in the episode's light direction."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    d = np.array([np.cos(episode.light_dir_rad), np.sin(episode.light_dir_rad)], np.float32)
    gradient = 1.0 + 0.25 * (xs * d[0] + ys * d[1])
    base = (_TABLE_RGB + np.array(episode.table_tint)).astype(np.float32)
    return gradient[..., None] * base[None, None, :]


def _draw_container(img: np.ndarray, name: str, pos: np.ndarray, episode: Episode) -> None:
    s = img.shape[0]
    c = _pt(pos, s)
    r = _px(_SIZES[name], s)
    if name == 'mug':
        a = episode.handle_angle_rad
        h = pos + 0.085 * np.array([np.cos(a), np.sin(a)])
        cv2.line(img, c, _pt(h, s), (230, 230, 230), max(2, s // 40), cv2.LINE_AA, _SHIFT)
        cv2.circle(img, c, r, (238, 238, 238), -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(img, c, int(r * 0.75), (150, 140, 135), -1, cv2.LINE_AA, _SHIFT)
    else:
        cv2.circle(img, c, r, (50, 150, 160), -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(img, c, int(r * 0.8), (125, 200, 205), -1, cv2.LINE_AA, _SHIFT)


def _draw_object(img: np.ndarray, name: str, pos: np.ndarray, scale: float = 1.0) -> None:
    s = img.shape[0]
    colour = _COLOURS[name]
    h = _SIZES[name] * scale
    if name == 'yellow_ball':
        cv2.circle(img, _pt(pos, s), _px(h, s), colour, -1, cv2.LINE_AA, _SHIFT)
        return
    hx, hy = (h * 0.8, h) if name == 'tea_bag' else (h, h)
    p0 = _pt(pos - np.array([hx, hy]), s)
    p1 = _pt(pos + np.array([hx, hy]), s)
    cv2.rectangle(img, p0, p1, colour, -1, cv2.LINE_AA, _SHIFT)
    dark = tuple(int(c * 0.6) for c in colour)
    cv2.rectangle(img, p0, p1, dark, 1, cv2.LINE_AA, _SHIFT)
    if name == 'tea_bag':   # the string and its paper tag
        tag = pos + np.array([0.0, -h - 0.03])
        cv2.line(img, _pt(pos - np.array([0.0, h]), s), _pt(tag, s), (90, 80, 70), 1,
                 cv2.LINE_AA, _SHIFT)
        cv2.rectangle(img, _pt(tag - 0.012, s), _pt(tag + 0.012, s), (200, 40, 60), -1,
                      cv2.LINE_AA, _SHIFT)


def _draw_gripper(img: np.ndarray, world: World) -> None:
    s = img.shape[0]
    p = world.gripper_pos
    if world.aperture >= APERTURE_OPEN:
        half = 0.05
    elif world.aperture >= APERTURE_HOLDING:
        half = 0.032
    else:
        half = 0.012
    for side in (-1.0, 1.0):
        f = p + np.array([side * half, 0.0])
        cv2.rectangle(img, _pt(f - np.array([0.008, 0.03]), s), _pt(f + np.array([0.008, 0.03]), s),
                      (55, 55, 60), -1, cv2.LINE_AA, _SHIFT)
    cv2.line(img, _pt(p - np.array([half, 0.0]), s), _pt(p + np.array([half, 0.0]), s),
             (55, 55, 60), max(1, s // 64), cv2.LINE_AA, _SHIFT)
    cv2.circle(img, _pt(p, s), _px(0.01, s), (20, 20, 20), -1, cv2.LINE_AA, _SHIFT)


def render(world: World, episode: Episode, rng: np.random.Generator) -> np.ndarray:
    """One RGB uint8 frame (H, W, 3) of the world."""
    size = world.config.image_size
    canvas = np.zeros((size, size, 3), np.uint8)
    layers = _background(episode, size)
    canvas[:] = np.clip(layers, 0, 255).astype(np.uint8)
    items = world.items
    for name in ('mug', 'bowl'):
        _draw_container(canvas, name, items[name].pos, episode)
    loose = [n for n, it in items.items()
             if n not in ('mug', 'bowl') and it.inside is None and n != world.held]
    inside = [n for n, it in items.items() if it.inside is not None]
    for k, name in enumerate(inside):
        offset = 0.02 * np.array([np.cos(2.1 * k), np.sin(2.1 * k)]) if len(inside) > 1 else 0.0
        _draw_object(canvas, name, items[name].pos + offset, scale=0.8)
    for name in loose:
        _draw_object(canvas, name, items[name].pos)
    if world.held is not None:
        _draw_object(canvas, world.held, items[world.held].pos)
    _draw_gripper(canvas, world)
    frame = canvas.astype(np.float32) * episode.brightness
    frame += rng.normal(0.0, episode.noise_std, size=frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)
