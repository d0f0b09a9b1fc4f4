"""The report kernel's client: an unbounded wait is a loop of bounded ones (costmodel.reporting.kernelclient)."""

import asyncio
from queue import Empty

import pytest

pytest.importorskip("jupyter_client")

from jupyter_client.channels import AsyncZMQSocketChannel  # noqa: E402

from costmodel.reporting import kernelclient  # noqa: E402


def test_an_unbounded_wait_polls_in_slices_until_the_message_is_there(monkeypatch):
    asked = []

    async def bounded(self, timeout=None):
        asked.append(timeout)
        if len(asked) < 3:
            raise Empty  # a lost wake-up: nothing seen within the slice
        return {"msg_id": "reply"}

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", bounded)
    channel = kernelclient.PollingChannel.__new__(kernelclient.PollingChannel)
    assert asyncio.run(channel.get_msg()) == {"msg_id": "reply"}
    assert asked == [kernelclient.SLICE_S] * 3


def test_a_bounded_wait_is_unchanged(monkeypatch):
    async def bounded(self, timeout=None):
        raise Empty

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", bounded)
    channel = kernelclient.PollingChannel.__new__(kernelclient.PollingChannel)
    with pytest.raises(Empty):
        asyncio.run(channel.get_msg(timeout=1.0))


def test_reports_run_on_the_polling_client():
    from nbclient import NotebookClient
    from nbformat.v4 import new_notebook

    client = NotebookClient(new_notebook(), kernel_manager_class=kernelclient.PollingKernelManager)
    manager = client.create_kernel_manager()
    assert manager.client_class == "costmodel.reporting.kernelclient.PollingKernelClient"
    assert manager.client().shell_channel_class is kernelclient.PollingChannel
