"""Whale event-center service."""
