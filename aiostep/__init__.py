"""aiostep: conversations for aiogram 3.

``wait_for`` a user's next update inside a handler, ``register_next_step`` to route it to a
function, keep state in memory, a file or Redis, and let conversations survive restarts.
"""

from __future__ import annotations

from aiostep.context import UpdateContext, current_update
from aiostep.exceptions import (
    AiostepError,
    RecordTooLargeError,
    StepNotRegisteredError,
    StorageCorruptedError,
    WaitCancelled,
    WaitSuperseded,
)
from aiostep.filters import IsState
from aiostep.keys import ANYONE, ConversationKey
from aiostep.middleware import Listen, SeenRecords, setup
from aiostep.pending import MetaStore, change_root_store
from aiostep.scheduler import Scheduler
from aiostep.step_registry import RegisteredStep, StepRegistry, registry, step
from aiostep.steps import clear, register_next_step, unregister_steps
from aiostep.storage import (
    BaseStorage,
    FileStateStorage,
    MemoryStateStorage,
    StateContext,
)
from aiostep.waiters import wait_for

__version__ = "0.4.0"

__all__ = [
    "ANYONE",
    "AiostepError",
    "BaseStorage",
    "ConversationKey",
    "FileStateStorage",
    "IsState",
    "Listen",
    "MemoryStateStorage",
    "MetaStore",
    "RecordTooLargeError",
    "RedisStateStorage",
    "RegisteredStep",
    "Scheduler",
    "SeenRecords",
    "StateContext",
    "StepNotRegisteredError",
    "StepRegistry",
    "StorageCorruptedError",
    "UpdateContext",
    "WaitCancelled",
    "WaitSuperseded",
    "change_root_store",
    "clear",
    "current_update",
    "register_next_step",
    "registry",
    "setup",
    "step",
    "unregister_steps",
    "wait_for",
]


def __getattr__(name: str) -> object:
    if name == "RedisStateStorage":  # optional extra
        from aiostep.storage.redis import RedisStateStorage

        return RedisStateStorage
    raise AttributeError(f"module 'aiostep' has no attribute {name!r}")
