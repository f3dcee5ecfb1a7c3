"""Budgets on Bernoulli keep logits: a scalar shift so that the expected size is the budget,
and the deterministic top-k selection by keep probability."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def budget_shift(logits_C, budget, weights_C=None, *, rtol: float = 1e-5, max_iter: int = 60):
  """The shift tau with sum(sigmoid(logits_C - tau)) == budget, for 0 < budget < C.

  weights_C (0 or 1) restricts the sum, and the budget, to the candidates marked 1.

  Safeguarded Newton on a bracket: f(tau) = size(tau) - budget is decreasing, and with
  q = budget / C every logit lies within [tau_lo, tau_hi] = [min, max](logits) - logit(q)
  of the answer, so the bracket holds it. Newton steps that leave it are bisections.
  """
  if weights_C is None:
    weights_C = jnp.ones_like(logits_C)
  n = jnp.sum(weights_C)
  q = jnp.clip(budget / n, 1e-12, 1 - 1e-7)
  offset = jnp.log(q) - jnp.log1p(-q)
  lo = jnp.min(jnp.where(weights_C > 0, logits_C, jnp.inf)) - offset  # size(lo) >= budget
  hi = jnp.max(jnp.where(weights_C > 0, logits_C, -jnp.inf)) - offset  # size(hi) <= budget

  def f_and_slope(tau):
    p = jax.nn.sigmoid(logits_C - tau) * weights_C
    return jnp.sum(p) - budget, -jnp.sum(p * (1 - p))

  def cond(state):
    i, _, _, _, err = state
    return (i < max_iter) & (jnp.abs(err) > rtol * budget)

  def body(state):
    i, lo, hi, tau, _ = state
    err, slope = f_and_slope(tau)
    lo = jnp.where(err > 0, tau, lo)
    hi = jnp.where(err > 0, hi, tau)
    newton = tau - err / jnp.minimum(slope, -1e-30)
    inside = (newton > lo) & (newton < hi)
    tau_next = jnp.where(inside, newton, 0.5 * (lo + hi))
    err_next, _ = f_and_slope(tau_next)
    return i + 1, lo, hi, tau_next, err_next

  tau0 = 0.5 * (lo + hi)
  err0, _ = f_and_slope(tau0)
  _, _, _, tau, _ = jax.lax.while_loop(cond, body, (0, lo, hi, tau0, err0))
  return tau


def project_to_budget(logits_C, budget):
  """Logits shifted so that their expected size is `budget` (clipped to (0, C))."""
  return logits_C - budget_shift(logits_C, budget)


def top_k_mask(scores_C: np.ndarray, k: int, tiebreak_C: np.ndarray | None = None) -> np.ndarray:
  """Boolean mask of the k highest scores; ties go to the lower `tiebreak_C` (default:
  the lower index)."""
  scores_C = np.asarray(scores_C)
  if not 0 <= k <= scores_C.shape[0]:
    raise ValueError(f"cannot select {k} of {scores_C.shape[0]} candidates")
  if tiebreak_C is None:
    tiebreak_C = np.arange(scores_C.shape[0])
  order = np.lexsort((tiebreak_C, -scores_C))
  keep = np.zeros(scores_C.shape[0], bool)
  keep[order[:k]] = True
  return keep
