"""Fixtures shared by integration test folders: the whole platform as processes (one per session)."""

from tests.integration.platform_fixtures import e2e_stack, platform, results, robot

__all__ = ["e2e_stack", "platform", "results", "robot"]
