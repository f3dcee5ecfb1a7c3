"""Distill-CF (Sachdeva et al., NeurIPS 2022): synthetic users for the infinite-width AE.

∞-AE is kernel ridge regression with the NTK of a one-hidden-layer ReLU autoencoder,
Dense -> ReLU -> Dense in neural_tangents' 'ntk' parameterisation with the authors'
W_std = sqrt(2), b_std = 0.1. Written out here (no neural_tangents), with w2 = W_std^2,
b2 = b_std^2, d = number of items and, for user rows x, y:

  k1(x, y) = w2 x.y / d + b2                       (NNGP = NTK of the first Dense)
  cos t    = k1(x, y) / sqrt(k1(x, x) k1(y, y))
  k2(x, y) = sqrt(k1(x, x) k1(y, y)) (sin t + (pi - t) cos t) / (2 pi)   (ReLU, arc-cos 1)
  kd(x, y) = (pi - t) / (2 pi)                                          (ReLU', arc-cos 0)
  NTK      = w2 k2 + b2 + w2 k1 kd                 (second Dense)

Predictions for rows X from support rows X_s: K(X, X_s) (K_ss + r I)^{-1} X_s with
r = |lambda| trace(K_ss) / n_s (the mean of the diagonal, as the authors' code has it).

Distill-CF learns logits [n_s, items]; every outer step draws synthetic users as the sum of
`n_samples` Gumbel-softmax draws over the items per row, clipped to [0, 1] (hard tanh);
fits the KRR on them (Cholesky, float32) and scores real users' rows with it; the loss is
the softmax cross-entropy of the real rows under the predictions, plus `budget_reg` times
the mean synthetic row sum over the mean real degree. Adam on the logits.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.linalg
from jax.extend.random import threefry_2x32

from jaxcond.data.interactions import Interactions
from jaxcond.data.split import DatasetSplit
from jaxcond.models import ease
from jaxcond.models import evaluate as evaluate_lib

W_STD = math.sqrt(2.0)  # the authors' FullyConnectedNetwork defaults
B_STD = 0.1
LAMBDA_GRID = (1e-5, 1e-3, 0.1, 1.0, 5.0, 50.0)  # the authors' grid for lambda
EASE_L2_GRID = (1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 3000.0)
VAL_METRIC = "hr@100"  # the authors' validation metric (their HR definition)
DCF_KS = (10, 100)


@dataclasses.dataclass(frozen=True)
class DistillConfig:
  """Distill-CF's settings; the defaults are the authors' ML-1M hyper_params.py."""

  n_users: int = 500  # synthetic users (the budget)
  n_samples: int = 200  # Gumbel-softmax draws summed per synthetic user
  tau: float = 10.0  # Gumbel-softmax temperature
  budget_reg: float = 1e-3  # weight of the row-sum (cardinality) penalty
  lr: float = 0.04  # Adam on the logits
  steps: int = 500
  batch_users: int = 0  # real users per outer step; 0: all of them
  patience: int = 150  # steps without a better validation before stopping
  validate_at: tuple = (25, 50, 75, 100, 125, 150, 175, 200)
  validate_every: int = 40
  remat: bool = False  # recompute the draws in the backward pass (memory n_s x I, not x n)
  seed: int = 42

  def __post_init__(self):
    for name in ("n_users", "n_samples", "steps", "validate_every"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
    if not (self.tau > 0 and self.lr > 0 and self.budget_reg >= 0 and self.batch_users >= 0
            and self.patience >= 1):
      raise ValueError(f"need tau > 0, lr > 0, budget_reg >= 0, batch_users >= 0, "
                       f"patience >= 1; got {self}")


# --- the kernel -----------------------------------------------------------------------


@jax.custom_jvp
def _arccos(c):
  return jnp.arccos(c)


@_arccos.defjvp
def _arccos_jvp(primals, tangents):
  # At |c| = 1 (a row against itself) the slope is infinite but the tangent of c is zero:
  # take the slope as 0 there instead of inf * 0 = nan.
  (c,), (dc,) = primals, tangents
  inside = jnp.abs(c) < 1
  slope = jnp.where(inside, -jax.lax.rsqrt(jnp.where(inside, 1 - c * c, 1.0)), 0.0)
  return jnp.arccos(c), slope * dc


def _ntk_from_k1(k1_AxB, na_A, nb_B, *, w2, b2, xp, arccos):
  """The NTK from the first layer's kernel k1 and its diagonals (xp: numpy or jax.numpy)."""
  norm_AxB = xp.sqrt(na_A[:, None] * nb_B[None, :])
  cos_AxB = xp.clip(k1_AxB / norm_AxB, -1.0, 1.0)
  t_AxB = arccos(cos_AxB)
  k2_AxB = norm_AxB * (xp.sin(t_AxB) + (math.pi - t_AxB) * cos_AxB) / (2 * math.pi)
  kd_AxB = (math.pi - t_AxB) / (2 * math.pi)
  return w2 * k2_AxB + b2 + w2 * k1_AxB * kd_AxB


