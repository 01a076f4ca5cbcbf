from __future__ import annotations

from django.db import models


class TemplateCategory(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    UTILITY = "utility", "Utility"
    AUTHENTICATION = "authentication", "Authentication"


class TemplateStatus(models.TextChoices):
    APPROVED = "approved", "Approved"
    PENDING = "pending", "Pending"
    REJECTED = "rejected", "Rejected"
    PAUSED = "paused", "Paused"
    DISABLED = "disabled", "Disabled"


class DataSourceKind(models.TextChoices):
    SQL = "sql", "Read-only SQL query"
    PYTHON = "python", "Registered Python resolver"


class DataSource(models.Model):
    """Where a template's parameter values come from.

    SQL: a SELECT with named parameters (`%(entity)s`, `%(contact_phone)s`, …) bound from the message context,
    run in a READ ONLY transaction with a statement timeout; the first row's columns fill the parameters.
    Python: the name of a resolver registered in `apps.message_templates.resolvers`.
    """

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=DataSourceKind.choices, default=DataSourceKind.SQL)
    query = models.TextField(blank=True, help_text="SELECT … with %(name)s parameters (kind = sql).")
    resolver = models.CharField(max_length=100, blank=True, help_text="Registered resolver name (kind = python).")
    timeout_ms = models.PositiveIntegerField(default=2000)
    active = models.BooleanField(default=True)
    # Message context used by the admin's "test query" (e.g. {"entity": "jóvenes", "contact_name": "Ana"}).
    sample_context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WhatsAppTemplate(models.Model):
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=15, default="es")
    category = models.CharField(max_length=20, choices=TemplateCategory.choices, default=TemplateCategory.UTILITY)
    status = models.CharField(max_length=20, choices=TemplateStatus.choices, default=TemplateStatus.APPROVED)
    active = models.BooleanField(default=True)
    # Ordered parameter names as the provider knows them: ["event_name", "event_date", …] or ["1", "2"].
    parameters = models.JSONField(default=list, blank=True)
    # Meta templates created with named parameters must send `parameter_name`.
    named_parameters = models.BooleanField(default=False)
    body_text = models.TextField(blank=True, help_text="Body with {{name}} placeholders, for preview and checks.")
    header_text = models.CharField(max_length=60, blank=True)
    footer_text = models.CharField(max_length=60, blank=True)
    data_source = models.ForeignKey(
        DataSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="templates"
    )
    # Parameter name → data source column, when they differ.
    parameter_mapping = models.JSONField(default=dict, blank=True)
    # Parameter name → value used when the data source gives none.
    static_values = models.JSONField(default=dict, blank=True)
    # Sample values for the admin preview and the test-send.
    sample_values = models.JSONField(default=dict, blank=True)
    twilio_content_sid = models.CharField(max_length=64, blank=True, help_text="Twilio Content SID (HX…).")
    provider_content = models.JSONField(default=dict, blank=True, help_text="Template as the provider reported it.")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "language"]
        verbose_name = "WhatsApp template"
        constraints = [
            models.UniqueConstraint(fields=["name", "language"], name="template_unique_name_language"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class Intent(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    # Higher wins when two intents match equally well.
    priority = models.IntegerField(default=0)
    template = models.ForeignKey(
        WhatsAppTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="intents"
    )
    # Optional regex with one group (or a named group `entity`) that extracts the entity from the message.
    entity_pattern = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name


class Keyword(models.Model):
    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="keywords")
    language = models.CharField(max_length=15, default="es")
    # A word or a phrase; matched case- and accent-insensitively on word boundaries, typo-tolerant.
    phrase = models.CharField(max_length=200)
    weight = models.FloatField(default=1.0)

    class Meta:
        ordering = ["intent", "language", "phrase"]
        constraints = [
            models.UniqueConstraint(fields=["intent", "language", "phrase"], name="keyword_unique_per_intent"),
        ]

    def __str__(self) -> str:
        return f"{self.phrase} ({self.language})"


# --- Demo business data ----------------------------------------------------------------------------
# Tables of an imaginary church ("VEA") that the demo data sources read, seeded by `manage.py seed_demo`.
# They stand for the business's own database; nothing outside the demo uses them.


class DemoEvent(models.Model):
    name = models.CharField(max_length=200, unique=True)
    starts_at = models.DateTimeField()
    location = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # name + description, accents stripped and casefolded, so a SQL LIKE finds "jóvenes" as "jovenes".
    search_text = models.TextField(blank=True)

    class Meta:
        ordering = ["starts_at"]
        verbose_name = "demo event"

    def __str__(self) -> str:
        return self.name


class DemoMinistry(models.Model):
    name = models.CharField(max_length=200, unique=True)
    leader = models.CharField(max_length=200)
    phone = models.CharField(max_length=20)
    email = models.EmailField()
    position = models.PositiveIntegerField(default=0)
    search_text = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = "demo ministry"
        verbose_name_plural = "demo ministries"

    def __str__(self) -> str:
        return self.name


class DemoDonationMethod(models.Model):
    name = models.CharField(max_length=200, unique=True)
    details = models.CharField(max_length=300)
    position = models.PositiveIntegerField(default=0)
    search_text = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = "demo donation method"

    def __str__(self) -> str:
        return self.name
