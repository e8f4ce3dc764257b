"""taming-transformers' VQGAN train step in torch, the peer that experiments/bench_vqgan.py
times against vqjax's on the CPU (pip install -e .[bench]).

Built from taming's own modules (Encoder, Decoder, VectorQuantizer2, the quant convs of
its VQModel, VQLPIPSWithDiscriminator with its NLayerDiscriminator and LPIPS), without
pytorch-lightning: the step is VQModel.training_step's two optimizer passes, the generator
(optimizer_idx=0, the discriminator frozen as Lightning freezes it) then the
discriminator (optimizer_idx=1) on the same reconstructions, detached (taming runs the
generator forward again for it; reusing it favours taming).

Two changes that only timing allows: torchvision's wheel does not load with the CPU torch,
so `torchvision.models.vgg16` is replaced by an equal, randomly initialized `features`
stack; and LPIPS's pretrained weights are not downloaded.
"""
from __future__ import annotations

import sys
import time
import types
from typing import Callable, NamedTuple

# torchvision's VGG16 'features' (configuration D): 3x3 convs, ReLU, 2x2 max pools.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M")


class TamingSetup(NamedTuple):
  image_size: int
  channels: int
  channel_multipliers: tuple[int, ...]
  num_res_blocks: int
  attention_resolutions: tuple[int, ...]
  z_channels: int
  codebook_size: int
  embedding_dim: int
  disc_channels: int
  disc_layers: int
  discriminator_weight: float
  perceptual_weight: float
  learning_rate: float
  batch_size: int


def _install_vgg16_stub(torch) -> None:
  """torchvision.models.vgg16 as taming's LPIPS reads it: .features, random weights."""
  def vgg16(pretrained=False, **unused):
    layers, channels = [], 3
    for width in _VGG16:
      if width == "M":
        layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
      else:
        layers += [torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.ReLU(inplace=True)]
        channels = width
    return types.SimpleNamespace(features=torch.nn.Sequential(*layers))

  models = types.ModuleType("torchvision.models")
  models.vgg16 = vgg16
  torchvision = types.ModuleType("torchvision")
  torchvision.models = models
  sys.modules["torchvision"], sys.modules["torchvision.models"] = torchvision, models


def import_taming():
  """(torch, taming's diffusionmodules.model, vqvae.quantize, losses.vqperceptual, lpips)
  with the VGG16 stub installed and the LPIPS download skipped; ImportError names the
  extra to install."""
  try:
    import torch
    _install_vgg16_stub(torch)
    from taming.modules.diffusionmodules import model as taming_model
    from taming.modules.losses import lpips as taming_lpips
    from taming.modules.losses import vqperceptual
    from taming.modules.vqvae import quantize
  except ImportError as error:
    raise ImportError(f"{error}; the taming-transformers peer needs the bench extra: "
                      "pip install -e .[bench] (or run with --skip_taming)") from None
  taming_lpips.LPIPS.load_from_pretrained = lambda self, name="vgg_lpips": None
  return torch, taming_model, quantize, vqperceptual


def build_steps(setup: TamingSetup, *, threads: int, seed: int = 0) -> dict[str, Callable]:
  """{'gan': full step, 'generator': reconstruction + codebook loss only}, each a
  () -> None that runs one update on a fixed random batch and returns when it is done;
  also 'parameters': () -> (generator, discriminator) parameter counts."""
  torch, taming_model, quantize, vqperceptual = import_taming()
  torch.set_num_threads(threads)
  torch.manual_seed(seed)
  ddconfig = dict(double_z=False, z_channels=setup.z_channels, resolution=setup.image_size,
                  in_channels=3, out_ch=3, ch=setup.channels,
                  ch_mult=list(setup.channel_multipliers), num_res_blocks=setup.num_res_blocks,
                  attn_resolutions=list(setup.attention_resolutions), dropout=0.0)

  class Generator(torch.nn.Module):  # taming.models.vqgan.VQModel's modules and forward
    def __init__(self):
      super().__init__()
      self.encoder = taming_model.Encoder(**ddconfig)
      self.decoder = taming_model.Decoder(**ddconfig)
      self.quantize = quantize.VectorQuantizer2(setup.codebook_size, setup.embedding_dim,
                                                beta=0.25)
      self.quant_conv = torch.nn.Conv2d(setup.z_channels, setup.embedding_dim, 1)
      self.post_quant_conv = torch.nn.Conv2d(setup.embedding_dim, setup.z_channels, 1)

    def forward(self, x):
      quant, codebook_loss, _ = self.quantize(self.quant_conv(self.encoder(x)))
      return self.decoder(self.post_quant_conv(quant)), codebook_loss

  generator = Generator().train()
  loss = vqperceptual.VQLPIPSWithDiscriminator(
      disc_start=0, codebook_weight=1.0, disc_num_layers=setup.disc_layers,
      disc_in_channels=3, disc_factor=1.0, disc_weight=setup.discriminator_weight,
      perceptual_weight=setup.perceptual_weight, disc_ndf=setup.disc_channels,
      disc_loss="hinge").train()
  adam = lambda params: torch.optim.Adam(params, lr=setup.learning_rate, betas=(0.5, 0.9))
  generator_optimizer = adam(generator.parameters())
  discriminator_optimizer = adam(loss.discriminator.parameters())
  images = torch.rand(setup.batch_size, 3, setup.image_size, setup.image_size) * 2 - 1
  last_layer = generator.decoder.conv_out.weight

  def freeze_discriminator(frozen: bool):
    for param in loss.discriminator.parameters():
      param.requires_grad_(not frozen)

  def gan_step():
    freeze_discriminator(True)
    reconstruction, codebook_loss = generator(images)
    generator_loss, _ = loss(codebook_loss, images, reconstruction, 0, 0,
                             last_layer=last_layer, split="train")
    generator_optimizer.zero_grad(set_to_none=True)
    generator_loss.backward()
    generator_optimizer.step()
    freeze_discriminator(False)
    discriminator_loss, _ = loss(codebook_loss, images, reconstruction.detach(), 1, 0,
                                 last_layer=last_layer, split="train")
    discriminator_optimizer.zero_grad(set_to_none=True)
    discriminator_loss.backward()
    discriminator_optimizer.step()

  def generator_step():
    reconstruction, codebook_loss = generator(images)
    total = torch.mean(torch.abs(images - reconstruction)) + codebook_loss.mean()
    generator_optimizer.zero_grad(set_to_none=True)
    total.backward()
    generator_optimizer.step()

  count = lambda module: sum(param.numel() for param in module.parameters())
  return {"gan": gan_step, "generator": generator_step,
          "parameters": lambda: (count(generator), count(loss.discriminator))}


def timed(step: Callable[[], None]) -> float:
  start = time.perf_counter()
  step()
  return time.perf_counter() - start
