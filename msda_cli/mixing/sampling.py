"""Generator-aware random draws on the CPU: gamma, beta, Dirichlet.

`torch.distributions` cannot take a `torch.Generator`, so these samplers draw only from
`torch.randn`/`torch.rand` with the caller's generator (or the global CPU RNG when None),
which makes every mixer reproducible from one CPU generator.

Gamma(a) uses Marsaglia & Tsang's squeeze-rejection method (ACM TOMS 2000) with the
boost Gamma(a) = Gamma(a + 1) · U^(1/a) for a < 1; Gamma(1) is drawn as −log(1 − U)
(Exp(1)), which makes the default Beta(1, 1) and Dir(1, …, 1) draws several times cheaper.
Everything is computed in log space (float64), so Beta(0.05, 0.05) or Dir(0.01·1) never
produce 0/0: beta and Dirichlet are a sigmoid / softmax of log-gamma differences.
"""

from __future__ import annotations

import numpy as np
import torch

_TINY = 1e-300


def log_gamma(shape: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """log of independent Gamma(shape_i, 1) draws (float64, same shape as `shape`)."""
    shape = torch.as_tensor(shape, dtype=torch.float64)
    a = shape.flatten()
    if bool((a == 1.0).all()):  # Gamma(1) is Exp(1) = −log(1 − U): one uniform per draw, no rejection
        u = torch.rand(a.numel(), generator=generator, dtype=torch.float64)
        return torch.log(-torch.log1p(-u)).view(shape.shape)
    if not bool((a > 0).all()):  # also rejects NaN
        raise ValueError("gamma shape parameters must be > 0")
    return _log_gamma_vector(a, generator).view(shape.shape)


def _log_gamma_vector(a: torch.Tensor, generator, tries: int = 3) -> torch.Tensor:
    """Vectorized Marsaglia–Tsang: `tries` candidates per draw per round (acceptance is > 95 %).

    The normals and uniforms come from torch (the generator); the arithmetic on these few
    numbers runs in NumPy, whose per-call overhead is a fraction of torch's.
    """
    a = a.numpy()
    boost = a < 1
    a1 = np.where(boost, a + 1.0, a)
    d = a1 - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    out = np.empty_like(a)
    todo = np.arange(a.size)
    while todo.size:
        m = todo.size
        z = torch.randn(m, tries, generator=generator, dtype=torch.float64).numpy()
        u = torch.rand(m, tries, generator=generator, dtype=torch.float64).numpy()
        dd, cc = d[todo, None], c[todo, None]
        v = (1.0 + cc * z) ** 3
        logv = np.log(np.maximum(v, _TINY))
        ok = (v > 0) & (np.log(np.maximum(u, _TINY)) < 0.5 * z * z + dd - dd * v + dd * logv)
        got = ok.any(axis=1)
        first = ok.argmax(axis=1)  # first accepted candidate
        value = np.log(dd[:, 0]) + logv[np.arange(m), first]
        out[todo[got]] = value[got]
        todo = todo[~got]
    u = torch.rand(a.size, generator=generator, dtype=torch.float64).numpy()
    out = np.where(boost, out + np.log(np.maximum(u, _TINY)) / a, out)
    return torch.from_numpy(out)


def gamma(shape: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Independent Gamma(shape_i, 1) draws (float64)."""
    return torch.exp(log_gamma(shape, generator))


def beta(a: float, b: float, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`n` independent Beta(a, b) draws as a float64 tensor [n]."""
    shapes = torch.cat([torch.full((n,), float(a), dtype=torch.float64),
                        torch.full((n,), float(b), dtype=torch.float64)])
    lg = log_gamma(shapes, generator)
    return torch.sigmoid(lg[:n] - lg[n:])


def dirichlet(alpha, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`n` independent Dirichlet(alpha) draws as a float64 tensor [n, K] (rows sum to 1)."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64).flatten()
    lg = log_gamma(alpha.expand(n, -1).contiguous(), generator)
    return torch.softmax(lg, dim=1)


def uniform(low: float, high: float, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`n` draws from U[low, high) as float64 [n]."""
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def randint(high, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`n` integers uniform on {0, …, high_i − 1}; `high` may be an int or an int tensor [n] (≥ 1)."""
    if isinstance(high, int):
        return torch.randint(0, high, (n,), generator=generator)
    high = torch.as_tensor(high, dtype=torch.long)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.minimum((u * high).long(), high - 1).clamp_min(0)
