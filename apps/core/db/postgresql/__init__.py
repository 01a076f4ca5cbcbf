"""PostgreSQL with Microsoft Entra tokens instead of a password (ENGINE "apps.core.db.postgresql")."""
