"""Alerts: an account's webhooks (webhooks.py), the events they are due
(scanner.py: budget thresholds, low balance), and their signed, retried
delivery (delivery.py, signing.py)."""
