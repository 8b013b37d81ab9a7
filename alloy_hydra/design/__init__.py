"""Inverse design: search compositions + process recipes whose predicted properties hit targets.

Every candidate is a recipe-table row (alloy_hydra.cards): decoded into a data card by the same derivation as
cleaning, then featurised by each model's own featuriser — one feature path for training data and designs.

Decision vector (all real-coded, so pymoo's vectorised operators apply; discrete variables are category or
count indices kept integral by a rounding repair):
- element additions within the chem window ∩ the observed range (Al = balance, Σ = 100 by construction);
- categoricals (e.g. casting) and, per schedule, the step count or recryst type;
- process numbers and schedule steps as u ∈ [0, 1], mapped into the range observed in BASE_MASTER for the
  candidate's stratum (e.g. ingot thickness of DC vs CC, temperature/time of a flash vs a batch anneal), so a
  recipe never combines a flash-anneal type with a batch-anneal schedule.

Three modules, pymoo's Problem–Algorithm–Result seams: `space` (what may vary), `search` (the Evaluator, the
pymoo Problem, the algorithms), `ranking` (the result: chance of a hit, the table, the cards).
"""

from .ranking import *  # noqa: F403
from .search import *  # noqa: F403
from .search import _Search  # noqa: F401
from .space import *  # noqa: F403
