"""Records tests/data/inception_reference.npz with the TorchScript FID Inception (needs torch):

    python tests/record_inception_reference.py

  pool3            [4, 2048] pool3 features of reference_images() by default_1.pt
  fid64_seed123    FID of torchmetrics' doctest images (torch.manual_seed(123); 100 images
                   randint(0, 200) vs 100 randint(100, 255), 299x299) on the 64 features after
                   the stem's first max pool (torch-fidelity's '64'), stem run by default_1.pt
Not collected by pytest; tests/test_inception.py reads the file without torch.
"""
import os

import numpy as np

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                         "inception_reference.npz")


def reference_images() -> np.ndarray:
  """4 seeded uint8 images [4, 299, 299, 3]: noise, a gradient, a flat and a dark image."""
  rng = np.random.RandomState(0)
  ramp = np.linspace(0, 255, 299)
  gradient = np.stack([ramp[:, None] + 0 * ramp, ramp[None, :] + 0 * ramp[:, None],
                       255 - ramp[:, None] + 0 * ramp], -1)
  return np.stack([rng.randint(0, 256, (299, 299, 3)), gradient,
                   np.full((299, 299, 3), 128.0), rng.randint(0, 40, (299, 299, 3))]
                  ).astype(np.uint8)


def torch_randint_uint8(bit_generator: np.random.MT19937, low: int, high: int, shape):
  """torch.randint(low, high, shape, dtype=torch.uint8) on CPU after torch.manual_seed(s),
  given np.random.MT19937 seeded with _legacy_seeding(s): torch draws one 32-bit MT19937
  output per element and takes it modulo (high - low)."""
  draws = bit_generator.random_raw(int(np.prod(shape)))
  return (draws % (high - low) + low).astype(np.uint8).reshape(shape)


def torchmetrics_doctest_images(seed: int = 123):
  """The two [100, 299, 299, 3] uint8 sets of torchmetrics' FID doctest, drawn without torch."""
  bit_generator = np.random.MT19937()
  bit_generator._legacy_seeding(seed)
  first = torch_randint_uint8(bit_generator, 0, 200, (100, 3, 299, 299))
  second = torch_randint_uint8(bit_generator, 100, 255, (100, 3, 299, 299))
  return first.transpose(0, 2, 3, 1), second.transpose(0, 2, 3, 1)


def main():
  import torch

  from vqjax.metrics import feature_statistics, fid
  from vqjax.models.inception_weights import package_weights_path

  model = torch.jit.load(package_weights_path()).eval()
  layers = model.net.layers
  to_torch = lambda images: (torch.from_numpy(images).permute(0, 3, 1, 2).float() - 128) / 128
  with torch.no_grad():
    pool3 = model(to_torch(reference_images())).numpy()
    stem = lambda x: layers.pool0(layers.conv_2(layers.conv_1(layers.conv(x)))).mean((2, 3))
    first, second = torchmetrics_doctest_images(123)
    features = [np.concatenate([stem(to_torch(images[i:i + 25])).double().numpy()
                                for i in range(0, 100, 25)]) for images in (first, second)]
  value = fid(feature_statistics(features[0]), feature_statistics(features[1]))
  np.savez_compressed(REFERENCE, pool3=pool3.astype(np.float32), fid64_seed123=np.float64(value))
  print(f"wrote {REFERENCE}: pool3 {pool3.shape}, fid64_seed123 {value:.6f}")


if __name__ == "__main__":
  main()