def ntk(xa_AxI, xb_BxI, *, w_std: float = W_STD, b_std: float = B_STD):
  """NTK of Dense -> ReLU -> Dense between the rows of xa and xb (jax, float32)."""
  w2, b2, d = w_std ** 2, b_std ** 2, xa_AxI.shape[-1]
  k1_AxB = w2 * (xa_AxI @ xb_BxI.T) / d + b2
  na_A = w2 * jnp.sum(xa_AxI * xa_AxI, axis=-1) / d + b2
  nb_B = w2 * jnp.sum(xb_BxI * xb_BxI, axis=-1) / d + b2
  return _ntk_from_k1(k1_AxB, na_A, nb_B, w2=w2, b2=b2, xp=jnp, arccos=_arccos)


def ntk_f64(xa_AxI, xb_BxI, *, w_std: float = W_STD, b_std: float = B_STD) -> np.ndarray:
  """The same on the host in float64, but for the inner products (float32 BLAS: exact on
  0/1 rows up to 2^24 common items)."""
  xa = np.asarray(xa_AxI, np.float32)
  xb = np.asarray(xb_BxI, np.float32)
  w2, b2, d = w_std ** 2, b_std ** 2, xa.shape[-1]
  k1_AxB = w2 * (xa @ xb.T).astype(np.float64) / d + b2
  na_A = w2 * np.einsum("ai,ai->a", xa, xa, dtype=np.float64) / d + b2
  nb_B = w2 * np.einsum("bi,bi->b", xb, xb, dtype=np.float64) / d + b2
  return _ntk_from_k1(k1_AxB, na_A, nb_B, w2=w2, b2=b2, xp=np, arccos=np.arccos)


def ridge(lam, k_SxS):
  """The ridge r = |lambda| * mean of the diagonal of K_ss."""
  return jnp.abs(lam) * jnp.trace(k_SxS) / k_SxS.shape[0]


def krr_alpha(xs_SxI, lam):
  """(K_ss + r I)^{-1} X_s by Cholesky (jax, float32, differentiable)."""
  k_SxS = ntk(xs_SxI, xs_SxI)
  k_SxS = k_SxS + ridge(lam, k_SxS) * jnp.eye(k_SxS.shape[0], dtype=k_SxS.dtype)
  return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(k_SxS, lower=True), xs_SxI)


def krr_predict(x_BxI, xs_SxI, lam):
  """∞-AE scores of the rows x from the support rows xs: K(x, X_s) alpha."""
  return ntk(x_BxI, xs_SxI) @ krr_alpha(xs_SxI, lam)


# --- ∞-AE and EASE fitted on the host, for evaluation -------------------------------


def fit_inf_ae(xs_SxI, lam: float) -> dict:
  """∞-AE on support rows xs: {"support", "alpha"} (float32), solved in float64.

  float64 because the grid reaches lambda = 1e-5 of the mean diagonal: with thousands of
  support users K_ss is dominated by a near-constant block and a float32 Cholesky is not
  reliable there. Raises numpy.linalg.LinAlgError if K_ss + r I is not positive definite.
  """
  xs = np.asarray(xs_SxI, np.float32)
  k_SxS = ntk_f64(xs, xs)
  k_SxS[np.diag_indices_from(k_SxS)] += abs(lam) * np.trace(k_SxS) / k_SxS.shape[0]
  chol = scipy.linalg.cho_factor(k_SxS, lower=True, overwrite_a=True, check_finite=False)
  alpha = scipy.linalg.cho_solve(chol, xs.astype(np.float64), check_finite=False)
  return {"support": jnp.asarray(xs), "alpha": jnp.asarray(alpha, jnp.float32)}


