"""A kernel client whose waits cannot miss a message (reports that never finished).

nbclient waits for a cell's reply with ``get_msg(timeout=None)`` on jupyter_client's
asyncio channels. That wait is woken by the ZeroMQ socket's file descriptor, which is
edge-triggered: when the reply arrives while the client is busy with the widget messages
a cell sends, the wake-up can be lost and the wait never ends, although the kernel is idle
and the reply is queued (seen here: the explore notebook's widget cell, about one run in
four; jupyter/nbclient#312 reports the same with ipywidgets). :class:`PollingChannel` waits
in slices of :data:`SLICE_S` instead: each slice ends with a level check of the socket, so
a queued message is read at the latest one slice later. A wait with a timeout is unchanged.
"""

from __future__ import annotations

from queue import Empty

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

#: Longest a queued message can wait to be read [s].
SLICE_S = 0.25


class PollingChannel(AsyncZMQSocketChannel):
    """A channel whose unbounded wait is a loop of bounded ones."""

    async def get_msg(self, timeout: float | None = None):  # type: ignore[override]
        if timeout is not None:
            return await super().get_msg(timeout)
        while True:
            try:
                return await super().get_msg(SLICE_S)
            except Empty:
                continue


class PollingKernelClient(AsyncKernelClient):
    """The asyncio kernel client with :class:`PollingChannel` for its shell and IOPub channels."""

    shell_channel_class = Type(PollingChannel)  # type: ignore[assignment]
    iopub_channel_class = Type(PollingChannel)  # type: ignore[assignment]


class PollingKernelManager(AsyncKernelManager):
    """The kernel manager papermill is given: its clients are :class:`PollingKernelClient`."""

    client_class = DottedObjectName("costmodel.reporting.kernelclient.PollingKernelClient")
    # AsyncKernelManager sets its factory apart from client_class: both must name the client.
    client_factory = Type(PollingKernelClient)
