"""The to-do contract shared by the to-do stage (``whale run todo``) and the event center's ``/todos``
API: the event types of commands and announcements, and which item states count as open.

Items live on the compacted ``whale.todos`` topic (key = item id); the API writes command events
(:data:`REQUESTED`, :data:`CHANGE_REQUESTED`) to ``whale.events`` and the stage applies them.
"""

from __future__ import annotations

SOURCE = "whale/todo"
SAVED = "whale.todo.saved"
CREATED = "whale.todo.created"
UPDATED = "whale.todo.updated"
RESOLVED = "whale.todo.resolved"
REQUESTED = "whale.todo.requested"
CHANGE_REQUESTED = "whale.todo.change.requested"
OPS = ("claim", "unclaim", "resolve", "comment")
OPEN_STATES = ("open", "claimed")
