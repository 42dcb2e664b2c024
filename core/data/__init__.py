"""Data: datasets from installed packages, CSV ingest, enrichment, item/user texts, splits.

The package root re-exports the dataset shape and loaders every layer reads; the other modules
(``ingest``, ``enrich``, ``texts``, ``titles``, ``splits``) are imported by name.
"""

from recagents.data.datasets import (
    DATASETS,
    ITEM_COLUMNS,
    Dataset,
    build_dataset,
    interaction_matrix,
    load_dataset,
    ml100k_dir,
)

__all__ = [
    "DATASETS",
    "ITEM_COLUMNS",
    "Dataset",
    "build_dataset",
    "interaction_matrix",
    "load_dataset",
    "ml100k_dir",
]
