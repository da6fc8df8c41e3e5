"""Numba kernels for the count-model fits of :mod:`rtm.selection` (glm, culling).

Every kernel takes contiguous arrays and scalars only and reads no module globals
(numeric status codes are passed back as plain integers and named in ``rtm.selection.glm``).

Status codes returned by the Newton kernels
-------------------------------------------
0  converged (Newton decrement below tolerance)
1  iteration limit reached
2  the (negative) Hessian is singular: the design is rank deficient
3  negative binomial only: the dispersion ran to its lower bound (Poisson boundary)
4  the line search stalled before the decrement met the tolerance
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ---------------------------------------------------------------------------
# small dense linear algebra (p is at most a few tens: hand-written Cholesky is
# faster than a LAPACK call and tells us about singularity without exceptions)
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def cholesky_solve(a, b):
    """Solve ``a x = b`` for symmetric positive definite ``a``; return (x, ok)."""
    p = a.shape[0]
    lower = np.zeros((p, p))
    x = np.zeros(p)
    for j in range(p):
        s = a[j, j]
        for k in range(j):
            s -= lower[j, k] * lower[j, k]
        # relative pivot test: a pivot that loses all but ~10 digits means a
        # (numerically) dependent column, e.g. an all-zero candidate
        if not (s > 1e-10 * max(abs(a[j, j]), 1e-300)) or not np.isfinite(s):
            return x, False
        lower[j, j] = math.sqrt(s)
        for i in range(j + 1, p):
            t = a[i, j]
            for k in range(j):
                t -= lower[i, k] * lower[j, k]
            lower[i, j] = t / lower[j, j]
    z = np.zeros(p)
    for i in range(p):
        t = b[i]
        for k in range(i):
            t -= lower[i, k] * z[k]
        z[i] = t / lower[i, i]
    for i in range(p - 1, -1, -1):
        t = z[i]
        for k in range(i + 1, p):
            t -= lower[k, i] * x[k]
        x[i] = t / lower[i, i]
    return x, True


# ---------------------------------------------------------------------------
# Poisson, collapsed by design row: ll = sum ysum*eta - wsum*exp(eta) (+ const)
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _poisson_ll(design, ysum, wsum, beta):
    m, p = design.shape
    ll = 0.0
    for i in range(m):
        eta = 0.0
        for j in range(p):
            eta += design[i, j] * beta[j]
        if eta > 700.0:
            return -np.inf
        ll += ysum[i] * eta - wsum[i] * math.exp(eta)
    return ll


@njit(cache=True, nogil=True)
def poisson_newton(design, ysum, wsum, beta0, max_iter, tol):
    """Maximize the collapsed Poisson log-likelihood by damped Newton.

    Returns ``(beta, loglik_without_constant, neg_hessian, n_iter, status)``.
    """
    m, p = design.shape
    beta = beta0.copy()
    ll = _poisson_ll(design, ysum, wsum, beta)
    neg_hess = np.zeros((p, p))
    status = 1
    n_iter = 0
    for it in range(max_iter):
        n_iter = it + 1
        grad = np.zeros(p)
        neg_hess[:, :] = 0.0
        for i in range(m):
            eta = 0.0
            for j in range(p):
                eta += design[i, j] * beta[j]
            wmu = wsum[i] * math.exp(eta)
            resid = ysum[i] - wmu
            for j in range(p):
                xij = design[i, j]
                if xij == 0.0:
                    continue
                grad[j] += xij * resid
                for k in range(j + 1):
                    neg_hess[j, k] += xij * design[i, k] * wmu
        for j in range(p):
            for k in range(j):
                neg_hess[k, j] = neg_hess[j, k]
        step, ok = cholesky_solve(neg_hess, grad)
        if not ok:
            return beta, ll, neg_hess, n_iter, 2
        decrement = 0.0
        for j in range(p):
            decrement += grad[j] * step[j]
        if decrement < tol * (1.0 + abs(ll)):
            status = 0
            break
        t = 1.0
        accepted = False
        while t > 1e-12:
            trial = beta + t * step
            ll_trial = _poisson_ll(design, ysum, wsum, trial)
            if ll_trial >= ll:
                beta = trial
                ll = ll_trial
                accepted = True
                break
            t *= 0.5
        if not accepted:
            status = 0 if decrement < 1e3 * tol * (1.0 + abs(ll)) else 4
            break
    return beta, ll, neg_hess, n_iter, status


# ---------------------------------------------------------------------------
# negative binomial: kind 0 = NB2 (size r = 1/alpha, a = log alpha),
#                    kind 1 = NBII (size r = mu/sigma, a = log sigma)
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def digamma(x):
    """Digamma for x > 0 (recurrence to x >= 10, then the asymptotic series)."""
    result = 0.0
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    tail = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 + f * (-1.0 / 132)))))
    return result + math.log(x) - 0.5 / x + tail


@njit(cache=True, nogil=True)
def trigamma(x):
    """Trigamma for x > 0 (recurrence to x >= 10, then the asymptotic series)."""
    result = 0.0
    while x < 10.0:
        result += 1.0 / (x * x)
        x += 1.0
    f = 1.0 / (x * x)
    tail = 1.0 / x + 0.5 * f + (f / x) * (1.0 / 6 + f * (-1.0 / 30 + f * (1.0 / 42 - f / 30)))
    return result + tail


@njit(cache=True, nogil=True)
def _gamma_ratio_terms(y, r):
    """Return lgamma(y+r)-lgamma(r), digamma(y+r)-digamma(r), trigamma(y+r)-trigamma(r).

    Small counts use the exact finite sums, which stay accurate when r is huge
    (near the Poisson boundary) where the differences of the functions cancel.
    """
    if y <= 64.0:
        lg = 0.0
        d1 = 0.0
        d2 = 0.0
        k = int(y)
        for j in range(k):
            rj = r + j
            lg += math.log(rj)
            d1 += 1.0 / rj
            d2 -= 1.0 / (rj * rj)
        return lg, d1, d2
    return (
        math.lgamma(y + r) - math.lgamma(r),
        digamma(y + r) - digamma(r),
        trigamma(y + r) - trigamma(r),
    )


@njit(cache=True, nogil=True)
def _nb_unit(kind, y, eta, a):
    """Log-pmf (without -log y!) of one count and its derivatives in (eta, a).

    Returns (l, l_eta, l_etaeta, l_a, l_aa, l_etaa).
    """
    mu = math.exp(eta)
    if kind == 0:
        r = math.exp(-a)
        lg, d1, d2 = _gamma_ratio_terms(y, r)
        rpm = r + mu
        log_rpm = math.log(rpm)
        ll = lg - r * math.log1p(mu / r) + y * (eta - log_rpm)
        l_eta = r * (y - mu) / rpm
        l_etaeta = -r * mu * (r + y) / (rpm * rpm)
        dl_dr = d1 - math.log1p(mu / r) + (mu - y) / rpm
        d2l_dr2 = d2 + 1.0 / r - 1.0 / rpm - (mu - y) / (rpm * rpm)
        d2l_dr_deta = mu * (y - mu) / (rpm * rpm)
        l_a = -r * dl_dr
        l_aa = r * r * d2l_dr2 + r * dl_dr
        l_etaa = -r * d2l_dr_deta
        return ll, l_eta, l_etaeta, l_a, l_aa, l_etaa
    sigma = math.exp(a)
    r = math.exp(eta - a)
    lg, d1, d2 = _gamma_ratio_terms(y, r)
    log1p_s = math.log1p(sigma)
    s_ratio = sigma / (1.0 + sigma)
    ll = lg - r * log1p_s + y * (a - log1p_s)
    core = r * (d1 - log1p_s)
    l_eta = core
    l_etaeta = core + r * r * d2
    l_a = -core - r * s_ratio + y / (1.0 + sigma)
    l_aa = core + r * r * d2 + 2.0 * r * s_ratio - (r + y) * s_ratio / (1.0 + sigma)
    l_etaa = -core - r * r * d2 - r * s_ratio
    return ll, l_eta, l_etaeta, l_a, l_aa, l_etaa


@njit(cache=True, nogil=True)
def _nb_ll(kind, design, y, w, theta):
    m, p = design.shape
    a = theta[p]
    ll = 0.0
    for i in range(m):
        eta = 0.0
        for j in range(p):
            eta += design[i, j] * theta[j]
        if eta > 700.0:
            return -np.inf
        unit = _nb_unit(kind, y[i], eta, a)
        ll += w[i] * unit[0]
    return ll


@njit(cache=True, nogil=True)
def nb_derivatives(kind, design, y, w, theta):
    """Log-likelihood (without -log y!), gradient and Hessian in (beta, a)."""
    m, p = design.shape
    q = p + 1
    a = theta[p]
    grad = np.zeros(q)
    hess = np.zeros((q, q))
    ll = 0.0
    for i in range(m):
        eta = 0.0
        for j in range(p):
            eta += design[i, j] * theta[j]
        ll_i, l_eta, l_etaeta, l_a, l_aa, l_etaa = _nb_unit(kind, y[i], eta, a)
        wi = w[i]
        ll += wi * ll_i
        for j in range(p):
            xij = design[i, j]
            if xij == 0.0:
                continue
            grad[j] += wi * xij * l_eta
            for k in range(j + 1):
                hess[j, k] += wi * xij * design[i, k] * l_etaeta
            hess[p, j] += wi * xij * l_etaa
        grad[p] += wi * l_a
        hess[p, p] += wi * l_aa
    for j in range(q):
        for k in range(j):
            hess[k, j] = hess[j, k]
    return ll, grad, hess


@njit(cache=True, nogil=True)
def nb_newton(kind, design, y, w, theta0, a_min, a_max, max_iter, tol):
    """Maximize the NB log-likelihood jointly in (beta, a = log dispersion).

    Damped Newton with a Levenberg-style ridge when the Hessian is not negative
    definite, and a backtracking line search on the log-likelihood. ``a`` is
    kept within ``[a_min, a_max]``; reaching ``a_min`` with the likelihood still
    rising towards it is reported as the Poisson boundary (status 3).

    Returns ``(theta, loglik_without_constant, hessian, n_iter, status)``.
    """
    m, p = design.shape
    q = p + 1
    theta = theta0.copy()
    ll, grad, hess = nb_derivatives(kind, design, y, w, theta)
    status = 1
    n_iter = 0
    for it in range(max_iter):
        n_iter = it + 1
        neg = -hess
        step, ok = cholesky_solve(neg, grad)
        if not ok:
            # not concave here (far from the optimum): ridge until it is
            scale = 0.0
            for j in range(q):
                scale = max(scale, abs(neg[j, j]))
            ridge = 1e-8 * max(scale, 1.0)
            while not ok and ridge < 1e12 * max(scale, 1.0):
                damped = neg.copy()
                for j in range(q):
                    damped[j, j] += ridge + abs(neg[j, j]) * 1e-6
                step, ok = cholesky_solve(damped, grad)
                ridge *= 10.0
            if not ok:
                return theta, ll, hess, n_iter, 2
        decrement = 0.0
        for j in range(q):
            decrement += grad[j] * step[j]
        if decrement < tol * (1.0 + abs(ll)) and decrement >= 0.0:
            status = 0
            break
        if theta[p] <= a_min and step[p] < 0.0 and grad[p] < 0.0:
            status = 3
            break
        t = 1.0
        accepted = False
        while t > 1e-12:
            trial = theta + t * step
            if trial[p] < a_min:
                trial[p] = a_min
            elif trial[p] > a_max:
                trial[p] = a_max
            ll_trial = _nb_ll(kind, design, y, w, trial)
            if ll_trial >= ll:
                theta = trial
                accepted = True
                break
            t *= 0.5
        if not accepted:
            status = 0 if 0.0 <= decrement < 1e3 * tol * (1.0 + abs(ll)) else 4
            break
        ll, grad, hess = nb_derivatives(kind, design, y, w, theta)
    if status != 2 and theta[p] <= a_min and grad[p] < 0.0:
        status = 3
    elif status in (1, 4) and theta[p] < a_min + 4.6:
        # within a factor 100 of the bound and still creeping towards it: the
        # derivatives lose their digits out here, and the fit is Poisson anyway
        status = 3
    return theta, ll, hess, n_iter, status


# ---------------------------------------------------------------------------
# nonnegative Poisson elastic net, glmnet style: IRLS outer loop, cyclic
# coordinate descent inner loop over binary sparse columns (CSC index lists)
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _enet_objective(y, w, eta, mu, coef, scale, lam, l1_ratio):
    """Penalized objective; sets ``mu = exp(eta)`` first (the IRLS step's one exp pass)."""
    for i in range(y.shape[0]):
        mu[i] = math.exp(eta[i])
    return _objective_at_mu(y, w, eta, mu, coef, scale, lam, l1_ratio)


@njit(cache=True, nogil=True)
def _objective_at_mu(y, w, eta, mu, coef, scale, lam, l1_ratio):
    """Penalized objective when ``mu == exp(eta)`` already holds (no exp)."""
    loss = 0.0
    for i in range(y.shape[0]):
        if w[i] != 0.0:
            loss += w[i] * (mu[i] - y[i] * eta[i])
    pen = 0.0
    for j in range(coef.shape[0]):
        b = coef[j]
        if b != 0.0:
            pen += l1_ratio * scale[j] * b + 0.5 * (1.0 - l1_ratio) * scale[j] * scale[j] * b * b
    return loss + lam * pen


@njit(cache=True, nogil=True)
def _full_gradient(codes, sign, y, w, mu, coef, scale, grad):
    """Gradient of the (normalized) log-likelihood at ``mu = exp(eta)``.

    ``codes[i, g]`` holds the nonzero bits of row ``i`` in columns ``8g .. 8g+7``
    (bit ``b`` for column ``8g + b``). One pass over the rows adds each row's
    residual to a 256-entry table per byte (by its code); a column's gradient is
    then the sum of the entries whose code has its bit. That reads the rows in
    order, with one table update per 8 columns, instead of gathering residuals
    column by column (2-3x faster at a million rows). Only the columns whose
    gradient the path reads are summed: the excluded (``scale == 0``) and active
    (``coef > 0``) ones are skipped (their ``grad`` entry is left as it was).
    """
    n, n_bytes = codes.shape
    p = sign.shape[0]
    tables = np.zeros((n_bytes, 256))
    for i in range(n):
        r_i = w[i] * (y[i] - mu[i])
        for g in range(n_bytes):
            tables[g, codes[i, g]] += r_i
    for j in range(p):
        if scale[j] <= 0.0 or coef[j] > 0.0:
            continue
        g = j >> 3
        bit = j & 7
        total = 0.0
        for code in range(256):
            if (code >> bit) & 1:
                total += tables[g, code]
        grad[j] = sign[j] * total


@njit(cache=True, nogil=True)
def enet_poisson_path(
    indptr, indices, codes, sign, scale, y, w, lambdas, l1_ratio, tol, max_irls, max_sweeps, fdev
):
    """Fit the nonnegative Poisson elastic net along a decreasing lambda path.

    Minimizes ``sum_i w_i (exp(eta_i) - y_i eta_i) + lam * sum_j (l1_ratio * s_j * b_j
    + (1 - l1_ratio) / 2 * s_j**2 * b_j**2)`` over ``b >= 0`` and a free intercept,
    where ``eta = b0 + X b``, ``w`` sums to one and ``s_j = scale[j]`` (the column's
    standard deviation when standardizing, else 1; 0 excludes the column).
    Column ``j`` of ``X`` equals ``sign[j]`` on rows ``indices[indptr[j]:indptr[j+1]]``
    and 0 elsewhere.
    ``codes`` holds the same matrix by row, as bits (see :func:`_full_gradient`).

    Each IRLS step minimizes the quadratic approximation by cyclic coordinate
    descent in which the intercept is re-optimized together with every
    coordinate (equivalently: coordinate descent on columns centred with the
    IRLS weights, which is what makes glmnet's centring fast). The intercept's
    shifts are kept as one scalar offset, so a coordinate step touches only the
    column's nonzero rows. Work is restricted to the sequential strong set
    (Tibshirani et al. 2012, one-sided for b >= 0); after IRLS converges the KKT
    conditions are checked on every column and violators join the working set.

    Convergence follows glmnet: a coordinate-descent loop (and the IRLS loop) stops
    when the largest change of the objective caused by one coefficient update is
    below ``tol`` times the null deviance (glmnet's ``thresh``, default 1e-7).

    With ``fdev > 0`` the path stops early as glmnet's does (``fdev`` = 1e-5,
    ``devmax`` = 0.999, at least 5 penalties): once the fraction of deviance
    explained grows by less than ``fdev`` of itself from one penalty to the next,
    or exceeds 0.999. Penalties not reached are left as NaN.

    Returns ``(intercepts, coefs, n_sweeps, converged, n_done)`` with one row per lambda.
    """
    n = y.shape[0]
    p = sign.shape[0]
    n_lam = lambdas.shape[0]
    intercepts = np.zeros(n_lam)
    coefs = np.zeros((n_lam, p))
    passes = np.zeros(n_lam, dtype=np.int64)
    converged = np.zeros(n_lam, dtype=np.bool_)

    ysum = 0.0
    wsum = 0.0
    for i in range(n):
        ysum += w[i] * y[i]
        wsum += w[i]
    b0 = math.log(ysum / wsum)
    coef = np.zeros(p)
    r = np.empty(n)
    v = np.empty(n)
    eta = np.full(n, b0)
    # mu = exp(eta) is kept current by every objective evaluation: one exp pass per
    # IRLS step serves the objective, the next working response, the KKT check and
    # the deviance
    mu = np.full(n, math.exp(b0))
    col_v = np.zeros(p)
    active = np.zeros(p, dtype=np.bool_)
    working = np.zeros(p, dtype=np.bool_)
    grad = np.zeros(p)
    coef_prev = np.zeros(p)
    eta_prev = np.empty(n)
    # tolerances are relative to the null deviance, as glmnet's thresh
    ybar = ysum / wsum
    dev0 = 0.0
    for i in range(n):
        if y[i] > 0.0:
            dev0 += w[i] * (y[i] * math.log(y[i] / ybar) - (y[i] - ybar))
        else:
            dev0 += w[i] * ybar
    dev0 = 2.0 * dev0 / wsum
    null_scale = dev0 if dev0 > 0.0 else ybar
    rsq_prev = 0.0
    n_done = n_lam
    intercepts[:] = np.nan
    coefs[:, :] = np.nan
    _full_gradient(codes, sign, y, w, mu, coef, scale, grad)
    lam_prev = lambdas[0]

    for li in range(n_lam):
        lam = lambdas[li]
        for j in range(p):
            working[j] = scale[j] > 0.0 and (
                coef[j] > 0.0 or grad[j] > l1_ratio * scale[j] * (2.0 * lam - lam_prev)
            )
        lam_prev = lam
        obj = _objective_at_mu(y, w, eta, mu, coef, scale, lam, l1_ratio)
        ok_lambda = False
        for _kkt in range(p + 1):
            ok_irls = False
            for _irls in range(max_irls):
                b0_prev = b0
                coef_prev[:] = coef
                eta_prev[:] = eta
                h0 = 0.0
                r0 = 0.0
                for i in range(n):
                    mu_i = mu[i]
                    v[i] = w[i] * mu_i
                    r[i] = w[i] * (y[i] - mu_i)
                    h0 += v[i]
                    r0 += r[i]
                for j in range(p):
                    col_v[j] = -1.0  # sum of v over the column's rows, computed lazily
                # intercept first; afterwards every step keeps the total residual at 0
                offset = r0 / h0
                max_change_irls = h0 * offset * offset
                full_sweep = True
                for _sweep in range(max_sweeps):
                    passes[li] += 1
                    max_change = 0.0
                    any_new = False
                    for j in range(p):
                        if not working[j]:
                            continue
                        if not full_sweep and not active[j]:
                            continue
                        start = indptr[j]
                        stop = indptr[j + 1]
                        g = 0.0
                        if col_v[j] < 0.0:
                            # first visit in this IRLS step: sum v and r in one pass
                            s = 0.0
                            for t in range(start, stop):
                                i = indices[t]
                                s += v[i]
                                g += r[i]
                            col_v[j] = s
                        else:
                            for t in range(start, stop):
                                g += r[indices[t]]
                        sv = col_v[j]
                        # true residual = r - v * offset; with the intercept
                        # optimal the centred gradient equals the uncentred one
                        g = sign[j] * (g - offset * sv)
                        old = coef[j]
                        thresh = lam * l1_ratio * scale[j]
                        if old == 0.0 and g <= thresh:
                            continue
                        hc = sv - sv * sv / h0
                        if hc <= 0.0:
                            continue
                        num = hc * old + g - thresh
                        new = 0.0
                        if num > 0.0:
                            new = num / (hc + lam * (1.0 - l1_ratio) * scale[j] * scale[j])
                        delta = new - old
                        if delta != 0.0:
                            coef[j] = new
                            if not active[j]:
                                active[j] = True
                                any_new = True
                            step = sign[j] * delta
                            for t in range(start, stop):
                                i = indices[t]
                                eta[i] += step
                                r[i] -= v[i] * step
                            offset -= step * sv / h0
                            max_change = max(max_change, hc * delta * delta)
                    max_change_irls = max(max_change_irls, max_change)
                    if max_change < tol * null_scale:
                        if full_sweep and not any_new:
                            break
                        full_sweep = True  # confirm on the whole working set
                    else:
                        full_sweep = False
                b0 += offset
                for i in range(n):
                    eta[i] += offset
                # guard the quadratic step: backtrack if the true objective rose
                new_obj = _enet_objective(y, w, eta, mu, coef, scale, lam, l1_ratio)
                shrink = 0
                # (the tolerance stays above the rounding noise of a sum over many rows)
                while new_obj > obj + 1e-10 * abs(obj) and shrink < 30:
                    b0 = 0.5 * (b0 + b0_prev)
                    for j in range(p):
                        coef[j] = 0.5 * (coef[j] + coef_prev[j])
                    for i in range(n):
                        eta[i] = 0.5 * (eta[i] + eta_prev[i])
                    new_obj = _enet_objective(y, w, eta, mu, coef, scale, lam, l1_ratio)
                    shrink += 1
                obj = new_obj
                for j in range(p):
                    if coef[j] == 0.0:
                        active[j] = False
                if max_change_irls < tol * null_scale:
                    ok_irls = True
                    break
            # KKT check on the columns left out of the working set
            _full_gradient(codes, sign, y, w, mu, coef, scale, grad)
            violated = False
            for j in range(p):
                if scale[j] > 0.0 and not working[j] and grad[j] > lam * l1_ratio * scale[j]:
                    working[j] = True
                    violated = True
            if not violated:
                ok_lambda = ok_irls
                break
        intercepts[li] = b0
        coefs[li, :] = coef
        converged[li] = ok_lambda
        if fdev > 0.0 and dev0 > 0.0:
            dev = 0.0
            for i in range(n):
                mu_i = mu[i]
                if y[i] > 0.0:
                    dev += w[i] * (y[i] * math.log(y[i] / mu_i) - (y[i] - mu_i))
                else:
                    dev += w[i] * mu_i
            rsq = 1.0 - 2.0 * dev / wsum / dev0
            if li >= 4 and (rsq - rsq_prev < fdev * rsq or rsq > 0.999):
                n_done = li + 1
                break
            rsq_prev = rsq
    return intercepts, coefs, passes, converged, n_done


@njit(cache=True, nogil=True)
def held_out_deviance(X, rows, used, ylogy, yw, w, b0, b):
    """Summed Poisson deviance of the given rows at every penalty of a path.

    For row ``i`` of ``rows`` and penalty ``l``: ``eta = b0[l] + sum_c X[i, c] b[l, c]``
    over the columns ``used`` (those with a nonzero coefficient somewhere on the path),
    and the row adds ``2 (ylogy_i - yw_i eta - yw_i + w_i exp(eta))``: the deviance of
    the cells it stands for (``w`` their weight, ``yw`` their weighted count, ``ylogy``
    their weighted ``y log y``). Only a row's nonzero columns are visited, and nothing of
    size rows x penalties is allocated.
    """
    n_lam = b0.shape[0]
    total = np.zeros(n_lam)
    k = used.shape[0]
    cols = np.empty(k, dtype=np.int64)
    vals = np.empty(k)
    coef_t = np.ascontiguousarray(b.T)  # column c's path is contiguous
    for t in range(rows.shape[0]):
        i = rows[t]
        m = 0
        for q in range(k):
            c = used[q]
            if X[i, c] != 0:
                cols[m] = c
                vals[m] = X[i, c]
                m += 1
        for li in range(n_lam):
            eta = b0[li]
            for q in range(m):
                eta += vals[q] * coef_t[cols[q], li]
            total[li] += 2.0 * (ylogy[i] - yw[i] * eta - yw[i] + w[i] * math.exp(eta))
    return total
