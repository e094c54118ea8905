"""Off-policy evaluation: the click rate another page would get, estimated from logged feedback.

Self-normalised inverse propensity scoring (SNIPS; Swaminathan & Joachims, "The Self-Normalized
Estimator for Counterfactual Learning", NeurIPS 2015). Each logged row i is one slot of one page
view: context x_i (the visit and the slot), the item a_i that was shown, its click c_i in {0, 1} and
mu(a_i | x_i), the logging policy's probability of showing a_i there (the ``propensity`` column).
For a target policy pi,

    w_i   = pi(a_i | x_i) / mu(a_i | x_i)
    V_hat = sum_i w_i c_i / sum_i w_i

estimates the target's expected clicks per slot shown. Rows of one user are not independent (one
taste, many views), so the 95% interval is a percentile bootstrap over users: users are resampled
with replacement, all their rows with them, and V_hat is recomputed on each resample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.core.constants import USER_COL
from engine.data.feedback import CLICK_COL, PROPENSITY_COL
from engine.evaluation.metrics import resample_indices

N_BOOT = 1000


def snips(logged: pd.DataFrame, target_prob: np.ndarray, *, n_boot: int = N_BOOT, alpha: float = 0.05,
          seed: int = 0) -> tuple[float, float, float]:
    """SNIPS estimate of a target policy's click rate, with a bootstrap interval over users.

    Args:
        logged: feedback rows (``engine.data.feedback``): ``user_id``, ``clicked`` and
            ``propensity`` mu(a_i | x_i); a log without ``propensity`` counts as logged by a
            fixed page (mu = 1).
        target_prob: (n,) pi(a_i | x_i), the target policy's probability of the logged item in
            the logged slot, row for row (0 where the target would never show it there; 1 where
            a fixed target page shows exactly that item there).
        n_boot: bootstrap resamples.
        alpha: 1 - confidence level (0.05: a 95% interval).
        seed: seed of the resampling (the result is deterministic for a given seed).

    Returns:
        (estimate, lo, hi): V_hat = sum w_i c_i / sum w_i with w_i = pi(a_i|x_i) / mu(a_i|x_i), and
        the alpha/2, 1 - alpha/2 percentiles of V_hat over user resamples (resamples where the
        target matches no logged row are left out).

    Raises:
        ValueError: lengths that differ, probabilities outside [0, 1] (target) or (0, 1]
            (propensity), missing columns, or a target that matches no logged row (sum w = 0).
    """
    for column in (USER_COL, CLICK_COL):
        if column not in logged.columns:
            raise ValueError(f"the log has no {column} column")
    target = np.asarray(target_prob, dtype=np.float64)
    if target.shape != (len(logged),):
        raise ValueError(f"target_prob must have one value per logged row ({len(logged)}), got shape {target.shape}")
    if not (np.isfinite(target).all() and (target >= 0).all() and (target <= 1).all()):
        raise ValueError("target_prob must hold probabilities in [0, 1]")
    mu = logged[PROPENSITY_COL].to_numpy(np.float64) if PROPENSITY_COL in logged.columns else np.ones(len(logged))
    if not (np.isfinite(mu).all() and (mu > 0).all() and (mu <= 1).all()):
        raise ValueError(f"{PROPENSITY_COL} must hold probabilities in (0, 1]")
    if n_boot < 1 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need n_boot >= 1 and 0 < alpha < 1, got n_boot={n_boot}, alpha={alpha}")
    weight = target / mu
    click = logged[CLICK_COL].to_numpy().astype(np.float64)
    if not weight.sum() > 0:
        raise ValueError("the target policy gives no logged row a positive probability: nothing to estimate from")
    user, _ = pd.factorize(logged[USER_COL])
    n_users = int(user.max()) + 1
    w_user = np.bincount(user, weights=weight, minlength=n_users)
    wc_user = np.bincount(user, weights=weight * click, minlength=n_users)
    estimate = float(wc_user.sum() / w_user.sum())
    boots = _bootstrap_ratios(wc_user, w_user, n_boot, seed)
    lo, hi = np.nanquantile(boots, [alpha / 2.0, 1.0 - alpha / 2.0])
    return estimate, float(lo), float(hi)


def _bootstrap_ratios(num: np.ndarray, den: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """sum(num[idx]) / sum(den[idx]) over ``n_boot`` resamples idx of the users; NaN where sum(den) = 0."""
    out = np.empty(n_boot, dtype=np.float64)
    for start, stop, idx in resample_indices(num.size, n_boot, seed):
        top, bottom = num[idx].sum(axis=1), den[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = np.where(bottom > 0, top / bottom, np.nan)
    return out
