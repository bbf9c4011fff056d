"""aiostep: conversations for aiogram 3.

``wait_for`` a user's next update inside a handler, ``register_next_step`` to route it to a
function, keep state in memory, a file or Redis, and let conversations survive restarts.
"""

from __future__ import annotations

from aiostep.context import UpdateContext as UpdateContext
from aiostep.context import current_update as current_update
from aiostep.conversation import Steps
from aiostep.exceptions import (
    AiostepError,
    NotThisConversation,
    RecordTooLargeError,
    StepNotRegisteredError,
    StorageCorruptedError,
    WaitCancelled,
    WaitSuperseded,
)
from aiostep.filters import IsState
from aiostep.keys import ANYONE, ConversationKey
from aiostep.meta_store import MetaStore as MetaStore
from aiostep.meta_store import change_root_store
from aiostep.middleware import Listen, setup
from aiostep.middleware import SeenRecords as SeenRecords
from aiostep.scheduler import Scheduler
from aiostep.step_registry import RegisteredStep, StepRegistry, persisted_step, registry
from aiostep.step_registry import step as step
from aiostep.steps import clear, register_next_step, unregister_steps
from aiostep.storage import (
    BaseStorage,
    FileStateStorage,
    MemoryStateStorage,
    StateContext,
)
from aiostep.waiters import wait_for

__version__ = "0.4.0"

# What a user calls. Importable too, but not part of the API: `MetaStore` (the in-process
# store's protocol), `SeenRecords` (the routing's record cache), `UpdateContext` and
# `current_update` (the update being routed), and `step` (the old name of `persisted_step`).

__all__ = [
    "ANYONE",
    "AiostepError",
    "BaseStorage",
    "ConversationKey",
    "FileStateStorage",
    "IsState",
    "Listen",
    "MemoryStateStorage",
    "NotThisConversation",
    "RecordTooLargeError",
    "RedisStateStorage",
    "RegisteredStep",
    "Scheduler",
    "StateContext",
    "StepNotRegisteredError",
    "StepRegistry",
    "Steps",
    "StorageCorruptedError",
    "WaitCancelled",
    "WaitSuperseded",
    "change_root_store",
    "clear",
    "persisted_step",
    "register_next_step",
    "registry",
    "setup",
    "unregister_steps",
    "wait_for",
]


def __getattr__(name: str) -> object:
    if name == "RedisStateStorage":  # optional extra
        from aiostep.storage.redis import RedisStateStorage

        return RedisStateStorage
    raise AttributeError(f"module 'aiostep' has no attribute {name!r}")
