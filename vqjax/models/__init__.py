"""Models: the VQ-VAE and VQ-VAE-2 autoencoders, with any quantizer layer of vqjax.nn."""
from vqjax.models import layers
from vqjax.models import vqvae
from vqjax.models import vqvae2
from vqjax.models.layers import Decoder, Encoder, ResidualStack
from vqjax.models.lpips import LPIPS, VGG16Features, lpips_distance
from vqjax.models.lpips_weights import load_lpips_variables, save_lpips_npz
from vqjax.models.vqvae import TinyVQVAE, VQVAE, VQVAEOutput
from vqjax.models.vqvae2 import TinyVQVAE2, VQVAE2, VQVAE2Output
from vqjax.models.taming import TamingDecoder, TamingEncoder
from vqjax.models.vqgan import TinyVQGAN, VQGAN, VQGANFeatures
from vqjax.models.patchgan import PatchGANDiscriminator, TinyPatchGAN
from vqjax.models.pixelcnn_prior import GatedPixelCNN, TinyGatedPixelCNN
from vqjax.models.transformer_prior import KVCache, TinyTransformerPrior, TransformerPrior
from vqjax.models.maskgit_prior import MaskGITPrior, TinyMaskGITPrior
from vqjax.models import conditioning
from vqjax.models import tokenizers
from vqjax.models.inception import InceptionV3
from vqjax.models.inception_weights import load_inception_variables, save_inception_npz
