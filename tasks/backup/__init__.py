"""Non-blocking, verified backups: snapshot dump, manifest, catalog with retention, checked restore."""
