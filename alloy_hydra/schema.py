"""The schema of a data card: the names every stage shares (properties, the group and row columns, the
recrystallisation types a card may name). Nothing here depends on a dataset; the dataset config maps its own
columns onto these names."""

from __future__ import annotations

TARGETS = ("YS", "UTS", "FractureEL", "UniformEL", "YPE")  # the properties a card may report
RECRYST_TYPES = ("batch", "flash", "direct", "other", "none")
GROUP_COL = "group"  # the alloy a card belongs to: CV folds and the holdout never split a group
ROW_COL = "source_row"  # spreadsheet row number of each record in the user's file (header = row 1)
COMPOSITION_GROUP_PREFIX = "comp:"  # groups formed by composition (no name on the card) start with this
