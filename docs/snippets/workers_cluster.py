"""A Redis Cluster: the storage connects through one node and finds the others."""

from __future__ import annotations

from aiogram import Dispatcher

from aiostep.storage import RedisStateStorage
from aiostep.testing import BotSimulator
from examples.signup import build


# --8<-- [start:cluster]
def worker(node_url: str) -> Dispatcher:
    # any node of the cluster, e.g. "redis://10.0.0.5:7000"; or pass a
    # redis.asyncio.cluster.RedisCluster client you built yourself
    return build(RedisStateStorage(node_url, cluster=True))


# --8<-- [end:cluster]


async def main(node_url: str) -> str:
    async with BotSimulator(lambda: worker(node_url)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("Alice")
        await sim.restart()  # a new process: the conversation is in the cluster
        await talk.send("30")
        await talk.click("Yes")
        return talk.messages[-1].text or ""
