"""Files a researcher looks at: mel images (generated vs real), wav files and mp4 files with a generated
soundtrack on the real video. Shared by the solvers' `write_artifacts` and by `v2s generate`.

- `plot_mel_comparison`: a PNG with the generated mel, the real mel (when given) and their frame-energy
  envelopes on one time axis (matplotlib's object API on the Agg canvas: no pyplot, no global state).
- `write_wav`: 16-bit PCM wav.
- `mux_audio_onto_video`: the source video's stream copied packet by packet (no re-encoding) when the codec
  fits an mp4, re-encoded to H.264 otherwise (or when `copy_video=False`), with the waveform as AAC. The audio
  is cut, or padded with silence, to the video's duration: a generated 10 s soundtrack of a clip looped to
  10 s starts with the original clip's own span. The first audio frame is stamped pts 0 so that the encoder's
  priming samples get a negative timestamp and the muxer's edit list hides them; without that the audio would
  start about 46 ms (1024 samples at 22050 Hz) late and outlast the video.
- `write_clip_artifacts`: the three for one clip, named after its id.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

log = logging.getLogger(__name__)


class Vocoder(Protocol):
    """What the vocoders share: mel (n_mels, L) -> waveform (L * hop,) float32."""

    def __call__(self, mel: np.ndarray | torch.Tensor) -> np.ndarray: ...


def safe_name(clip_id: str) -> str:
    """A file-name stem for a clip id: 'cough/cough_0000' -> 'cough__cough_0000'."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in clip_id.replace("/", "__"))
    return name.strip(".") or "clip"