def inf_ae_score(params, users_B, history_BxI):
  """Score function for jaxcond.models.evaluate: K(history, support) alpha."""
  del users_B
  return ntk(history_BxI, params["support"]) @ params["alpha"]


def fit_ease_dense(x_SxI, l2: float) -> jax.Array:
  """EASE's B = I - P diagMat(1 / diag P), P = (X^T X + l2 I)^{-1}, from dense, possibly
  soft rows, in float64; on 0/1 rows the B of jaxcond.models.ease.fit. Score with ease.score."""
  x = np.asarray(x_SxI, np.float64)
  gram = x.T @ x
  gram[np.diag_indices_from(gram)] += l2
  p = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
  b = p / -np.diag(p)[None, :]
  b[np.diag_indices_from(b)] = 0.0
  return jnp.asarray(b, jnp.float32)


# --- multi-Gumbel sampling ------------------------------------------------------------


def gumbel(key, shape):
  """Standard Gumbel noise, float32, from Threefry-2x32 (jax.random's hash) over a counter.

  Each Threefry call gives two 32-bit words here (as with jax_threefry_partitionable off),
  where jax.random.gumbel uses one: on CPU the noise is most of an outer step and this
  halves it. Uniforms keep 23 bits, centred in their bins: u in [2^-24, 1 - 2^-24].
  """
  n = math.prod(shape)
  counter = jax.lax.iota(jnp.uint32, n + n % 2)
  bits = threefry_2x32(jax.random.key_data(key), counter)[:n].reshape(shape)
  u = (jax.lax.convert_element_type(bits >> 9, jnp.float32) + 0.5) * (1.0 / (1 << 23))
  return -jnp.log(-jnp.log(u))


