"""``python -m expirytrack_dagster.sandbox``: serve the sandbox until Ctrl-C."""

from expirytrack_dagster.sandbox.cli import main

raise SystemExit(main())
