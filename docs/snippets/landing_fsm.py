"""The same signup written with aiogram's FSM by hand (what the wizard saves you)."""

from __future__ import annotations

from aiogram import Dispatcher, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message


class Form(StatesGroup):
    name = State()
    age = State()
    confirm = State()


PROMPTS = {
    Form.name.state: "What is your name?",
    Form.age.state: "How old are you?",
}
PREVIOUS = {Form.age.state: Form.name, Form.confirm.state: Form.age}


async def ask_confirm(message: Message, state: FSMContext) -> None:
    data = await state.get_data()
    buttons = [
        InlineKeyboardButton(text="Yes", callback_data="signup:yes"),
        InlineKeyboardButton(text="No", callback_data="signup:no"),
    ]
    await message.answer(
        f"{data['name']}, {data['age']}. Correct?",
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[buttons]),
    )


async def start(message: Message, state: FSMContext) -> None:
    await state.set_state(Form.name)
    await message.answer(PROMPTS[Form.name.state])


async def cancel(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer("Cancelled.")


async def back(message: Message, state: FSMContext) -> None:
    current = await state.get_state()
    previous = PREVIOUS.get(current or "")
    if previous is None:
        await message.answer("This is the first step; there is nothing to go back to.")
        await message.answer(PROMPTS[Form.name.state])
        return
    await state.set_state(previous)
    await message.answer(PROMPTS[previous.state])


async def got_name(message: Message, state: FSMContext) -> None:
    name = (message.text or "").strip()
    if not 2 <= len(name) <= 50:
        await message.answer("Please send 2 to 50 characters.\n\nWhat is your name?")
        return
    await state.update_data(name=name)
    await state.set_state(Form.age)
    await message.answer(PROMPTS[Form.age.state])


async def got_age(message: Message, state: FSMContext) -> None:
    text = (message.text or "").strip()
    if not text.isdigit() or not 1 <= int(text) <= 120:
        await message.answer("Please send a number from 1 to 120.\n\nHow old are you?")
        return
    await state.update_data(age=int(text))
    await state.set_state(Form.confirm)
    await ask_confirm(message, state)


async def confirmed(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    if not isinstance(query.message, Message):
        return
    await query.message.edit_reply_markup(reply_markup=None)
    if query.data == "signup:no":
        await state.set_state(Form.name)
        await query.message.answer(PROMPTS[Form.name.state])
        return
    data = await state.get_data()
    await state.clear()
    await query.message.answer(f"Welcome, {data['name']}!")


async def stale(query: CallbackQuery) -> None:
    await query.answer("This button is no longer active.")


async def wrong_input(message: Message, state: FSMContext) -> None:
    current = await state.get_state()
    if current == Form.confirm.state:
        await message.answer("Please press one of the buttons.")
    else:
        await message.answer("Please send a text message.")


def build() -> Dispatcher:
    router = Router()
    router.message.register(start, Command("signup"))
    router.message.register(cancel, Command("cancel"), StateFilter(Form))
    router.message.register(back, Command("back"), StateFilter(Form))
    router.message.register(got_name, Form.name, F.text, ~F.text.startswith("/"))
    router.message.register(got_age, Form.age, F.text, ~F.text.startswith("/"))
    router.message.register(wrong_input, StateFilter(Form))
    router.callback_query.register(confirmed, Form.confirm, F.data.startswith("signup:"))
    router.callback_query.register(stale, F.data.startswith("signup:"))
    dp = Dispatcher()  # aiogram's MemoryStorage: lost on restart
    dp.include_router(router)
    return dp
