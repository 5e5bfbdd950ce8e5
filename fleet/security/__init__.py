"""Response hardening shared by every page: the Content-Security-Policy and JSON log formatting."""
