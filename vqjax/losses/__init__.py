"""Training losses as pure functions: the reconstruction loss (reconstruction.py) and the
adversarial terms of VQGAN (gan.py)."""
from vqjax.losses.gan import (GAN_LOSSES, LeCamEMA, adaptive_weight, check_gan_loss,
                              discriminator_loss, generator_loss, global_norm,
                              init_lecam_ema, lecam_regularization, r1_penalty,
                              update_lecam_ema)
from vqjax.losses.reconstruction import (RECONSTRUCTION_LOSSES, check_reconstruction_loss,
                                         reconstruction_loss)
