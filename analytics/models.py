"""Rollup tables over the request log (filled by analytics.services)."""
