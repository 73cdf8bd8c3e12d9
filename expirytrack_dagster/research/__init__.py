"""The research layer: the option chain as of any minute, OI analytics, IV and greeks, resampling.

Pure building blocks (numpy/pandas, no database): ``black76`` (prices, solved IV, greeks),
``expiry_time`` (years to the expiry session's close), ``asof`` (the chain at a minute),
``forward`` (synthetic forward, ATM strike), ``oi`` (PCR, max pain, build-up, OI tracker),
``resample`` (session-aligned bars).
"""
