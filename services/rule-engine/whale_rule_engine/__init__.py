"""Whale rule-engine service."""
