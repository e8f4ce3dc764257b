"""taming-transformers' own VQModel modules with random weights, for the conversion tests:
built from taming.modules (its VQModel imports Lightning, whose torchvision does not load),
with VQModel's attribute names, so the state_dict keys are a VQModel checkpoint's.

Import only after pytest.importorskip("torch") and ("taming").
"""
from __future__ import annotations

import numpy as np
import torch
from taming.modules.diffusionmodules.model import Decoder, Encoder
from taming.modules.discriminator.model import NLayerDiscriminator
from taming.modules.vqvae.quantize import VectorQuantizer2


def ddconfig(*, ch, ch_mult, num_res_blocks, attn_resolutions, z_channels, resolution,
             channels=3) -> dict:
  return dict(double_z=False, z_channels=z_channels, resolution=resolution,
              in_channels=channels, out_ch=channels, ch=ch, ch_mult=list(ch_mult),
              num_res_blocks=num_res_blocks, attn_resolutions=list(attn_resolutions),
              dropout=0.0)


# taming's f16 ImageNet model (vqgan_imagenet_f16_1024) and test-sized f16 and f8 models.
FULL_F16 = dict(ddconfig=ddconfig(ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2,
                                  attn_resolutions=(16,), z_channels=256, resolution=256),
                n_embed=1024, embed_dim=256)
TINY_F16 = dict(ddconfig=ddconfig(ch=32, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1,
                                  attn_resolutions=(2,), z_channels=16, resolution=32),
                n_embed=32, embed_dim=8)
TINY_F8 = dict(ddconfig=ddconfig(ch=32, ch_mult=(1, 2, 2, 4), num_res_blocks=2,
                                 attn_resolutions=(4,), z_channels=4, resolution=32),
               n_embed=64, embed_dim=4)


class Loss(torch.nn.Module):
  """VQLPIPSWithDiscriminator's discriminator (its LPIPS needs torchvision)."""

  def __init__(self, channels, ndf, num_layers):
    super().__init__()
    self.discriminator = NLayerDiscriminator(channels, ndf, num_layers)


class TamingVQModel(torch.nn.Module):
  """taming.models.vqgan.VQModel's modules and encode/decode, without Lightning."""

  def __init__(self, ddconfig, n_embed, embed_dim, *, disc_layers=None, disc_ndf=8,
               seed=0):
    super().__init__()
    torch.manual_seed(seed)
    self.encoder = Encoder(**ddconfig)
    self.decoder = Decoder(**ddconfig)
    self.quantize = VectorQuantizer2(n_embed, embed_dim, beta=0.25)
    # codes on the scale of z_e, so that the search is not decided by rounding
    torch.nn.init.normal_(self.quantize.embedding.weight)
    self.quant_conv = torch.nn.Conv2d(ddconfig["z_channels"], embed_dim, 1)
    self.post_quant_conv = torch.nn.Conv2d(embed_dim, ddconfig["z_channels"], 1)
    if disc_layers is not None:
      self.loss = Loss(ddconfig["in_channels"], disc_ndf, disc_layers)
    self.eval()

  @torch.no_grad()
  def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
    """z_e (after quant_conv), indices [B, h, w] and the decoded images, images NHWC."""
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    z_e = self.quant_conv(self.encoder(x))
    quant, _, (_, _, indices) = self.quantize(z_e)
    decoded = self.decoder(self.post_quant_conv(quant))
    b, _, h, w = z_e.shape
    return {"z_e": z_e.permute(0, 2, 3, 1).numpy(), "indices": indices.reshape(b, h, w).numpy(),
            "decoded": decoded.permute(0, 2, 3, 1).numpy()}


def save(module: torch.nn.Module, path, *, lightning: bool, extra: dict | None = None) -> str:
  """module's state_dict as torch.save writes it: plain, or in a Lightning-style dict."""
  state = module.state_dict()
  torch.save({"state_dict": state, "global_step": 1234, **(extra or {})} if lightning
             else state, str(path))
  return str(path)


def images(size: int, channels: int = 3, batch: int = 1, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, channels)).astype(
      np.float32)
