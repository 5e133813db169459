"""Optical flow direction, pair handling and the flow image rendering."""

from __future__ import annotations

import numpy as np
import pytest

from v2s_models.media.flow import consecutive_pairs, flow_to_image, optical_flow

SIZE = 64
SQUARE = 16
STEP = 3  # pixels per frame, +x
TOP, LEFT = 24, 12


def moving_square(num_frames: int = 4) -> np.ndarray:
    """(T, 64, 64, 3) uint8: a bright textured square moving +3 px in x a frame over a dim background."""
    rng = np.random.default_rng(0)
    import cv2

    background = cv2.GaussianBlur(rng.uniform(20, 60, (SIZE, SIZE)).astype(np.float32), (0, 0), 2)
    texture = cv2.GaussianBlur(rng.uniform(150, 250, (SQUARE, SQUARE)).astype(np.float32), (0, 0), 1)
    frames = []
    for t in range(num_frames):
        gray = background.copy()
        left = LEFT + STEP * t
        gray[TOP : TOP + SQUARE, left : left + SQUARE] = texture
        frames.append(np.repeat(gray.astype(np.uint8)[..., None], 3, axis=-1))
    return np.stack(frames)


def inside_square(flow: np.ndarray, t: int) -> np.ndarray:
    """Flow vectors inside the square at its frame-t position (2 px margin): (n, 2)."""
    left = LEFT + STEP * t
    return flow[t, TOP + 2 : TOP + SQUARE - 2, left + 2 : left + SQUARE - 2].reshape(-1, 2).astype(np.float32)


@pytest.mark.parametrize("method", ["tvl1", "dis"])
def test_moving_square_flow_points_right(method: str) -> None:
    frames = moving_square(4)
    flow = optical_flow(frames, method=method)
    assert flow.shape == (4, SIZE, SIZE, 2), f"{flow.shape=}"
    assert flow.dtype == np.float16
    for t in range(3):
        dx, dy = inside_square(flow, t).mean(axis=0)
        assert abs(dx - STEP) < 0.5, f"{method} t={t}: mean dx {dx:.2f}, expected ~{STEP}"
        assert abs(dy) < 0.5, f"{method} t={t}: mean dy {dy:.2f}, expected ~0"
    # Static background far from the square barely moves.
    assert np.abs(flow[:, :12].astype(np.float32)).mean() < 0.2
    # The last frame has no successor: it repeats the previous flow.
    np.testing.assert_array_equal(flow[3], flow[2])


def test_reverse_pair_flows_left_and_identity_pair_is_zero() -> None:
    frames = moving_square(3)
    pairs = np.array([[1, 0], [2, 2], [0, 1], [1, 0]])
    flow = optical_flow(frames, method="dis", pairs=pairs)
    assert flow.shape == (4, SIZE, SIZE, 2), f"{flow.shape=}"
    left = LEFT + STEP  # the square's position in frame 1, the source of pair (1, 0)
    dx = flow[0, TOP + 2 : TOP + SQUARE - 2, left + 2 : left + SQUARE - 2, 0].astype(np.float32).mean()
    assert abs(dx + STEP) < 0.5, f"backward flow mean dx {dx:.2f}, expected ~{-STEP}"
    assert not flow[1].any(), "a pair of a frame with itself must give zero flow"
    np.testing.assert_array_equal(flow[3], flow[0])


def test_workers_give_the_same_flow() -> None:
    frames = moving_square(5)
    one = optical_flow(frames, method="tvl1", workers=1)
    two = optical_flow(frames, method="tvl1", workers=2)
    np.testing.assert_array_equal(one, two)


def test_bound_clips_flow() -> None:
    frames = moving_square(3)
    flow = optical_flow(frames, method="dis", bound=1.0)
    assert np.abs(flow.astype(np.float32)).max() <= 1.0
    assert np.isclose(inside_square(flow, 0)[:, 0].mean(), 1.0, atol=0.1)


def test_single_frame_gives_zero_flow() -> None:
    flow = optical_flow(moving_square(1), method="dis")
    assert flow.shape == (1, SIZE, SIZE, 2) and not flow.any()


def test_consecutive_pairs() -> None:
    np.testing.assert_array_equal(consecutive_pairs(3), [[0, 1], [1, 2], [1, 2]])
    np.testing.assert_array_equal(consecutive_pairs(1), [[0, 0]])


def test_bad_inputs_raise() -> None:
    frames = moving_square(2)
    with pytest.raises(ValueError, match="unknown flow method"):
        optical_flow(frames, method="farneback")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uint8"):
        optical_flow(frames.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        optical_flow(frames[..., 0])
    with pytest.raises(ValueError, match="outside"):
        optical_flow(frames, pairs=np.array([[0, 2]]))


def test_flow_to_image_mapping_and_range() -> None:
    bound = 20.0
    flow = np.zeros((2, 2, 3, 2), dtype=np.float32)
    flow[0, 0, 0] = (bound, -bound)  # extremes
    flow[0, 0, 1] = (100.0, -100.0)  # beyond the bound: clipped like the extremes
    flow[0, 0, 2] = (10.0, 0.0)  # half the bound
    flow[1] = np.random.default_rng(0).normal(0, 30, size=(2, 3, 2))
    image = flow_to_image(flow, bound=bound)
    assert image.shape == (2, 2, 3, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, 1, 0], [128, 128, 0])  # zero motion
    np.testing.assert_array_equal(image[0, 0, 0], [255, 0, 255])
    np.testing.assert_array_equal(image[0, 0, 1], image[0, 0, 0])
    np.testing.assert_array_equal(
        image[0, 0, 2], [192, 128, 128]
    )  # 128 + 255/40*10 = 191.75; 255/20*10 = 127.5
    # Monotone in dx: larger motion to the right never gives a darker first channel.
    ramp = np.stack([np.linspace(-30, 30, 61), np.zeros(61)], axis=-1).reshape(1, 1, 61, 2)
    channel = flow_to_image(ramp, bound=bound)[0, 0, :, 0].astype(int)
    assert (np.diff(channel) >= 0).all() and channel[0] == 0 and channel[-1] == 255
    with pytest.raises(ValueError, match=r"\(T, H, W, 2\)"):
        flow_to_image(flow[0])
