"""The commands: python -m alloy_hydra.predict (new cards -> predictions), python -m alloy_hydra.compare
(runs side by side by config diff)."""
