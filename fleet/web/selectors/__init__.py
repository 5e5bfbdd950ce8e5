"""Reads for the dashboard pages and JSON endpoints; one module per page."""
