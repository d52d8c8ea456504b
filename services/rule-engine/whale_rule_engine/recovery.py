"""Table recovery that seeks the stream partitions before any of their records are read.

faust-streaming 0.15's ``Recovery.on_recovery_completed`` resumes the stream partitions and then
awaits the seek to their committed offsets while the consumer's flow is still active (it was
resumed to read the changelogs). Records fetched in that window are handed to the agents' queues;
the seek then resets the read offsets and resuming flow control clears those queues, so the
records already read are neither handled nor re-read: the next records count them as a gap and
acknowledge them, and the group commits past triggers nobody decided (seen after ``kill -9`` as
alerts with neither a request nor a throttle notice).

:class:`SeekFirstRecovery` stops the consumer's flow before the base class resumes the partitions:
nothing is fetched until the seek is done and the base class resumes the flow itself. Installed
through the app's ``TableManager`` setting (:class:`TableManager`).
"""

from __future__ import annotations

from faust.tables import TableManager as FaustTableManager
from faust.tables.recovery import Recovery


class SeekFirstRecovery(Recovery):
    """Faust's recovery with the flow stopped until the stream partitions are seeked."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Stop the flow, then let the base class resume partitions, seek and resume the flow."""
        self.app.consumer.stop_flow()
        await super().on_recovery_completed(generation_id)


class TableManager(FaustTableManager):
    """Faust's table manager, recovering with :class:`SeekFirstRecovery`."""

    @property
    def recovery(self) -> Recovery:
        """The recovery service of this table manager, created on first use."""
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
