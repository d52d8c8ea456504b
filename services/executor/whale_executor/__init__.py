"""Whale executor service."""