def _draw(logits_SxI, key, tau):
  return jax.nn.softmax((logits_SxI + gumbel(key, logits_SxI.shape)) / tau, axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def gumbel_softmax_sum(logits_SxI, key, n_samples: int, tau: float, remat: bool = False):
  """Sum over n_samples draws of softmax_items((logits + Gumbel noise) / tau).

  Differentiable in the logits (custom VJP). Without remat the backward pass reuses every
  draw (n_samples x n_s x I floats kept); with remat it draws them again from the same keys
  (n_s x I), which costs the noise a second time.
  """
  keys = jax.random.split(key, n_samples)
  total, _ = jax.lax.scan(lambda acc, k: (acc + _draw(logits_SxI, k, tau), None),
                          jnp.zeros_like(logits_SxI), keys)
  return total


def _gss_fwd(logits_SxI, key, n_samples, tau, remat):
  keys = jax.random.split(key, n_samples)
  if remat:
    return gumbel_softmax_sum(logits_SxI, key, n_samples, tau, remat), (logits_SxI, keys)

  def body(acc, k):
    p_SxI = _draw(logits_SxI, k, tau)
    return acc + p_SxI, p_SxI

  total, p_NxSxI = jax.lax.scan(body, jnp.zeros_like(logits_SxI), keys)
  return total, (None, p_NxSxI)


def _gss_bwd(n_samples, tau, remat, res, g_SxI):
  # d softmax(z)/dz^T g = p * (g - <g, p>) per row; z = (logits + noise) / tau.
  def body(acc, x):
    p_SxI = _draw(res[0], x, tau) if remat else x
    return acc + p_SxI * (g_SxI - jnp.sum(g_SxI * p_SxI, axis=-1, keepdims=True)), None

  grad, _ = jax.lax.scan(body, jnp.zeros_like(g_SxI), res[1])
  return grad / tau, None


gumbel_softmax_sum.defvjp(_gss_fwd, _gss_bwd)


def sample_users(logits_SxI, key, *, n_samples: int, tau: float, remat: bool = False):
  """Synthetic users: the multi-Gumbel sum clipped to [0, 1] (hard tanh; sums are >= 0)."""
  return jax.nn.hard_tanh(gumbel_softmax_sum(logits_SxI, key, n_samples, tau, remat))


# --- the outer problem ------------------------------------------------------------------


def outer_loss(logits_SxI, target_BxI, key, lam, *, n_samples: int, tau: float,
               budget_reg: float, mean_degree: float, remat: bool = False):
  """(loss, measurements): softmax cross-entropy of the real rows under the KRR fitted on
  sampled synthetic users, plus budget_reg * mean synthetic row sum / mean real degree."""
  xs_SxI = sample_users(logits_SxI, key, n_samples=n_samples, tau=tau, remat=remat)
  pred_BxI = krr_predict(target_BxI, xs_SxI, lam)
  ce = -jnp.mean(jnp.sum(jax.nn.log_softmax(pred_BxI, axis=-1) * target_BxI, axis=-1))
  budget = jnp.mean(jnp.sum(xs_SxI, axis=-1)) / mean_degree
  return ce + budget_reg * budget, {"ce": ce, "budget": budget}


def make_step(cfg: DistillConfig, mean_degree: float):
  """(init, step): init(logits) -> state; a jitted step(state, target_BxI, key, lam) ->
  (state, measurements). lam is traced: changing it does not recompile."""
  return _make_step(cfg.n_samples, cfg.tau, cfg.budget_reg, cfg.lr, cfg.remat,
                    float(mean_degree))


@functools.lru_cache(maxsize=8)
def _make_step(n_samples, tau, budget_reg, lr, remat, mean_degree):
  optimizer = optax.adam(lr)
  loss_fn = functools.partial(outer_loss, n_samples=n_samples, tau=tau, budget_reg=budget_reg,
                              mean_degree=mean_degree, remat=remat)
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def init(logits_SxI):
    logits_SxI = jnp.asarray(logits_SxI, jnp.float32)
    return {"logits": logits_SxI, "opt": optimizer.init(logits_SxI)}

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state, target_BxI, key, lam):
    (loss, meas), grad = grad_fn(state["logits"], target_BxI, key, lam)
    updates, opt_state = optimizer.update(grad, state["opt"], state["logits"])
    logits = optax.apply_updates(state["logits"], updates)
    return {"logits": logits, "opt": opt_state}, dict(meas, loss=loss,
                                                      grad_norm=optax.tree.norm(grad))

  return init, step


_sample_users = jax.jit(sample_users, static_argnames=("n_samples", "tau", "remat"))


# --- evaluation in Distill-CF's own definitions ----------------------------------------


@functools.partial(jax.jit, static_argnames=("score_fn", "ks"))
def _dcf_block(params, history_BxI, exclude_BxI, target_BxI, *, score_fn, ks):
  scores_BxI = score_fn(params, None, history_BxI)
  scores_BxI = jnp.where(exclude_BxI, -jnp.inf, scores_BxI)
  k_max = min(max(ks), scores_BxI.shape[1])
  _, top_BxK = jax.lax.top_k(scores_BxI, k_max)
  hits_BxK = jnp.take_along_axis(target_BxI, top_BxK, axis=1).astype(jnp.float32)
  n_target_B = target_BxI.sum(axis=1).astype(jnp.float32)
  discount_K = 1.0 / jnp.log2(jnp.arange(k_max, dtype=jnp.float32) + 2.0)
  idcg_K = jnp.cumsum(discount_K)
  out = {}
  for k in ks:
    at = min(k, k_max)
    n_ideal_B = jnp.clip(n_target_B, 1, at)
    out[f"hr@{k}"] = hits_BxK[:, :at].sum(axis=1) / n_ideal_B
    out[f"ndcg@{k}"] = ((hits_BxK[:, :at] * discount_K[:at]).sum(axis=1)
                        / idcg_K[n_ideal_B.astype(jnp.int32) - 1])
  return out


