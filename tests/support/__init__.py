"""Test support: real services isolated per run, a TCP proxy for outages, process helpers."""
