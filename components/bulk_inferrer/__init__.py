"""BulkInferrer: scores whole files with a sluiceway SavedModel (``sluiceway predict``), streaming."""
