"""Whale adapters service."""
