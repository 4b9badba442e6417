"""Generate examples/synthetic/poisson_counts.npz: honest synthetic count data for PoissonNLLLoss.

The generating process, stated so anyone can check the example learns what it should:
    x ~ N(0, I_5)                      2,000 samples, 5 features
    w ~ N(0, 0.5^2 I_5), b = 1.0       fixed by the seed
    y ~ Poisson(exp(x . w + b))        counts
A model that predicts log-rates (PoissonNLLLoss with log_input: true) should approach the loss
of the true rates.  Run from the repository root:  python examples/synthetic/make_poisson_counts.py
"""

from pathlib import Path

import numpy as np

rng = np.random.default_rng(0)
x = rng.standard_normal((2000, 5)).astype(np.float32)
w = (rng.standard_normal(5) * 0.5).astype(np.float32)
counts = rng.poisson(np.exp(x @ w + 1.0)).astype(np.float32)
out = Path(__file__).with_name("poisson_counts.npz")
np.savez(out, inputs=x, targets=counts)
print(f"wrote {out}: {len(x)} samples, mean count {counts.mean():.2f}, w = {w.round(3)}")
