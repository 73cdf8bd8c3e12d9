"""Exports of collected candles to the files other backtesting tools read (Parquet, CSV, XLSX, AmiBroker, MetaTrader 5)."""
