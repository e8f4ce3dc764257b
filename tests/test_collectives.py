"""vqjax.collectives: psum and pmean that leave a one-device axis without a collective."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqjax import collectives


def _tree(device_count):
  return {"counts": jnp.arange(device_count * 3, dtype=jnp.float32).reshape(device_count, 3),
          "grads": jnp.linspace(-1.0, 1.0, device_count * 8).reshape(device_count, 2, 4)}


@pytest.mark.parametrize("reduce_name", ["psum", "pmean"])
@pytest.mark.parametrize("device_count", [1, 2, 4])
def test_over_devices_they_equal_jax_collectives(reduce_name, device_count):
  ours, theirs = getattr(collectives, reduce_name), getattr(jax.lax, reduce_name)
  devices = jax.devices()[:device_count]
  mapped = lambda reduce: jax.pmap(lambda t: reduce(t, "d"), axis_name="d", devices=devices)
  tree = _tree(device_count)
  chex.assert_trees_all_close(mapped(ours)(tree), mapped(theirs)(tree))


@pytest.mark.parametrize("reduce_name", ["psum", "pmean"])
def test_over_one_device_no_all_reduce_is_compiled(reduce_name):
  reduce = getattr(collectives, reduce_name)
  tree = _tree(1)
  mapped = jax.pmap(lambda t: reduce(t, "d"), axis_name="d", devices=jax.devices()[:1])
  assert "all-reduce" not in mapped.lower(tree).compile().as_text()
  chex.assert_trees_all_equal(mapped(tree), tree)
  two = jax.pmap(lambda t: reduce(t, "d"), axis_name="d", devices=jax.devices()[:2])
  assert "all-reduce" in two.lower(_tree(2)).compile().as_text()


def test_no_axis_is_the_identity_and_vmap_axes_count():
  x = jnp.arange(6.0).reshape(3, 2)
  assert collectives.psum(x, None) is x and collectives.pmean(x, None) is x
  assert not collectives.spans_devices(None)
  np.testing.assert_allclose(jax.vmap(lambda v: collectives.psum(v, "v"), axis_name="v")(x),
                             np.broadcast_to(np.asarray(x).sum(0), (3, 2)))
  single = jax.vmap(lambda v: collectives.pmean(v, "v"), axis_name="v")(x[:1])
  np.testing.assert_array_equal(single, x[:1])


def test_batch_norm_gets_an_axis_only_where_it_spans_devices():
  assert collectives.batch_norm_axis(None) is None
  names = lambda count: jax.pmap(lambda _: jnp.asarray(
      collectives.batch_norm_axis("d") is not None), axis_name="d",
                                 devices=jax.devices()[:count])(jnp.zeros(count))
  assert not names(1).any() and names(4).all()


@pytest.mark.parametrize("device_count", [1, 4])
def test_pmin_and_member_zeros_value_equal_jax_collectives(device_count):
  devices = jax.devices()[:device_count]
  x = jnp.arange(device_count * 3, dtype=jnp.int32).reshape(device_count, 3)[::-1]
  ours = jax.pmap(lambda v: (collectives.pmin(v, "d"), collectives.from_first(v, "d")),
                  axis_name="d", devices=devices)
  theirs = jax.pmap(lambda v: (jax.lax.pmin(v, "d"), jax.lax.all_gather(v, "d")[0]),
                    axis_name="d", devices=devices)
  chex.assert_trees_all_equal(ours(x), theirs(x))
  assert ("all-reduce" in ours.lower(x).compile().as_text()) == (device_count > 1)
