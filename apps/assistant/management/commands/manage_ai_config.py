"""`manage.py manage_ai_config list|create|update|test`: AI provider configurations from the shell."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.assistant.errors import AIPermanentError, AITransientError
from apps.assistant.models import AIConfiguration, AIProvider
from apps.assistant.selectors import ai_configuration_list
from apps.assistant.services import ai_configuration_create, ai_configuration_test, ai_configuration_update
from apps.core.crypto import secret_mask
from apps.core.exceptions import ApplicationError

# option dest → model field
FIELD_OPTIONS = {
    "provider": "provider",
    "base_url": "base_url",
    "api_version": "api_version",
    "deployment": "deployment",
    "model": "model",
    "embedding_model": "embedding_model",
    "transcription_model": "transcription_model",
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "system_prompt": "system_prompt",
    "no_knowledge_reply": "no_knowledge_reply",
}


class Command(BaseCommand):
    help = "List, create, update and test AI provider configurations (API keys are stored encrypted)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="Show the configurations (keys masked)")
        for action in ("create", "update"):
            p = sub.add_parser(action, help=f"{action.capitalize()} a configuration")
            p.add_argument("--name", required=True)
            p.add_argument("--provider", choices=AIProvider.values)
            p.add_argument("--base-url", dest="base_url")
            p.add_argument("--api-version", dest="api_version")
            p.add_argument("--deployment")
            p.add_argument("--model")
            p.add_argument("--embedding-model", dest="embedding_model")
            p.add_argument("--transcription-model", dest="transcription_model")
            p.add_argument("--api-key", dest="api_key", help="Prefer --api-key-env: arguments end up in shell history")
            p.add_argument("--api-key-env", dest="api_key_env", help="Read the API key from this environment variable")
            p.add_argument("--use-entra-id", dest="use_entra_id", action="store_true", default=None)
            p.add_argument("--max-tokens", dest="max_tokens", type=int)
            p.add_argument("--temperature", type=float)
            p.add_argument("--system-prompt", dest="system_prompt")
            p.add_argument("--no-knowledge-reply", dest="no_knowledge_reply")
            p.add_argument("--activate", action="store_true", help="Make it the active configuration")
            if action == "update":
                p.add_argument("--deactivate", action="store_true")
        p = sub.add_parser("test", help="Make one tiny completion and print provider, model, latency and tokens")
        p.add_argument("--name", help="Default: the configuration in use (active, else the OPENAI_* settings)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except ApplicationError as exc:
            details = "; ".join(f"{k}: {v}" for k, v in exc.extra.get("fields", {}).items())
            raise CommandError(f"{exc.message}{' (' + details + ')' if details else ''}") from exc

    def _list(self, options: dict[str, Any]) -> None:
        configurations = list(ai_configuration_list())
        if not configurations:
            self.stdout.write("No AI configurations. The OPENAI_* settings are used when OPENAI_API_KEY is set.")
            return
        for c in configurations:
            key = "entra-id" if c.use_entra_id else (secret_mask(c.api_key) or "(none)")
            self.stdout.write(
                f"{'*' if c.active else ' '} {c.name}  provider={c.provider}  model={c.deployment or c.model}  "
                f"base_url={c.base_url or '-'}  key={key}"
            )

    def _fields(self, options: dict[str, Any]) -> dict[str, Any]:
        fields = {field: options[opt] for opt, field in FIELD_OPTIONS.items() if options.get(opt) is not None}
        if options.get("use_entra_id"):
            fields["use_entra_id"] = True
        return fields

    def _api_key(self, options: dict[str, Any]) -> str | None:
        if options.get("api_key_env"):
            value = os.environ.get(options["api_key_env"], "")
            if not value:
                raise CommandError(f"environment variable {options['api_key_env']} is empty")
            return value
        return options.get("api_key")

    def _create(self, options: dict[str, Any]) -> None:
        fields = self._fields(options)
        model = fields.pop("model", "")
        configuration = ai_configuration_create(
            name=options["name"],
            model=model,
            api_key=self._api_key(options) or "",
            activate=options["activate"],
            **fields,
        )
        self.stdout.write(
            self.style.SUCCESS(f"Created {configuration.name}{' (active)' if configuration.active else ''}")
        )

    def _update(self, options: dict[str, Any]) -> None:
        configuration = AIConfiguration.objects.filter(name=options["name"]).first()
        if configuration is None:
            raise CommandError(f"no AI configuration named {options['name']!r}")
        activate = True if options["activate"] else (False if options.get("deactivate") else None)
        configuration = ai_configuration_update(
            configuration=configuration, api_key=self._api_key(options), activate=activate, **self._fields(options)
        )
        self.stdout.write(
            self.style.SUCCESS(f"Updated {configuration.name}{' (active)' if configuration.active else ''}")
        )

    def _test(self, options: dict[str, Any]) -> None:
        configuration = None
        if options.get("name"):
            configuration = AIConfiguration.objects.filter(name=options["name"]).first()
            if configuration is None:
                raise CommandError(f"no AI configuration named {options['name']!r}")
        try:
            result = ai_configuration_test(configuration=configuration)
        except (AITransientError, AIPermanentError) as exc:
            raise CommandError(f"test failed: {exc}") from exc
        self.stdout.write(
            f"OK {result.name}: provider={result.provider} model={result.model} latency_ms={result.latency_ms} "
            f"prompt_tokens={result.prompt_tokens} completion_tokens={result.completion_tokens} reply={result.reply!r}"
        )
