"""Tiny numpy rasteriser for SynthFoley scenes: filled shapes on an (H, W, 3) uint8 image, in place.

Coordinates are floats in pixels (x right, y down, pixel centres at integer coordinates). Every primitive
touches only the shape's bounding box, so a frame costs a few hundred microseconds. No anti-aliasing:
hard edges keep the detected colours of the actors pure (the tests find actors by colour).
"""

from __future__ import annotations

import numpy as np

Color = tuple[int, int, int]


def _box(
    img: np.ndarray, x0: float, y0: float, x1: float, y1: float
) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
    h, w = img.shape[:2]
    xa, xb = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)) + 1, w)
    ya, yb = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)) + 1, h)
    if xa >= xb or ya >= yb:
        return None
    yy, xx = np.mgrid[ya:yb, xa:xb].astype(np.float32)
    return slice(ya, yb), slice(xa, xb), yy, xx


def _paint(img: np.ndarray, rows: slice, cols: slice, mask: np.ndarray, color: Color, alpha: float) -> None:
    region = img[rows, cols]
    if alpha >= 1.0:
        region[mask] = color
    elif alpha > 0.0:
        old = region[mask].astype(np.float32)
        region[mask] = (old + (np.asarray(color, np.float32) - old) * alpha + 0.5).astype(np.uint8)


def vertical_gradient(height: int, width: int, top: Color, bottom: Color) -> np.ndarray:
    """An (H, W, 3) uint8 image blending `top` into `bottom`."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    col = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t  # (H, 3)
    return np.broadcast_to((col + 0.5).astype(np.uint8)[:, None, :], (height, width, 3)).copy()


def rect(
    img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color: Color, alpha: float = 1.0
) -> None:
    h, w = img.shape[:2]
    xa, xb = max(int(round(x0)), 0), min(int(round(x1)), w)
    ya, yb = max(int(round(y0)), 0), min(int(round(y1)), h)
    if xa >= xb or ya >= yb:
        return
    mask = np.ones((yb - ya, xb - xa), dtype=bool)
    _paint(img, slice(ya, yb), slice(xa, xb), mask, color, alpha)


def ellipse(
    img: np.ndarray,
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    color: Color,
    *,
    angle: float = 0.0,
    alpha: float = 1.0,
) -> None:
    """Filled ellipse with semi-axes (rx, ry), rotated by `angle` radians (clockwise on screen)."""
    rx, ry = max(rx, 0.5), max(ry, 0.5)
    reach = max(rx, ry)
    box = _box(img, cx - reach, cy - reach, cx + reach, cy + reach)
    if box is None:
        return
    rows, cols, yy, xx = box
    dx, dy = xx - cx, yy - cy
    if angle:
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = c * dx + s * dy, -s * dx + c * dy
    mask = (dx / rx) ** 2 + (dy / ry) ** 2 <= 1.0
    _paint(img, rows, cols, mask, color, alpha)


def circle(img: np.ndarray, cx: float, cy: float, r: float, color: Color, *, alpha: float = 1.0) -> None:
    ellipse(img, cx, cy, r, r, color, alpha=alpha)


def polygon(img: np.ndarray, points: np.ndarray, color: Color, *, alpha: float = 1.0) -> None:
    """Filled convex polygon; `points` is (N, 2) of (x, y) in either winding order."""
    pts = np.asarray(points, dtype=np.float32)
    assert pts.ndim == 2 and pts.shape[1] == 2, f"{pts.shape=}"
    box = _box(img, pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
    if box is None:
        return
    rows, cols, yy, xx = box
    nxt = np.roll(pts, -1, axis=0)
    pos = np.ones(yy.shape, dtype=bool)
    neg = np.ones(yy.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(pts, nxt, strict=True):
        cross = (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0)
        pos &= cross >= 0
        neg &= cross <= 0
    _paint(img, rows, cols, pos | neg, color, alpha)


def segment(
    img: np.ndarray,
    p0: tuple[float, float],
    p1: tuple[float, float],
    width: float,
    color: Color,
    *,
    alpha: float = 1.0,
) -> None:
    """A thick line with round caps (all points within width / 2 of the segment p0-p1)."""
    (x0, y0), (x1, y1) = p0, p1
    r = max(width / 2.0, 0.5)
    box = _box(img, min(x0, x1) - r, min(y0, y1) - r, max(x0, x1) + r, max(y0, y1) + r)
    if box is None:
        return
    rows, cols, yy, xx = box
    vx, vy = x1 - x0, y1 - y0
    denom = vx * vx + vy * vy
    t = np.clip(((xx - x0) * vx + (yy - y0) * vy) / denom, 0.0, 1.0) if denom > 0 else np.zeros_like(xx)
    mask = (xx - (x0 + t * vx)) ** 2 + (yy - (y0 + t * vy)) ** 2 <= r * r
    _paint(img, rows, cols, mask, color, alpha)


def rotated_rect(
    img: np.ndarray,
    center: tuple[float, float],
    along: tuple[float, float],
    half_along: float,
    half_across: float,
    color: Color,
    *,
    alpha: float = 1.0,
) -> None:
    """A rectangle centred at `center` with its long side along the unit vector `along`."""
    cx, cy = center
    ax, ay = along
    nx, ny = -ay, ax
    pts = np.array(
        [
            (
                cx + sa * half_along * ax + sc * half_across * nx,
                cy + sa * half_along * ay + sc * half_across * ny,
            )
            for sa, sc in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
    )
    polygon(img, pts, color, alpha=alpha)


def dots(
    img: np.ndarray, xs: np.ndarray, ys: np.ndarray, size: int, colors: np.ndarray, alphas: np.ndarray
) -> None:
    """Square dots of `size` pixels at (xs, ys), each with its colour (N, 3) and opacity (N,), blended."""
    h, w = img.shape[:2]
    xi = np.round(xs).astype(np.int64)
    yi = np.round(ys).astype(np.int64)
    for oy in range(size):
        for ox in range(size):
            x, y = xi + ox, yi + oy
            ok = (x >= 0) & (x < w) & (y >= 0) & (y < h) & (alphas > 0)
            if not ok.any():
                continue
            a = alphas[ok, None].astype(np.float32)
            old = img[y[ok], x[ok]].astype(np.float32)
            img[y[ok], x[ok]] = (old + (colors[ok].astype(np.float32) - old) * a + 0.5).astype(np.uint8)
