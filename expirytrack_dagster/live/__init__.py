"""The live OI tracker: option-chain snapshots captured every minute of a session, and their views."""
