"""Partial GIN indexes for full-text retrieval, one per text-search configuration (PostgreSQL only).

They serve `knowledge_search`'s `search_config = '<c>' AND to_tsvector('<c>', text) @@ <query>` branches.
SQLite (make run) has no tsvector; its selector scores token overlap in Python instead.
"""

from django.db import migrations

CONFIGS = ("spanish", "english", "simple")


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for config in CONFIGS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS assistant_chunk_fts_{config} ON assistant_knowledgechunk "
            f"USING gin (to_tsvector('{config}'::regconfig, text)) WHERE search_config = '{config}'"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for config in CONFIGS:
        schema_editor.execute(f"DROP INDEX IF EXISTS assistant_chunk_fts_{config}")


class Migration(migrations.Migration):
    dependencies = [("assistant", "0001_initial")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
