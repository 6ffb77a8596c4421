"""Helpers for developing this provider (tests, demo, bench); not part of the shipped package."""
