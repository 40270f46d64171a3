"""Writing what a run leaves: the output table (its declared columns, CSV/JSONL/Parquet), the
report, the dataset export, the summary and status lines, and where files are published."""
