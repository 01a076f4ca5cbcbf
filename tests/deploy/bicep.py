"""Just enough Bicep reading for the deploy tests: object literals by name and their top-level keys."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def _block_after(text: str, start: int) -> str:
    """The `{ ... }` block that opens at or after `start` (braces inside strings are not expected here)."""
    opening = text.index("{", start)
    depth = 0
    for index in range(opening, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[opening + 1 : index]
    raise ValueError("unbalanced braces")


def top_level_entries(block: str) -> dict[str, str]:
    """`KEY: value` pairs at the top nesting level of an object literal's body."""
    entries: dict[str, str] = {}
    depth = 0
    for line in block.splitlines():
        stripped = line.strip()
        if depth == 0 and not stripped.startswith("//"):
            match = re.match(r"^'?([A-Za-z_][A-Za-z0-9_-]*)'?\s*:\s*(.*)$", stripped)
            if match:
                entries[match.group(1)] = match.group(2)
        code = re.sub(r"'(?:[^'\\]|\\.)*'", "''", line).split("//", 1)[0]
        depth += code.count("{") + code.count("(") + code.count("[")
        depth -= code.count("}") + code.count(")") + code.count("]")
    return entries


def variable(text: str, name: str) -> dict[str, str]:
    match = re.search(rf"^var {name}\s*=\s*\{{", text, re.MULTILINE)
    assert match, f"var {name} not found"
    return top_level_entries(_block_after(text, match.start()))


def module_block(text: str, symbol: str) -> str:
    match = re.search(rf"^module {symbol} '[^']+' = ", text, re.MULTILINE)
    assert match, f"module {symbol} not found"
    return _block_after(text, match.start())


def site_app_settings(service: str) -> dict[str, str]:
    """Every app setting of the site for `service` (web / worker): the shared ones, the site's own (the
    union() in main.bicep) and those the appservice module adds itself."""
    main = (INFRA / "main.bicep").read_text()
    block = module_block(main, service)
    settings: dict[str, str] = {}
    union = re.search(r"appSettings:\s*union\((\w+),\s*\{", block)
    assert union, f"module {service}: appSettings is not union(<shared>, {{...}})"
    settings.update(variable(main, union.group(1)))
    settings.update(top_level_entries(_block_after(block, union.end() - 1)))
    module = (INFRA / "modules" / "appservice.bicep").read_text()
    config = re.search(r"properties:\s*union\(appSettings,\s*\{", module)
    assert config, "appservice.bicep: settings resource is not union(appSettings, {...})"
    settings.update(top_level_entries(_block_after(module, config.end() - 1)))
    return settings


def module_params(service: str) -> dict[str, str]:
    return top_level_entries(_block_after(module_block((INFRA / "main.bicep").read_text(), service), 0))
