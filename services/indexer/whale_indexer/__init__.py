"""Whale indexer: ``whale run indexer`` stores every bus event in Elasticsearch."""
