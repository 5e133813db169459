"""VarietySound in the gan_mel paradigm (`varietysound_generator`, optional `tdad`, optional
`mel_discriminator`). One step:
    1. G forward with reference mel = the clip's own mel (the acoustic encoder's random resampling strips its
       timing) and background mel = the clip's own mel when the generator has a background encoder;
    2. TDAD update (`tdad_loss`): positives (v, m); negatives (v, G(v, m)) and (v, S[m]), S a circular time
       shift of the real mel by `train.tdad_shift`; mel discriminator update (`mel_discriminator_loss`), real
       and fake cropped at the same random windows;
    3. G update: `varietysound_losses.generator_loss`, weights exactly {mel, adv} (paper 10000 / 1); a
       discriminator missing from the config (Table 7 ablations) contributes no adversarial term.
Validation gives each clip another clip's mel of its category as the timbre reference (the solver picks it),
and silence as background unless `train.val_background: real`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from v2s_models.training.adversarial import AlignmentAdversary, WindowedMelAdversary, optimiser_step
from v2s_models.training.gan_system import GanSystem, Generated, GenerationInputs, register_gan_system
from v2s_models.training.options import train_option_int
from v2s_models.varietysound import VarietySoundGenerator
from v2s_models.varietysound_discriminators import (
    MultiWindowMelDiscriminator,
    TimeDomainAlignmentDiscriminator,
)
from v2s_models.varietysound_losses import OPTIONAL_LOSS_WEIGHTS, PAPER_LOSS_WEIGHTS, generator_loss

BACKGROUND_INPUTS = ("own", "shuffled")


class VarietySoundGan(GanSystem):
    name = "varietysound"
    required = ("generator",)
    optional = ("tdad", "mel_discriminator")
    visual_dim_key = "video_dim"
    takes_reference = True
    loss_keys = (*PAPER_LOSS_WEIGHTS, *OPTIONAL_LOSS_WEIGHTS)  # mel, adv required; mel_peak optional
    # its own train options, none of them in the paper
    train_keys = ("mel_peak_window", "background_input", "pitch_shift_bins", "temporal_warmup_epochs")

    def __init__(self, solver: Any) -> None:
        super().__init__(solver)
        modules = solver.modules
        opts = dict(solver.cfg.get("train", {}))
        self.mel_peak_window = train_option_int(opts, "mel_peak_window", self.generator.upsample_factor, 1)
        self.background_input = opts.get("background_input", "own")
        if self.background_input not in BACKGROUND_INPUTS:
            raise ValueError(
                f"train.background_input: expected one of {', '.join(BACKGROUND_INPUTS)}, "
                f"got {self.background_input!r}"
            )
        self.pitch_shift_bins = train_option_int(
            opts, "pitch_shift_bins", 0, 0, self.generator.n_mels // 2 - 1
        )
        self.temporal_warmup_epochs = train_option_int(opts, "temporal_warmup_epochs", 0, 0)
        self.tdad = AlignmentAdversary(solver, "tdad", shift=solver.tdad_shift) if "tdad" in modules else None
        self.mel_discriminator = (
            WindowedMelAdversary(solver, "mel_discriminator") if "mel_discriminator" in modules else None
        )

    def check_components(self) -> None:
        g = self.generator
        kinds = {"tdad": TimeDomainAlignmentDiscriminator, "mel_discriminator": MultiWindowMelDiscriminator}
        for name, kind in kinds.items():
            m = self.solver.modules.get(name)
            if m is None:
                continue
            if not isinstance(m, kind):
                raise ValueError(f"model.{name}: builds a {type(m).__name__}, expected {kind.__name__}")
            if m.n_mels != g.n_mels:
                raise ValueError(f"model.{name}: n_mels {m.n_mels} differs from the generator's {g.n_mels}")
        tdad = self.solver.modules.get("tdad")
        if tdad is not None and (tdad.video_dim != g.video_dim or tdad.upsample_factor != g.upsample_factor):
            raise ValueError(
                f"model.tdad: video_dim / upsampling ({tdad.video_dim} / {tdad.upsample_factor}x) differ from the "
                f"generator's ({g.video_dim} / {g.upsample_factor}x)"
            )

    def check_loss_weights(self, weights: Mapping[str, float]) -> None:
        required = set(PAPER_LOSS_WEIGHTS)
        if not required <= set(weights) <= set(self.loss_keys):
            raise ValueError(
                "losses: VarietySound takes the weights mel, adv and optionally "
                f"{', '.join(OPTIONAL_LOSS_WEIGHTS)}; got {sorted(weights)}"
            )

    @property
    def has_background(self) -> bool:
        return self.generator.background_encoder is not None

    def train_step(self, visual: Tensor, mel: Tensor) -> dict[str, float]:
        solver = self.solver
        if self.pitch_shift_bins:
            mel = shift_mel_bins(mel, self.pitch_shift_bins)
        background = self._training_background(mel) if self.has_background else None
        reference = mel  # the clip's own mel, resampled in the acoustic encoder
        if self.in_temporal_warmup:
            # silence as reference and background: the decoder must explain the mel from the video alone
            reference = torch.full_like(mel, self.generator.silence_value)
            background = reference if background is not None else None
        with solver.autocast():
            fake = solver.modules["generator"](visual, reference, background).float()
        losses: dict[str, float] = {}
        adversaries = [a for a in (self.tdad, self.mel_discriminator) if a is not None]
        for adversary in adversaries:
            losses.update(adversary.update(visual, mel, fake))
        tdad_fake = self.tdad.scores(visual, fake) if self.tdad is not None else None
        mel_d_fake = (
            self.mel_discriminator.scores(visual, fake) if self.mel_discriminator is not None else None
        )
        total, parts = generator_loss(
            fake,
            mel,
            weights=solver.loss_weights,
            tdad_fake=tdad_fake,
            mel_d_fake=mel_d_fake,
            peak_window=self.mel_peak_window,
        )
        optimiser_step(solver.optimizers["generator"], total)
        losses.update({"g_total": total.item(), **{f"g_{k}": v.item() for k, v in parts.items()}})
        return losses

    @property
    def in_temporal_warmup(self) -> bool:
        """`train.temporal_warmup_epochs: N` (not in the paper): the first N epochs give the timbre and background
        encoders silence, so the decoder can only follow the video; the full inputs come after. Counted by the
        generator's schedule (epochs finished), so a resumed run keeps its place."""
        return self.solver.schedulers["generator"].last_epoch < self.temporal_warmup_epochs

    def _training_background(self, mel: Tensor) -> Tensor:
        """The background encoder's training input: the clip's own mel (the paper), or (`train.background_input:
        shuffled`, not in the paper) its frames in a random order, so that the background carries the clip's
        stationary sound but none of its timing, which the generator must then take from the video."""
        if self.background_input == "own":
            return mel
        order = torch.argsort(torch.rand(mel.shape[0], mel.shape[-1], device=mel.device), dim=-1)
        return torch.gather(mel, -1, order.unsqueeze(1).expand_as(mel))

    def generate(self, batch: GenerationInputs) -> Generated:
        g, visual, real_mel = self.generator, batch.visual, batch.real_mel
        reference: list[str | None] = [batch.references[c] for c in batch.clip_ids]
        ref_mel = torch.stack([batch.reference_mels[r] for r in reference]).to(visual.device)
        # background: silence, or (train.val_background: real, Table 8's "w Bi") the clip's own mel, which
        # then reaches the output through the background encoder
        background = real_mel if self.solver.val_background == "real" else None
        generated = g(visual, ref_mel, background, generator=batch.rng)
        own = (
            g(visual, real_mel, background, generator=batch.rng_own).float().cpu()
            if batch.own_reference
            else None
        )
        return Generated(mel=generated, reference=reference, own_reference=own)


def shift_mel_bins(mel: Tensor, max_shift: int) -> Tensor:
    """Each clip's mel (B, n_mels, L) moved along the mel axis by its own whole number of bins drawn uniformly
    from [-max_shift, max_shift] (`train.pitch_shift_bins`, not in the paper): up moves every partial to a higher
    bin, the bins left empty at the edge take the clip's lowest value (its silence). The shifted mel is the
    training step's target, timbre reference and background input at once, and the video is unchanged, so the
    shift can be read from the reference only: the acoustic encoder is made to carry where the partials sit, which
    within-category timbre transfer needs (docs/results.md, "pitch-shift augmentation")."""
    b, n_mels, _ = mel.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b,), device=mel.device)
    src = torch.arange(n_mels, device=mel.device)[None, :] - shifts[:, None]  # (B, n_mels): bin read per bin
    inside = (src >= 0) & (src < n_mels)
    moved = torch.gather(mel, 1, src.clamp(0, n_mels - 1).unsqueeze(-1).expand_as(mel))
    floor = mel.amin(dim=(1, 2), keepdim=True).expand_as(mel)
    return torch.where(inside.unsqueeze(-1), moved, floor)


register_gan_system(VarietySoundGenerator, VarietySoundGan)
