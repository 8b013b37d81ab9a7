"""Training a property model: grouped CV, Pareto-front selection, bootstrap ensemble, holdout validation.

CV groups: a synthetic row carries the real class it was generated for (`source_group`), so a fold never
scores a model on near-copies of its own training rows.

Three modules: `cv` (cross-validation and the Pareto choice), `uncertainty` (ensemble, sigma, the checks),
`fitting` (fit_property_model, the whole procedure).
"""

from .cv import *  # noqa: F403
from .fitting import *  # noqa: F403
from .uncertainty import *  # noqa: F403