def dcf_metrics(score_fn: Callable, params, *, history: Interactions,
                exclude: Sequence[Interactions], target: Interactions,
                ks: Sequence[int] = DCF_KS, block_users: int = 512) -> dict:
  """Distill-CF's HR@k (hits / min(k, |test|)) and nDCG@k, means over users with targets
  (the authors divide by all users: the same where, as on ML-1M, every user has some).

  Their nDCG@k equals RecBole's; their HR@k is neither RecBole's hit nor its recall.
  """
  users_U = np.flatnonzero(target.user_degrees() > 0)
  hist, tgt = history.to_csr(), target.to_csr(np.bool_)
  excl = functools.reduce(lambda a, b: a + b, [x.to_csr() for x in exclude])
  sums = {}
  for start in range(0, users_U.size, block_users):
    users_b = users_U[start:start + block_users]
    pad = block_users - users_b.size
    rows = np.concatenate([users_b, np.full(pad, users_b[0])])
    out = _dcf_block(params, hist[rows].toarray(), excl[rows].toarray() > 0,
                     tgt[rows].toarray(), score_fn=score_fn, ks=tuple(ks))
    for name, v in out.items():
      sums[name] = sums.get(name, 0.0) + float(np.asarray(v, np.float64)[:users_b.size].sum())
  return {name: v / max(users_U.size, 1) for name, v in sums.items()}


def _parts(data: DatasetSplit, part: str) -> dict:
  """history / exclude / target of the validation or the test ranking."""
  if part == "valid":
    return {"history": data.train, "exclude": [data.train], "target": data.valid}
  seen = data.train.union(data.valid)
  return {"history": seen, "exclude": [seen], "target": data.test}


def grid_search(fit: Callable, score_fn: Callable, grid: Sequence[float], data: DatasetSplit,
                *, log: Callable[[str], None] = lambda s: None) -> tuple[float, dict, dict]:
  """(best value, its validation metrics, {value: validation metrics}) by VAL_METRIC.

  A value whose fit fails (not positive definite) is logged and skipped.
  """
  table, best = {}, None
  for value in grid:
    try:
      params = fit(value)
    except np.linalg.LinAlgError as e:
      log(f"  {value:g}: fit failed ({e}); skipped")
      continue
    table[value] = dcf_metrics(score_fn, params, **_parts(data, "valid"))
    if best is None or table[value][VAL_METRIC] > table[best][VAL_METRIC]:
      best = value
  if best is None:
    raise np.linalg.LinAlgError("every value of the grid failed to fit")
  return best, table[best], table


def evaluate_support(xs_SxI, data: DatasetSplit, *, models: Sequence[str] = ("inf_ae", "ease"),
                     grids: dict | None = None,
                     log: Callable[[str], None] = lambda s: None) -> dict:
  """Fits each model on the support rows (grid on validation HR@100) and ranks the test
  items of every real user: Distill-CF's metrics and RecBole's (jaxcond.models.evaluate).

  grids: {model: values} instead of LAMBDA_GRID (inf_ae) / EASE_L2_GRID (ease).
  """
  grids = {"inf_ae": LAMBDA_GRID, "ease": EASE_L2_GRID, **(grids or {})}
  makers = {"inf_ae": (functools.partial(fit_inf_ae, xs_SxI), inf_ae_score),
            "ease": (functools.partial(fit_ease_dense, xs_SxI), ease.score)}
  out = {}
  for name in models:
    (fit, score_fn), grid = makers[name], grids[name]
    t0 = time.time()
    best, valid, table = grid_search(fit, score_fn, grid, data, log=log)
    params = fit(best)
    test = _parts(data, "test")
    out[name] = {"hparam": best, "valid": valid,
                 "grid": {f"{k:g}": v[VAL_METRIC] for k, v in table.items()},
                 "test": dcf_metrics(score_fn, params, **test),
                 "test_recbole": evaluate_lib.evaluate(score_fn, params, **test, ks=(10, 20, 100)),
                 "seconds": time.time() - t0}
    log(f"  {name}: best {best:g}, test nDCG@10 {out[name]['test']['ndcg@10']:.4f}, "
        f"HR@10 {out[name]['test']['hr@10']:.4f} ({out[name]['seconds']:.0f}s)")
  return out


# --- the run ------------------------------------------------------------------------------


