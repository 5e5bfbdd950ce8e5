"""Collector stub: replaced by its real implementation."""
