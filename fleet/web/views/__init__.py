"""Dashboard pages and JSON endpoints: thin adapters from requests to selectors and services."""
