"""The declared settings described for people: the CLI listing and the generated table of docs/configuration.md.

Values are shown in the spelling their variable takes, so a line can be copied into an
environment file. Secrets never appear: a set secret shows as ``***``, and so does the
password inside any URL (``postgresql://user:***@host/db``).
"""
import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.settings import GROUPS, PROJECT_ROOT, RateLimitTier, Settings, format_model_refs, format_tiers

MASK = "***"
TABLE_BEGIN = "<!-- settings-table:begin -->"
TABLE_END = "<!-- settings-table:end -->"
# Stands for the checkout's path in defaults, so the docs read the same from any checkout.
ROOT_PLACEHOLDER = "<project>"
URL_PASSWORD = re.compile(r"(://[^/@:\s,;]*:)[^@\s,;]*?(@)")
QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s,;]*")

TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    tuple[str, ...]: "list",
    tuple[float, ...]: "list of numbers",
    dict[str, RateLimitTier]: "tiers",
    dict[str, str]: "key=value list",
}


@dataclass(frozen=True)
class SettingDescription:
    name: str
    env: str
    group: str
    type: str
    default: str
    value: str
    help: str
    secret: bool
    is_default: bool


def mask_url_passwords(text: str) -> str:
    """``user:password@`` and ``?password=`` (which redis-py also reads) of every URL in ``text``."""
    return QUERY_PASSWORD.sub(rf"\1{MASK}", URL_PASSWORD.sub(rf"\1{MASK}\2", text))


def format_value(value: Any) -> str:
    """``value`` as its environment variable would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, tuple):
        return ",".join(format_value(item) for item in value)
    if isinstance(value, Mapping):
        tiers = all(isinstance(item, RateLimitTier) for item in value.values())
        return format_tiers(value) if tiers else format_model_refs(value)
    return str(value)


def shown_value(value: Any, *, secret: bool) -> str:
    """What may be displayed of ``value``: secrets masked when set, URL passwords always."""
    text = format_value(value)
    if secret and text:
        return MASK
    return mask_url_passwords(text)


def shown_default(value: Any, *, secret: bool) -> str:
    return shown_value(value, secret=secret).replace(str(PROJECT_ROOT), ROOT_PLACEHOLDER)


def describe(settings: Settings | None = None) -> list[SettingDescription]:
    """Every declared setting in declaration order (grouped), with ``settings``' current values."""
    settings = settings if settings is not None else Settings()
    defaults = Settings()
    descriptions = []
    for spec in dataclasses.fields(Settings):
        secret = spec.metadata["secret"]
        default, value = getattr(defaults, spec.name), getattr(settings, spec.name)
        descriptions.append(SettingDescription(
            name=spec.name,
            env=spec.metadata["env"],
            group=spec.metadata["group"],
            type=TYPE_NAMES[spec.type],
            default=shown_default(default, secret=secret),
            value=shown_value(value, secret=secret),
            help=spec.metadata["help"],
            secret=secret,
            is_default=value == default,
        ))
    return descriptions


def by_group(descriptions: Iterable[SettingDescription]) -> dict[str, list[SettingDescription]]:
    grouped: dict[str, list[SettingDescription]] = {group: [] for group in GROUPS}
    for description in descriptions:
        grouped[description.group].append(description)
    return {group: items for group, items in grouped.items() if items}


def render_text(descriptions: Iterable[SettingDescription]) -> str:
    """The CLI listing: per group, each variable's current value, its default when it differs, and help."""
    lines = []
    for group, items in by_group(descriptions).items():
        lines.append(f"# {GROUPS[group]} [{group}]")
        for item in items:
            note = "" if item.is_default else f"  (default: {item.default or 'empty'})"
            lines.append(f"{item.env}={item.value}{note}")
            lines.append(f"    {item.type}: {item.help}")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", r"\|")


def render_markdown(descriptions: Iterable[SettingDescription] | None = None) -> str:
    """The settings table of docs/configuration.md, one row per group heading its settings; defaults only, never the
    environment's values, so it reads the same wherever it is generated."""
    descriptions = describe(Settings()) if descriptions is None else descriptions
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for group, items in by_group(descriptions).items():
        lines.append(f"| **{GROUPS[group]}** | | |")
        for item in items:
            default = f"`{_cell(item.default)}`" if item.default else "empty"
            lines.append(f"| `{item.env}` | {default} | {_cell(item.help)} |")
    return "\n".join(lines) + "\n"


def replace_table(text: str, table: str) -> str:
    """``text`` with what lies between the settings-table markers replaced by ``table``."""
    begin, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if begin < 0 or end < begin:
        raise ValueError(f"no {TABLE_BEGIN} ... {TABLE_END} block")
    return f"{text[:begin + len(TABLE_BEGIN)]}\n{table}\n{text[end:]}"


def write_table(path: Path) -> bool:
    """Regenerate the marked block of the file at ``path``; True when it changed."""
    text = path.read_text()
    updated = replace_table(text, render_markdown())
    if updated != text:
        path.write_text(updated)
    return updated != text
