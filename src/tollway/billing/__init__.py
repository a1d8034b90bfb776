"""Billing decisions and cost arithmetic: pure functions, no I/O."""
