"""ExpiryTrack: a Dagster project that collects expired Indian F&O contracts from Upstox into DuckDB."""
