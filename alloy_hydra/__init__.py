"""alloy_hydra: clean aluminium-alloy data cards, augment them honestly, fit readable formulas, design recipes."""

__version__ = "0.1.0"
