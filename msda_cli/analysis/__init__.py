"""Analyses of mixing methods and trained runs: the unified-analysis paper (Park et al., NeurIPS
2022, §3–4) and the loss landscape.

- `coeffs`: the regularization coefficients a_jk = E[(1 − M_j)(1 − M_k)] of a method's masks at
  fixed λ, as maps over pixel offsets (the paper's Figure 4), with exact / closed forms.
- `gradprod`: the partial gradient product max_v |∂_v f(x) ∂_{v+p} f(x)| of a trained run (eq. 12,
  Figure 5), by pixel offset p.
- `landscape`: the 1-D loss landscape of a trained run along filter-normalized random directions
  (Li et al., NeurIPS 2018).
"""
