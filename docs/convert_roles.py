"""Rewrite reST markup in the packages' docstrings as what mkdocstrings renders (google + markdown).

The API reference is rendered by mkdocstrings-python with ``docstring_style: google``, where
docstrings are markdown: a Sphinx role such as ``:class:`~aiostep.Listen``` shows up raw. This
script rewrites, in place and line by line:

- a role (``:class:``, ``:meth:``, ``:func:``, ``:attr:``, ``:mod:``, ``:data:``, ``:exc:``)
  into an autorefs cross-reference, ``[`Listen`][aiostep.Listen]``, when its target is an
  object the site documents; otherwise into a code span, ``heartbeat``;
- a reST literal block (``Example::`` + an indented block) into a google ``Example:`` section
  holding a fenced ``python`` block (mkdocstrings renders it as an "example" admonition); any
  other paragraph ending in ``::`` gets a fenced block after it.

A target resolves like a Python name in the docstring's scope (its class, then its module and
what that module imports), through griffe; it is documented if it is in the inventory
(``objects.inv``) of a build of this site. The link names the shortest documented path of the
object (``aiostep.Listen``, not ``aiostep.middleware.Listen``), so ``mkdocs build --strict``,
which fails on a cross-reference it cannot resolve, checks every link written.

Only docstrings and ``#:`` comments are touched; running it again changes nothing. After a
merge brings new docstrings, run from the repository root
``python docs/convert_roles.py`` (it builds the site once, quietly, to read its inventory) or
``python docs/convert_roles.py --site DIR`` to reuse a fresh build in DIR, then read the
``git diff``. A rewritten line longer than 100 characters passes the words that overflow to the
next line of its paragraph (list item, section item, ``#:`` comment), or breaks in two when
there is none; a line it cannot break is listed. ``--check`` rewrites nothing and exits with 1
if something is left to convert.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from griffe import AliasResolutionError, CyclicAliasError, NameResolutionError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("aiostep", "aiostep_dialogs")
LINE_LENGTH = 100

ROLE = re.compile(r":(?P<role>class|meth|func|attr|mod|data|exc|obj):`(?P<body>[^`]+)`")
ROLE_LINK = re.compile(r"\[`[^`]+`\]\[[\w.]+\]")
TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
#: A paragraph that introduces a reST literal block: ``Example::`` or ``... on exit::``.
LITERAL = re.compile(r"^(?P<indent>[ \t]*)(?P<text>\S.*?)::[ \t]*$")
EXAMPLE_HEADERS = {"Example", "Examples"}


# -- what the site documents ---------------------------------------------------------------------


def read_inventory(site: Path) -> list[str]:
    """The Python identifiers in ``site/objects.inv`` (Sphinx inventory, version 2)."""
    raw = (site / "objects.inv").read_bytes()
    lines = raw.split(b"\n", 4)
    if not lines[0].startswith(b"# Sphinx inventory version 2"):
        raise SystemExit(f"{site / 'objects.inv'}: not a Sphinx inventory version 2")
    names = []
    for line in zlib.decompress(lines[4]).decode("utf-8").splitlines():
        name, domain = line.split(" ", 2)[:2]
        if domain.startswith("py:"):
            names.append(name)
    return names


def built_inventory() -> list[str]:
    """Build the site in a temporary directory (not strict: it may still hold raw roles) and
    read its inventory."""
    with tempfile.TemporaryDirectory(prefix="aiostep-roles-") as site:
        env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
        subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--quiet", "--site-dir", site],
            cwd=ROOT,
            env=env,
            check=True,
        )
        return read_inventory(Path(site))


class Resolver:
    """Names in docstrings -> documented identifiers, through griffe."""

    def __init__(self, inventory: list[str]) -> None:
        import griffe

        # the packages as mkdocstrings sees them (``paths: [.]`` in mkdocs.yml)
        self.loader = griffe.GriffeLoader(search_paths=[str(ROOT)])
        self.modules = [self.loader.load(name) for name in PACKAGES]
        self.loader.resolve_aliases(implicit=True, external=False)
        # canonical path -> the identifiers the site renders it under
        candidates: dict[str, list[tuple[tuple[int, int, int, str], str]]] = {}
        for name in inventory:
            obj = self.lookup(name)
            if obj is None:
                continue
            try:
                canonical = obj.canonical_path
                inherited = bool(getattr(obj, "inherited", False))
            except (AliasResolutionError, CyclicAliasError):  # points outside the packages
                continue
            rank = (int(inherited), name.count("."), len(name), name)
            candidates.setdefault(canonical, []).append((rank, name))
        self.documented = {path: min(names)[1] for path, names in candidates.items()}

    def lookup(self, path: str) -> object | None:
        try:
            return self.loader.modules_collection[path]
        except (KeyError, ValueError, AliasResolutionError, CyclicAliasError):
            return None

    def canonical(self, path: str) -> str | None:
        obj = self.lookup(path)
        if obj is None:
            return None
        try:
            return str(obj.canonical_path)  # type: ignore[attr-defined]
        except (AliasResolutionError, CyclicAliasError):
            return None

    def resolve(self, scope: object, name: str) -> str | None:
        """The documented identifier ``name`` means in ``scope``, or ``None``."""
        paths = [name]
        first, dot, rest = name.partition(".")
        # a name the scope does not know may still be a full path (tried first)
        with contextlib.suppress(NameResolutionError):
            paths.append(scope.resolve(first) + dot + rest)  # type: ignore[attr-defined]
        for path in paths:
            canonical = self.canonical(path)
            if canonical is not None and canonical in self.documented:
                return self.documented[canonical]
        return None

    def scopes(self, file: Path) -> list[tuple[int, int, object]]:
        """(first line, last line, object) of every module, class and function in ``file``."""
        found: list[tuple[int, int, object]] = []

        def walk(obj: object) -> None:
            if getattr(obj, "is_alias", False):
                return
            if Path(str(getattr(obj, "filepath", ""))).resolve() == file.resolve():
                start = getattr(obj, "lineno", None) or 1
                end = getattr(obj, "endlineno", None) or 10**9
                found.append((start, end, obj))
            for member in getattr(obj, "members", {}).values():
                if not getattr(member, "is_alias", False) and (
                    member.is_module or member.is_class or member.is_function
                ):
                    walk(member)

        for module in self.modules:
            walk(module)
        return found

    def docstring_lines(self, file: Path) -> dict[int, tuple[int, int]]:
        """Line number -> (indentation of its docstring's opening line, the docstring's last
        line number), for every docstring in ``file`` (attributes' included)."""
        lines: dict[int, tuple[int, int]] = {}
        source = file.read_text(encoding="utf-8").split("\n")

        def walk(obj: object) -> None:
            if getattr(obj, "is_alias", False):
                return
            doc = getattr(obj, "docstring", None)
            if doc is not None and Path(str(obj.filepath)).resolve() == file.resolve():  # type: ignore[attr-defined]
                base = indent_of(source[doc.lineno - 1])
                last = doc.endlineno or doc.lineno
                for number in range(doc.lineno, last + 1):
                    lines[number] = (base, last)
            for member in getattr(obj, "members", {}).values():
                walk(member)

        for module in self.modules:
            walk(module)
        return lines


# -- rewriting -----------------------------------------------------------------------------------


@dataclass
class Change:
    file: Path
    line: int
    before: str
    after: str


def display(role: str, body: str) -> tuple[str, str]:
    """(text shown, target) of a role's body, with Sphinx's ``Title <target>`` and ``~``."""
    titled = TITLED.match(body)
    if titled:
        return titled.group("title"), titled.group("target").lstrip("~")
    target = body.lstrip("~").lstrip(".")
    text = target.rsplit(".", 1)[-1] if body.startswith("~") else target
    return text, target


def convert_roles(line: str, scope: object, resolver: Resolver) -> str:
    def replace(match: re.Match[str]) -> str:
        text, target = display(match.group("role"), match.group("body"))
        identifier = resolver.resolve(scope, target)
        if identifier is None:
            return f"`{text}`"
        return f"[`{text}`][{identifier}]"

    return ROLE.sub(replace, line)


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def convert_literal_blocks(lines: list[str], docstrings: dict[int, tuple[int, int]]) -> list[str]:
    """Rewrite reST literal blocks inside docstrings (``lines`` are 0-based, ``docstrings``
    holds 1-based line numbers) as fenced code."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        match = LITERAL.match(line)
        if index + 1 not in docstrings or match is None or '"""' in line:
            out.append(line)
            index += 1
            continue
        base = indent_of(line)
        start = index + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        end = start
        while end < len(lines) and (not lines[end].strip() or indent_of(lines[end]) > base):
            if '"""' in lines[end]:
                break
            end += 1
        while end > start and not lines[end - 1].strip():
            end -= 1
        if start >= len(lines) or end == start or indent_of(lines[start]) <= base:
            out.append(line)  # a "::" that introduces nothing: leave it alone
            index += 1
            continue
        block = lines[start:end]
        code_indent = min(indent_of(code) for code in block if code.strip())
        text = match.group("text")
        pad = " " * base
        if text in EXAMPLE_HEADERS:
            # a google section: its body is indented one level under the title
            inner = " " * (base + 4)
            out.append(f"{pad}Example:")
            out.append(f"{inner}```python")
            out.extend(inner + code[code_indent:] if code.strip() else "" for code in block)
            out.append(f"{inner}```")
        else:
            out.append(f"{pad}{text}:")
            out.append("")
            out.append(f"{pad}```python")
            out.extend(pad + code[code_indent:] if code.strip() else "" for code in block)
            out.append(f"{pad}```")
        index = end
    return out


ITEM = re.compile(r"^\s*\*{0,2}\w+(\s*\([^)]*\))?:\s+\S")
BULLET = re.compile(r"^\s*[-*+]\s+\S")


def split_points(text: str) -> list[int]:
    """Indexes of the spaces in ``text`` where a line may break: outside code spans and links."""
    points = []
    ticks = 0  # length of the backtick run that opened the code span we are in, or 0
    depth = 0  # inside [...] of a link
    index = 0
    while index < len(text):
        char = text[index]
        if char == "`":
            run = len(text[index:]) - len(text[index:].lstrip("`"))
            if ticks == 0:
                ticks = run
            elif run == ticks:
                ticks = 0
            index += run
            continue
        if ticks == 0:
            if char == "[":
                depth += 1
            elif char == "]" and depth:
                depth -= 1
            elif char == " " and depth == 0:
                points.append(index)
        index += 1
    return points


def continuation_prefix(line: str, following: str | None, base: int | None) -> str:
    """What a line that continues ``line`` starts with: the same paragraph, list item, google
    section item (indented one more level) or ``#:`` comment. ``following`` is the next line of
    the file, ``base`` the docstring's indentation (``None`` outside a docstring)."""
    indent = indent_of(line)
    if line.lstrip().startswith("#:"):
        return " " * indent + "#: "
    if following and following.strip() and indent_of(following) > indent:
        return " " * indent_of(following)  # the line has a continuation already: match it
    if base is not None and indent > base and ITEM.match(line):
        return " " * (indent + 4)
    if BULLET.match(line):
        return " " * (indent + 2)
    return " " * indent


def continues(prefix: str, line: str) -> bool:
    """Whether ``line`` goes on with the paragraph whose continuation lines start ``prefix``."""
    body = line[len(prefix) :] if line.startswith(prefix) else None
    if body is None or not body.strip() or body[0].isspace():
        return False
    if prefix.strip() == "#:":
        return True
    return not (
        body.startswith(('"""', "```", "- ", "* ", "#")) or ITEM.match(body) or LITERAL.match(body)
    )


def fit(lines: list[str], index: int, docstring: tuple[int, int] | None) -> None:
    """Make ``lines[index]`` at most LINE_LENGTH long: the words that overflow go to the start
    of the next line when it continues the same paragraph (which is then fitted in turn), else
    onto a new line (kept inside ``lines[index]`` so the line numbers of the others hold)."""
    line = lines[index]
    if len(line) <= LINE_LENGTH:
        return
    following = lines[index + 1] if index + 1 < len(lines) else None
    if docstring is not None and index + 1 >= docstring[1]:
        following = None  # the docstring ends on this line
    elif docstring is None and not (following or "").lstrip().startswith("#:"):
        following = None  # the ``#:`` comment ends on this line
    base = docstring[0] if docstring is not None else None
    prefix = continuation_prefix(line, following, base)
    points = [
        point
        for point in split_points(line)
        if point <= LINE_LENGTH
        and len(line[:point].strip()) > len(prefix.strip())
        and line[:point].strip() not in ('"""',)
    ]
    if not points:
        return  # listed by main() as a line to rewrap by hand
    head, tail = line[: points[-1]].rstrip(), line[points[-1] :].strip()
    if following is not None and "\n" not in following and continues(prefix, following):
        lines[index] = head
        lines[index + 1] = prefix + tail + " " + following[len(prefix) :]
        fit(lines, index + 1, docstring)
        return
    rest = [prefix + tail]
    fit(rest, 0, None if docstring is None else (docstring[0], 0))
    lines[index] = "\n".join([head, *rest])


def python_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def convert_file(file: Path, resolver: Resolver) -> tuple[str, list[Change]]:
    original = file.read_text(encoding="utf-8")
    lines = original.split("\n")
    docstrings = resolver.docstring_lines(file)
    scopes = resolver.scopes(file)
    changes: list[Change] = []
    for number in range(1, len(lines) + 1):
        line = lines[number - 1]
        if not ROLE.search(line):
            continue
        if number not in docstrings and not line.lstrip().startswith("#:"):
            continue  # a role in code or a string: not documentation
        inner = [s for s in scopes if s[0] <= number <= s[1]]
        if not inner:
            continue
        scope = max(inner, key=lambda s: s[0])[2]
        new = convert_roles(line, scope, resolver)
        if new != line:
            changes.append(Change(file, number, line, new))
            lines[number - 1] = new
    # then fit the rewritten lines in the line length, top to bottom (a line is fitted once;
    # one that breaks in two keeps both in its item of ``lines``, so line numbers hold)
    for change in changes:
        if "\n" not in lines[change.line - 1]:
            fit(lines, change.line - 1, docstrings.get(change.line))
    # a wrapped line is still one item of ``lines``: the line numbers of docstrings hold
    converted = convert_literal_blocks(lines, docstrings)
    if converted != lines:
        changes.append(Change(file, 0, "literal blocks", "fenced code"))
    return "\n".join(converted), changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, help="a built site to read objects.inv from")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if any")
    args = parser.parse_args(argv)

    resolver = Resolver(read_inventory(args.site) if args.site else built_inventory())
    todo = 0
    for file in python_files():
        text, changes = convert_file(file, resolver)
        if not changes:
            continue
        todo += len(changes)
        relative = file.relative_to(ROOT)
        for change in changes:
            where = f"{relative}:{change.line}" if change.line else f"{relative}"
            print(f"{where}: {change.after.strip()}")
        if not args.check:
            file.write_text(text, encoding="utf-8")
            for number, line in enumerate(text.split("\n"), 1):
                if len(line) > LINE_LENGTH and ROLE_LINK.search(line):
                    print(f"{relative}:{number}: longer than {LINE_LENGTH}; rewrap it")
    if args.check:
        return 1 if todo else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
