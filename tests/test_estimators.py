"""The regressors are scikit-learn estimators in full: sklearn's own estimator checks, and the private
HistGradientBoosting attributes the gbm JSON export reads."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from alloy_hydra import regress
from alloy_hydra.model import predict_json

ESTIMATORS = [
    regress.RidgeModel(),
    regress.GBMModel(max_iter=20),
    regress.HingeRegressor(),
    regress.FixedModel(),
    regress.OperonRegressor(generations=5, population_size=30, n_threads=1, hinge_terms=5),
]


@pytest.mark.slow
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_gbm_export_reproduces_sklearn_predictions():
    # the export reads HistGradientBoostingRegressor._predictors / _baseline_prediction (no public API gives
    # the trees): an sklearn that changes them fails here, not silently in model.json
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    X[rng.random(300) < 0.1, 2] = np.nan  # missing values take the side the split stored
    y = 3 * X[:, 0] - np.nan_to_num(X[:, 2]) + rng.normal(0, 0.1, 300)
    est = regress.GBMModel(max_iter=30).fit(X, y)
    from sklearn.ensemble import HistGradientBoostingRegressor

    ref = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(X, y)
    assert np.allclose(predict_json(est.to_json(), X), ref.predict(X), atol=1e-9)
