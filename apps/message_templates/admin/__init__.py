"""Admin for templates, intents + keywords, data sources and the demo tables.

Templates show a live preview (body rendered from `sample_values`) with the validation result; data sources
have a "test query" page and action; every save of an intent, keyword or template bumps the keyword index.
"""

from . import data_sources, intents, templates

__all__ = ["data_sources", "intents", "templates"]
