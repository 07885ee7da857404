"""IPA's ``product`` accuracy, exactly: the product of the stages' accuracies as a linear
objective term of the MIP, next to the cost, batch and energy terms.

Two exact formulations (``a[s][v]``: accuracy of variant ``v`` of stage ``s`` as a fraction;
``y[s][v] = sum of x_k over the candidates k of (s, v)``, the variant indicator):

* ``combinations`` (IPA's own, ``optimizer/optimizer.py``, ``accuracy_method ==
  "multiply"``): one binary ``z_c`` per combination ``c`` of one variant per stage, with
  objective coefficient ``alpha * prod_s a[s][c_s]``; ``sum_c z_c = 1`` and, per stage and
  variant, ``sum_{c: c_s = v} z_c = y[s][v]``. Exact because the linking rows force
  ``z`` to be the indicator of the chosen combination. Size: ``prod_s |V_s|`` binaries.
* ``chain``: the running product ``p_s = p_{s-1} * a[s][v_s]`` as continuous
  ``w[s][v] >= 0`` with ``p_s = sum_v w[s][v]``, ``w[s][v] <= a[s][v] (p_{s-1} - L_{s-1}
  (1 - y[s][v]))`` and ``w[s][v] <= a[s][v] P_{s-1} y[s][v]`` (McCormick's upper envelope
  of ``a p y``; ``L_{s-1}``, ``P_{s-1}``: the products of the earlier stages' smallest and
  largest accuracies, bounds of ``p_{s-1}``), ``p_0 = sum_v a[0][v] y[0][v]``.
  Only ``p_last`` enters the objective (coefficient ``alpha >= 0``) and nothing else uses
  ``w``, so at an optimum every bound that can bind does: ``w[s][v] = a[s][v] p_{s-1}``
  for the chosen ``v`` and 0 otherwise, hence ``p_last`` is exactly the product. Any
  feasible point has ``p_last <=`` the product, so the optimum is the true optimum. Size:
  ``sum_s |V_s|`` continuous columns and twice as many rows: it scales to 9 x 9.

``auto`` uses ``combinations`` up to `COMBINATION_LIMIT` combinations, ``chain`` above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from envs.config.errors import ConfigError
from ipa_baseline.candidates import Candidate
from ipa_baseline.lp_builder import INF, LpBuilder

ProductForm = Literal["auto", "combinations", "chain"]
PRODUCT_FORMS: tuple[str, ...] = ("auto", "combinations", "chain")
COMBINATION_LIMIT = 256  # assumed: above this many combinations the chain is smaller


def add_product_objective(lp: LpBuilder, cands: Sequence[Candidate], x_cols: Sequence[int],
                          n_stages: int, alpha: float, form: ProductForm = "auto") -> str:
    """Add ``alpha * prod_s accuracy(s)`` to ``lp``'s objective, exactly.

    Args:
        lp: The model under construction; ``x_cols[k]`` is candidate ``k``'s binary.
        cands: The candidates (``accuracy`` holds the accuracy as a fraction).
        x_cols: Column index of each candidate's indicator.
        n_stages: Number of stages (every stage has at least one candidate).
        alpha: Weight of the product (>= 0).
        form: ``auto``, ``combinations`` or ``chain`` (see the module docstring).

    Returns:
        The formulation used (``linear`` for one stage, where the product is linear).

    Raises:
        ConfigError: An unknown ``form``.
    """
    if form not in PRODUCT_FORMS:
        raise ConfigError(f"product_form must be one of {PRODUCT_FORMS}, got {form!r}")
    groups: list[dict[int, list[int]]] = [{} for _ in range(n_stages)]
    acc: list[dict[int, float]] = [{} for _ in range(n_stages)]
    for k, c in enumerate(cands):
        groups[c.stage].setdefault(c.variant, []).append(x_cols[k])
        acc[c.stage][c.variant] = c.accuracy
    if n_stages == 1:
        for k, c in enumerate(cands):
            lp.cost[x_cols[k]] += alpha * c.accuracy
        return "linear"
    n_combos = math.prod(len(g) for g in groups)
    if form == "combinations" or (form == "auto" and n_combos <= COMBINATION_LIMIT):
        _combinations(lp, groups, acc, alpha)
        return "combinations"
    _chain(lp, groups, acc, alpha)
    return "chain"


def _combinations(lp: LpBuilder, groups: list[dict[int, list[int]]],
                  acc: list[dict[int, float]], alpha: float) -> None:
    import itertools

    links: list[dict[int, list[int]]] = [{v: [] for v in g} for g in groups]
    z_cols = []
    for combo in itertools.product(*(sorted(g) for g in groups)):
        value = math.prod(acc[s][v] for s, v in enumerate(combo))
        z = lp.col(alpha * value, 0.0, 1.0, True)
        z_cols.append(z)
        for s, v in enumerate(combo):
            links[s][v].append(z)
    lp.row([(z, 1.0) for z in z_cols], 1.0, 1.0)
    for s, g in enumerate(groups):
        for v, xs in g.items():
            lp.row([(z, 1.0) for z in links[s][v]] + [(x, -1.0) for x in xs], 0.0, 0.0)


def _chain(lp: LpBuilder, groups: list[dict[int, list[int]]],
           acc: list[dict[int, float]], alpha: float) -> None:
    previous = [(x, acc[0][v]) for v, xs in groups[0].items() for x in xs]
    high, low = max(acc[0].values()), min(acc[0].values())
    last = len(groups) - 1
    for s in range(1, len(groups)):
        current = []
        for v, xs in groups[s].items():
            a = acc[s][v]
            w = lp.col(alpha if s == last else 0.0, 0.0, a * high, False)
            # w <= a (p - low (1 - y)): McCormick's upper envelope of a * p * y for p in
            # [low, high]; equal to a * p when y = 1 and tighter than it when y < 1.
            lp.row([(w, 1.0)] + [(col, -a * val) for col, val in previous]
                   + [(x, -a * low) for x in xs], -INF, -a * low)
            lp.row([(w, 1.0)] + [(x, -a * high) for x in xs], -INF, 0.0)
            current.append((w, 1.0))
        previous = current
        high *= max(acc[s].values())
        low *= min(acc[s].values())