def _as_numpy_mel(mel: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    arr = mel.detach().float().cpu().numpy() if isinstance(mel, torch.Tensor) else np.asarray(mel, np.float32)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a mel (n_mels, L), got shape {arr.shape}")
    return arr


def plot_mel_comparison(
    path: str | Path,
    generated: np.ndarray | torch.Tensor,
    real: np.ndarray | torch.Tensor | None = None,
    *,
    title: str = "",
    sample_rate: int = 22050,
    hop: int = 256,
) -> Path:
    """PNG of generated (n_mels, L) [and real (n_mels, L)] mels plus their frame-energy envelopes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    gen = _as_numpy_mel(generated, "generated")
    panels = [("generated", gen)]
    if real is not None:
        ref = _as_numpy_mel(real, "real")
        if ref.shape[0] != gen.shape[0]:
            raise ValueError(f"real mel has {ref.shape[0]} bins, generated {gen.shape[0]}")
        panels.append(("real", ref))
    seconds = gen.shape[1] * hop / sample_rate
    fig = Figure(figsize=(10, 2.2 * (len(panels) + 1)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels) + 1, 1, sharex=True)
    vmin = min(float(p.min()) for _, p in panels)
    vmax = max(float(p.max()) for _, p in panels)
    for ax, (label, m) in zip(axes, panels, strict=False):
        extent = (0.0, m.shape[1] * hop / sample_rate, 0, m.shape[0])
        ax.imshow(m, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap="magma")
        ax.set_ylabel(f"{label}\nmel bin")
    ax = axes[-1]
    for label, m in panels:
        t = (np.arange(m.shape[1]) + 0.5) * hop / sample_rate
        ax.plot(t, m.mean(axis=0), label=label, linewidth=0.9)
    ax.set_xlim(0.0, seconds)
    ax.set_ylabel("frame energy")
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper right", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def write_wav(path: str | Path, wav: np.ndarray | torch.Tensor, sample_rate: int) -> Path:
    """Mono float waveform (N,) in [-1, 1] -> 16-bit PCM wav."""
    import soundfile as sf

    x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    if x.ndim != 1:
        raise ValueError(f"wav must be mono (N,), got shape {x.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(x.astype(np.float32), -1.0, 1.0), sample_rate, subtype="PCM_16")
    return path


def video_duration(video_path: str | Path) -> float:
    """Seconds of the first video stream (stream duration, else frames / rate, else the container's)."""
    import av

    with av.open(str(video_path)) as f:
        if not f.streams.video:
            raise ValueError(f"{video_path} has no video stream")
        vs = f.streams.video[0]
        if vs.duration is not None and vs.time_base is not None:
            return float(vs.duration * vs.time_base)
        if vs.frames and vs.average_rate:
            return float(vs.frames / vs.average_rate)
        if f.duration is not None:
            return f.duration / 1_000_000
    raise ValueError(f"cannot tell the duration of {video_path}")


def _fit_audio(wav: np.ndarray, n: int) -> np.ndarray:
    if wav.shape[0] >= n:
        return wav[:n]
    return np.pad(wav, (0, n - wav.shape[0]))


def mux_audio_onto_video(
    video_path: str | Path,
    wav: np.ndarray | torch.Tensor,
    sample_rate: int,
    out_path: str | Path,
    *,
    copy_video: bool = True,
    audio_bitrate: int = 128_000,
) -> Path:
    """Writes `out_path` (mp4): the video of `video_path` with `wav` (N,) as its only, AAC, soundtrack.

    The waveform is cut or zero-padded to the video's duration. The video stream is copied without
    re-encoding when possible; otherwise (or with `copy_video=False`) it is re-encoded to H.264.
    """
    x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    if x.ndim != 1:
        raise ValueError(f"wav must be mono (N,), got shape {x.shape}")
    video_path, out_path = Path(video_path), Path(out_path)
    if not video_path.is_file():
        raise FileNotFoundError(f"video {video_path} not found")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(video_duration(video_path) * sample_rate))
    audio = np.clip(_fit_audio(x.astype(np.float32), n), -1.0, 1.0)
    if copy_video:
        try:
            _mux(video_path, audio, sample_rate, out_path, copy_video=True, audio_bitrate=audio_bitrate)
            return out_path
        except Exception as e:  # noqa: BLE001 (PyAV raises several kinds for a codec the container refuses)
            log.warning("copying the video stream of %s failed (%s): re-encoding it", video_path, e)
            out_path.unlink(missing_ok=True)
    _mux(video_path, audio, sample_rate, out_path, copy_video=False, audio_bitrate=audio_bitrate)
    return out_path


def _mux(
    video_path: Path,
    audio: np.ndarray,
    sample_rate: int,
    out_path: Path,
    *,
    copy_video: bool,
    audio_bitrate: int,
) -> None:
    import av

    with av.open(str(video_path)) as inp, av.open(str(out_path), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        if copy_video:
            vout = out.add_stream_from_template(vin)
        else:
            rate = vin.average_rate or vin.guessed_rate or Fraction(25)
            vout = out.add_stream("libx264", rate=rate)
            vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
            vout.pix_fmt = "yuv420p"
            vout.codec_context.time_base = vin.time_base  # keep the source's timestamps (variable rates too)
            vout.options = {"crf": "20", "preset": "veryfast"}
        aout = out.add_stream("aac", rate=sample_rate, layout="mono")
        aout.bit_rate = audio_bitrate

        frame = av.AudioFrame.from_ndarray(audio[None, :], format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = 0  # the encoder then stamps its priming samples before 0 (see the module docstring)
        frame.time_base = Fraction(1, sample_rate)
        for packet in aout.encode(frame):
            out.mux(packet)
        for packet in aout.encode(None):
            out.mux(packet)

        if copy_video:
            for packet in inp.demux(vin):
                if packet.dts is None:  # the demuxer's final empty packet
                    continue
                packet.stream = vout
                out.mux(packet)
        else:
            for vframe in inp.decode(vin):
                img = vframe.reformat(format="yuv420p")
                img.pts, img.time_base = vframe.pts, vframe.time_base
                for packet in vout.encode(img):
                    out.mux(packet)
            for packet in vout.encode(None):
                out.mux(packet)


def write_clip_artifacts(
    out_dir: str | Path,
    clip_id: str,
    *,
    generated_mel: np.ndarray | torch.Tensor,
    real_mel: np.ndarray | torch.Tensor | None,
    vocoder: Vocoder,
    sample_rate: int,
    hop: int = 256,
    video_path: str | Path | None = None,
    title: str = "",
) -> list[Path]:
    """`<stem>_mel.png`, `<stem>.wav` and (with a video) `<stem>.mp4` under `out_dir`; returns their paths.

    `generated_mel` (n_mels, L) must be in the convention `vocoder` expects (RegNet mels lie in [0, 1]).
    """
    out_dir = Path(out_dir)
    stem = safe_name(clip_id)
    paths = [
        plot_mel_comparison(
            out_dir / f"{stem}_mel.png",
            generated_mel,
            real_mel,
            title=title or clip_id,
            sample_rate=sample_rate,
            hop=hop,
        )
    ]
    wav = np.asarray(vocoder(generated_mel), dtype=np.float32)
    paths.append(write_wav(out_dir / f"{stem}.wav", wav, sample_rate))
    if video_path is not None:
        paths.append(mux_audio_onto_video(video_path, wav, sample_rate, out_dir / f"{stem}.mp4"))
    return paths
