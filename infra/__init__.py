"""Deployment and local-run helpers for moodtune (not shipped to Lambda)."""
