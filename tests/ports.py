"""Ports for the servers that tests start (see :mod:`whale.infra.ports`)."""

from whale.infra.ports import free_port

__all__ = ["free_port"]
