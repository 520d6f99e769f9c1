"""The docs say only what the code does: every `socialmae-rt SUBCOMMAND --flag` written in the README
and docs/ exists in that subcommand's real parser, and every link inside the README resolves."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from socialmae_rt.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "launch" / "README.md"]
COMMAND = re.compile(r"socialmae-rt ([a-z][a-z0-9-]*)((?: [a-z][a-z0-9-]*)?)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def command_lines(text: str) -> list[str]:
    """Lines that run socialmae-rt, with shell continuations (trailing backslash) joined."""
    joined, lines = "", []
    for line in text.splitlines():
        joined += line.rstrip("\\")
        if line.endswith("\\"):
            continue
        lines.append(joined)
        joined = ""
    return [line for line in lines if "socialmae-rt " in line]


def flags_by_command() -> list[tuple[str, str, str, str]]:
    """(doc, subcommand path, flag, line) for every flag written after a socialmae-rt subcommand."""
    found = []
    for doc in DOCS:
        for line in command_lines(doc.read_text()):
            for segment in re.split(r"`|\||;|&&| # ", line):  # one command per code span / table cell
                match = COMMAND.search(segment)
                if not match:
                    continue
                rest = segment[match.end():]
                for flag in FLAG.findall(rest):
                    found.append((doc.name, (match.group(1) + match.group(2)).strip(), flag, segment.strip()))
    return found


def test_every_flag_in_the_docs_exists_in_the_parser_it_is_written_for():
    commands = subparsers(build_parser())
    problems = []
    for doc, path, flag, line in flags_by_command():
        name, _, inner = path.partition(" ")
        parser = commands.get(name)
        if parser is None:
            if name.startswith(("node", "laugh")):  # socialmae-rt-node etc. are separate scripts
                continue
            problems.append(f"{doc}: `socialmae-rt {name}` is not a command ({line})")
            continue
        nested = subparsers(parser)
        if inner and inner in nested:
            parser = nested[inner]
        if flag not in parser._option_string_actions:
            problems.append(f"{doc}: `socialmae-rt {path}` has no {flag} ({line})")
    assert not problems, "\n".join(problems)
    assert len(flags_by_command()) > 50  # the check reads the docs at all


def github_anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # GitHub drops punctuation but hyphens and underscores
    return text.replace(" ", "-")


@pytest.mark.parametrize("doc", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_every_link_in_a_doc_resolves(doc):
    text = doc.read_text()
    anchors = {github_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if path and not (doc.parent / path).exists():
            problems.append(f"{doc.name}: {target}: no such file")
        elif anchor and not path and anchor not in anchors:
            problems.append(f"{doc.name}: #{anchor}: no such section")
    assert not problems, "\n".join(problems)


# Flags of other tools the docs show (pip, docker, Triton, ROS, torchrun, pytest, git ...).
FOREIGN_FLAGS = {"--extra-index-url", "--gpus", "--rm", "--model-repository", "--ros-args", "--params-file",
                 "--exclude-editable", "--quiet", "--upgrade", "--index-url", "--no-deps", "--dry-run",
                 "--nproc_per_node", "--build-base", "--install-base", "--symlink-install", "--packages-select",
                 "--force-reinstall", "--user", "--help", "--version", "--verbose"}


def defined_flags() -> set[str]:
    """Every option any of our parsers defines: the socialmae-rt tree, plus the scripts and modules
    with parsers of their own (read from their add_argument calls)."""
    flags: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        flags.update(parser._option_string_actions)
        for child in subparsers(parser).values():
            walk(child)

    walk(build_parser())
    for folder in ("socialmae_rt", "engines", "nodes", "training", "scripts"):
        for source in (ROOT / folder).rglob("*.py"):
            flags.update(re.findall(r"add_argument\(\s*\"(--[a-z][a-z0-9-]*)\"", source.read_text()))
    return flags


def test_every_flag_the_docs_name_anywhere_is_defined_somewhere():
    """Flags in prose (`--keep-audio-only` once had no parser at all) must exist in one of ours."""
    known = defined_flags() | FOREIGN_FLAGS
    problems = []
    for doc in DOCS:
        prose = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)  # code blocks: the first test's job
        for span in re.findall(r"`([^`]+)`", prose):
            problems += [f"{doc.name}: {flag} (in `{span}`)" for flag in FLAG.findall(span) if flag not in known]
    assert not problems, "\n".join(sorted(set(problems)))
