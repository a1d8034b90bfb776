"""The printed tables of a run's results (``render_tables``), one module per
phase's tables; cells says how numbers print."""

from report.render import render_tables

__all__ = ["render_tables"]
