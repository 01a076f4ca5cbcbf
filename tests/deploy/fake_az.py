#!/usr/bin/env python3
"""A stand-in for the Azure CLI, for the hook tests: the `az` subcommands the hooks use, against a JSON state
file (FAKE_AZ_STATE) that records every call. Answers and errors are shaped like the real CLI's."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def options(args: list[str], name: str) -> list[str]:
    start = args.index(name) + 1
    values = []
    for value in args[start:]:
        if value.startswith("--"):
            break
        values.append(value)
    return values


def main() -> int:
    state_path = Path(os.environ["FAKE_AZ_STATE"])
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    state.setdefault("calls", []).append(sys.argv[1:])
    state.setdefault("secrets", {})
    state.setdefault("subscriptions", {})
    args = sys.argv[1:]
    code, out, err = 0, "", ""
    if args[:3] == ["keyvault", "secret", "show"]:
        name = option(args, "--name")
        if name in state["secrets"]:
            value = state["secrets"][name]
            out = json.dumps(value if option(args, "--query") == "value" else f"https://kv/secrets/{name}/1")
        else:
            code, err = 1, f"ERROR: (SecretNotFound) A secret with (name/id) {name} was not found in this key vault."
    elif args[:3] == ["keyvault", "secret", "set"]:
        state["secrets"][option(args, "--name")] = Path(option(args, "--file")).read_text(encoding="utf-8")
        out = json.dumps("https://kv/secrets/x/2")
    elif args[:3] == ["eventgrid", "system-topic", "show"]:
        out = json.dumps({"name": option(args, "--name"), "topicType": "Microsoft.Communication.CommunicationServices"})
    elif args[:3] == ["eventgrid", "system-topic", "event-subscription"]:
        verb, name = args[3], option(args, "--name")
        if verb == "show":
            if name in state["subscriptions"]:
                out = json.dumps(name)
            else:
                code, err = 3, f"ERROR: (ResourceNotFound) The resource {name} was not found."
        else:
            state["subscriptions"][name] = {
                "verb": verb,
                "endpoint": option(args, "--endpoint"),
                "included": options(args, "--included-event-types"),
            }
            out = json.dumps("Succeeded")
    else:
        code, err = 2, f"fake az: unsupported {' '.join(args[:4])}"
    state_path.write_text(json.dumps(state))
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
