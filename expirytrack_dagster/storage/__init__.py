"""DuckDB storage: the schema, the one place that opens the database, and the IO manager."""
