"""The Upstox expired-instruments client: typed results, rate limits shared across processes."""
