"""Operating the collection for months: schema migration, backup and restore, doctor, delete."""
