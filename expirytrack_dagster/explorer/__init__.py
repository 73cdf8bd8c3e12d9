"""The explorer: read-only web pages (option chain, charts, OI analysis, coverage) over the research API."""
