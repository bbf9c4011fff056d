"""Command line: ``python -m aiostep_dialogs play TARGET`` and ``... graph TARGET``."""

from __future__ import annotations

import argparse
import sys

from aiostep_dialogs.loading import load_target


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m aiostep_dialogs")
    sub = parser.add_subparsers(dest="command", required=True)
    play = sub.add_parser("play", help="talk to a bot or wizard in the terminal, no token needed")
    play.add_argument("target", help="a file (examples/signup.py), a module, or module:Class")
    play.add_argument(
        "--storage",
        default=None,  # then $AIOSTEP_STORAGE, as the examples read it, else memory
        help="memory (default: $AIOSTEP_STORAGE or memory), file:PATH or a redis:// URL; "
        "/restart resumes on file/redis",
    )
    play.add_argument("--user-id", type=int, default=1001, help="the user you play as")
    play.add_argument("--no-start", action="store_true", help="don't send /start first")
    play.add_argument("--web", action="store_true", help="serve a chat page instead (aiohttp)")
    play.add_argument("--port", type=int, default=0, help="--web: the port (default: a free one)")
    graph = sub.add_parser("graph", help="print a wizard's flow as a Mermaid flowchart")
    graph.add_argument("target", help="a file, a module, or module:Class")
    args = parser.parse_args(argv)

    if args.command == "graph":
        target = load_target(args.target)
        if target.wizard is None:
            raise SystemExit(f"{args.target}: name the wizard as module:Class")
        try:
            source = target.wizard.to_mermaid()
        except ValueError as exc:  # a wizard without steps (a shared base class)
            raise SystemExit(f"{args.target}: {exc}; name a wizard that has steps") from exc
        sys.stdout.write(source)
        return 0

    if args.web:
        from aiostep_dialogs.playground import storage_spec
        from aiostep_dialogs.web_playground import run_web_playground

        return run_web_playground(
            args.target,
            storage=storage_spec(args.storage),
            port=args.port,
            user_id=args.user_id,
            send_start=not args.no_start,
        )

    from aiostep_dialogs.playground import run_playground

    return run_playground(
        args.target, storage=args.storage, user_id=args.user_id, send_start=not args.no_start
    )


if __name__ == "__main__":
    raise SystemExit(main())