def dense_rows(x: Interactions, rows=None) -> np.ndarray:
  """[len(rows), I] float32 0/1 matrix of the given users' pairs (all users by default)."""
  csr = x.to_csr()
  return (csr if rows is None else csr[rows]).toarray()


def distill(data: DatasetSplit, cfg: DistillConfig = DistillConfig(), *,
            log: Callable[[str], None] = lambda s: None) -> dict:
  """Runs Distill-CF on data.train; keeps the synthetic users (one multi-Gumbel draw) of
  the best validation step, choosing lambda on validation at every check as the authors do
  (the next steps use it). Stops after `patience` steps without a better validation.

  Returns {"users": [n_s, I] float32 synthetic users, "best_step", "lambda", "history"
  (one row per validation), "steps_run", "seconds", "seconds_per_step"}.
  """
  train = data.train
  rng = np.random.default_rng(cfg.seed)
  start_rows = np.sort(rng.choice(train.n_users, cfg.n_users, replace=False))
  target_UxI = jnp.asarray(dense_rows(train))
  mean_degree = train.nnz / train.n_users
  init, step = make_step(cfg, mean_degree)
  state = init(dense_rows(train, start_rows))  # start: random real users' rows as logits
  key = jax.random.key(cfg.seed)

  def validate(xs, i, meas):
    t0 = time.time()
    lam, valid, table = grid_search(functools.partial(fit_inf_ae, xs), inf_ae_score,
                                    LAMBDA_GRID, data, log=log)
    row = {"step": i, "lambda": lam, "valid": valid,
           "grid": {f"{k:g}": v[VAL_METRIC] for k, v in table.items()},
           **{k: float(v) for k, v in meas.items()}, "validate_seconds": time.time() - t0}
    log(f"step {i:4d}  loss {row.get('loss', float('nan')):.4f}  lambda {lam:g}  valid "
        f"HR@100 {valid['hr@100']:.4f}  nDCG@10 {valid['ndcg@10']:.4f}")
    return row

  t_start = time.time()
  # Step 0 validates the start (real rows) only to pick lambda; as in the authors' code it
  # is no candidate: the result is always a draw of the learnt logits.
  history = [validate(np.asarray(state["logits"]), 0, {})]
  best = {"users": None, "step": 1, "lambda": history[0]["lambda"], "metric": -np.inf}
  lam, step_seconds, i = best["lambda"], 0.0, 0
  for i in range(1, cfg.steps + 1):
    key, k_step, k_batch = jax.random.split(key, 3)
    target = target_UxI
    if cfg.batch_users and cfg.batch_users < train.n_users:
      target = target_UxI[jax.random.choice(k_batch, train.n_users, (cfg.batch_users,),
                                            replace=False)]
    t0 = time.time()
    state, meas = step(state, target, k_step, jnp.float32(lam))
    meas = jax.device_get(meas)
    step_seconds += time.time() - t0
    if not np.isfinite(meas["loss"]):
      raise FloatingPointError(f"Distill-CF loss is {meas['loss']} at step {i}")
    if i % 10 == 0:
      log(f"step {i:4d}  loss {meas['loss']:.4f}  ce {meas['ce']:.4f}  budget "
          f"{meas['budget']:.4f}  {step_seconds / i:.2f}s a step")
    last_chance = i == cfg.steps and best["users"] is None  # never validated yet
    if i in cfg.validate_at or i % cfg.validate_every == 0 or last_chance:
      xs = np.asarray(_sample_users(state["logits"], k_step, n_samples=cfg.n_samples,
                                    tau=cfg.tau))
      row = validate(xs, i, meas)
      history.append(row)
      lam = row["lambda"]
      if row["valid"][VAL_METRIC] > best["metric"]:
        best = {"users": xs, "step": i, "lambda": lam, "metric": row["valid"][VAL_METRIC]}
      elif i - best["step"] >= cfg.patience:
        log(f"no better validation for {i - best['step']} steps: stopping")
        break
  return {"users": best["users"], "best_step": best["step"], "lambda": best["lambda"],
          "history": history, "steps_run": i, "seconds": time.time() - t_start,
          "seconds_per_step": step_seconds / max(i, 1), "start_rows": start_rows.tolist()}
