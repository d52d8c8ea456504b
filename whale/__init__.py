"""Whale's shared library: CloudEvents on Kafka, settings, logging, metrics and the `whale` CLI.

Every service imports this package; services never import each other.
"""

__version__ = "0.1.0"
