"""Score-function (REINFORCE) gradients of E_{m ~ Bernoulli(sigmoid(logits))}[reward(m)]."""

from __future__ import annotations

import jax
import jax.numpy as jnp

BASELINES = ("loo", "none")


def sample_masks(key, probs_C, num_samples: int):
  """[K, C] float masks, m_kc ~ Bernoulli(probs_c) independently."""
  u = jax.random.uniform(key, (num_samples, probs_C.shape[0]))
  return (u < probs_C).astype(jnp.float32)


def baseline_of(rewards_K, kind: str):
  """Per-sample baselines b_k independent of sample k: the leave-one-out mean, or zero."""
  if kind == "none":
    return jnp.zeros_like(rewards_K)
  if kind == "loo":
    k = rewards_K.shape[0]
    return (jnp.sum(rewards_K, axis=0, keepdims=True) - rewards_K) / (k - 1)
  raise ValueError(f"unknown baseline {kind!r}; known: {', '.join(BASELINES)}")


def estimate(rewards_KxG, masks_KxC, probs_C, group_C=None, *, baseline: str = "loo"):
  """Unbiased estimate of d E[reward] / d logits, [C].

  rewards_KxG: the reward of each sample, split into G additive parts (G = 1 for a scalar
  reward). group_C names the part each logit can move (None: all parts). Credit per part
  stays unbiased when part g depends only on the masks of its own candidates, and removes
  the other parts' noise from a candidate's estimate (d sigmoid / d logit = m - p is the
  Bernoulli score).
  """
  rewards_KxG = jnp.asarray(rewards_KxG, jnp.float32)
  if rewards_KxG.ndim == 1:
    rewards_KxG = rewards_KxG[:, None]
  k = rewards_KxG.shape[0]
  if baseline == "loo" and k < 2:
    raise ValueError("the leave-one-out baseline needs at least 2 samples")
  advantage_KxG = rewards_KxG - baseline_of(rewards_KxG, baseline)
  if group_C is None:
    advantage_KxC = jnp.sum(advantage_KxG, axis=1, keepdims=True)
  else:
    advantage_KxC = advantage_KxG[:, group_C]
  return jnp.mean(advantage_KxC * (masks_KxC - probs_C[None, :]), axis=0)
