"""Action kinds behind one interface (:class:`~whale_executor.actions.base.Action`)."""

from whale_executor.actions.base import Action, ActionContext, describe
from whale_executor.actions.python import PythonAction, action

__all__ = ["Action", "ActionContext", "PythonAction", "action", "describe"]
