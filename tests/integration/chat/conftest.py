"""The executor fixtures (a pool of the test's own with the test catalogue) for the chat tests."""

from tests.integration.executor.conftest import env, executor, pool, producer, results, stub

__all__ = ["env", "executor", "pool", "producer", "results", "stub"]
