"""Dense optical flow between video frames, and its rendering as an image an image network can read.

Conventions (RegNet / VarietySound, ../shared/PAPERS.md section 1, and the two-stream / TSN `dense_flow` tool
their features come from):
    - flow for frame t is the displacement from frame t to frame t+1, in pixels, channels (dx, dy),
      computed on grayscale frames; the last frame has no successor, so it repeats the previous frame's flow;
    - values are clipped to [-bound, bound] with bound = 20 px and, for an image network, mapped linearly to
      [0, 255] as 128 + 255 / (2 * bound) * v (the `dense_flow` quantisation).

Methods:
    - "tvl1": `cv2.optflow.DualTVL1OpticalFlow_create()` with OpenCV's default parameters (5 scales, 5 warps,
      lambda 0.15, tau 0.25, theta 0.3), the TV-L1 flow the papers used. Slow: 0.2-2 s a 224 x 224 pair on one
      core of the project machine (it varies with content and load).
    - "dis": `cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)`. MEDIUM rather than FAST: FAST is
      about 3x cheaper again (2 vs 6 ms a 224 x 224 pair here) but coarser, and MEDIUM is already ~100-300x
      cheaper than TV-L1, so accuracy wins.

Flow is computed at the resolution of the frames given; `bound` is in those pixels (the papers computed it at
340 x 256).

Parallelism: frame pairs run in a pool of `workers` threads, each with its own OpenCV flow object (OpenCV
releases the GIL inside `calc`). OpenCV's own thread count is set to 1 for the duration of the call, so that
`workers` is the only knob and one worker really is one core; it is restored afterwards (a process-wide
setting: do not run two calls with different `workers` concurrently from separate threads).
"""

from __future__ import annotations

import math
import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

FlowMethod = Literal["tvl1", "dis"]
FLOW_METHODS: tuple[str, ...] = ("tvl1", "dis")


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", None)
        raise ValueError(f"frames must be a (T, H, W, 3) RGB array, got shape {shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    if frames.shape[0] == 0:
        raise ValueError("frames is empty (T = 0); need at least one frame")


def _make_flow_object(method: str) -> Any:
    import cv2

    if method == "tvl1":
        return cv2.optflow.DualTVL1OpticalFlow_create()
    if method == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    raise ValueError(f"unknown flow method {method!r}; known: {list(FLOW_METHODS)}")


def consecutive_pairs(num_frames: int) -> np.ndarray:
    """Default (from, to) index pairs, (T, 2) int64: (t, t+1), the last row repeating (T-2, T-1).

    A single frame gives the pair (0, 0), i.e. zero flow.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if num_frames == 1:
        return np.zeros((1, 2), dtype=np.int64)
    src = np.arange(num_frames - 1)
    pairs = np.stack([src, src + 1], axis=1)
    return np.concatenate([pairs, pairs[-1:]], axis=0).astype(np.int64)


def optical_flow(
    frames: np.ndarray,
    *,
    method: FlowMethod = "tvl1",
    bound: float = 20.0,
    pairs: np.ndarray | None = None,
    workers: int = 1,
) -> np.ndarray:
    """Dense optical flow of RGB frames.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        method: "tvl1" (the papers') or "dis" (DIS, preset MEDIUM; ~100x cheaper).
        bound: flow is clipped to [-bound, bound] pixels (math.inf to keep it unclipped).
        pairs: optional (P, 2) integer (from, to) frame indices; output row p is the flow from
            frames[pairs[p, 0]] to frames[pairs[p, 1]]. Lets a looped clip ask for its wrap-around pair
            (last decoded frame -> first). Repeated pairs are computed once; (i, i) is zero without computing.
            Default: `consecutive_pairs(T)` (t -> t+1, the last frame repeating the previous flow).
        workers: threads computing pairs in parallel (one OpenCV flow object each).

    Returns:
        (T, H, W, 2) float16 flow (dx, dy) in pixels, or (P, H, W, 2) with `pairs`.
    """
    _check_frames(frames)
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; known: {list(FLOW_METHODS)}")
    if not bound > 0:
        raise ValueError(f"bound must be positive, got {bound!r}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    num_frames = frames.shape[0]
    if pairs is None:
        pairs = consecutive_pairs(num_frames)
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
        raise ValueError(f"pairs must be a (P, 2) integer array of (from, to) indices, got {pairs.shape=}")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= num_frames):
        raise ValueError(
            f"pairs index frames outside [0, {num_frames}): min {pairs.min()}, max {pairs.max()}"
        )

    import cv2

    unique_pairs, inverse = np.unique(pairs, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    used = np.unique(unique_pairs)
    # Grayscale once per frame that takes part, not once per pair.
    gray = {int(i): cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY) for i in used}
    height, width = frames.shape[1:3]
    flows = np.zeros((len(unique_pairs), height, width, 2), dtype=np.float16)

    # One OpenCV object per worker: they keep internal buffers and are not safe to share across threads.
    pool_objects: queue.Queue[Any] = queue.Queue()
    for _ in range(workers):
        pool_objects.put(_make_flow_object(method))

    def compute(k: int) -> None:
        src, dst = (int(v) for v in unique_pairs[k])
        if src == dst:
            return  # identical frames: zero flow, already in `flows`
        flow_object = pool_objects.get()
        try:
            flow = flow_object.calc(gray[src], gray[dst], None)  # (H, W, 2) float32
        finally:
            pool_objects.put(flow_object)
        if math.isfinite(bound):
            np.clip(flow, -bound, bound, out=flow)
        flows[k] = flow

    previous_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        if workers == 1:
            for k in range(len(unique_pairs)):
                compute(k)
        else:
            with ThreadPoolExecutor(max_workers=workers) as executor:
                list(executor.map(compute, range(len(unique_pairs))))
    finally:
        cv2.setNumThreads(previous_threads)
    out = flows[inverse]
    assert out.shape == (len(pairs), height, width, 2), f"{out.shape=}"
    return out


def flow_to_image(flow: np.ndarray, *, bound: float = 20.0) -> np.ndarray:
    """Renders flow as an 8-bit image: (T, H, W, 2) float -> (T, H, W, 3) uint8.

    Channels: dx and dy clipped to [-bound, bound] and mapped to round(128 + 255 / (2 * bound) * v)
    (zero motion is 128, the two-stream / RegNet quantisation), and the magnitude sqrt(dx^2 + dy^2)
    clipped to [0, bound] and mapped to round(255 / bound * m) (zero motion is 0), so a 3-channel image
    network can read it.
    """
    if not isinstance(flow, np.ndarray) or flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be a (T, H, W, 2) array, got shape {getattr(flow, 'shape', None)}")
    if not (bound > 0 and math.isfinite(bound)):
        raise ValueError(f"bound must be a positive finite number, got {bound!r}")
    vectors = np.clip(flow.astype(np.float32), -bound, bound)
    magnitude = np.minimum(np.sqrt((vectors**2).sum(axis=-1, keepdims=True)), bound)
    scaled = np.concatenate([128.0 + 255.0 / (2.0 * bound) * vectors, 255.0 / bound * magnitude], axis=-1)
    image = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    assert image.shape == (*flow.shape[:3], 3), f"{image.shape=}"
    return image
