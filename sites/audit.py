"""The one audit writer, on top of Wagtail's log entries so Wagtail's history views show every action.

Titles stored in the log are neutral ("Individual 42"), never a person's name: the log outlives the
record, and names in it would leak to anyone who can read history.
"""

from django.db import connection
from django.utils import timezone
from django.utils.text import capfirst
from wagtail.log_actions import get_active_log_context, log

from .masking import mask

ACTIONS = {
    "mizani.view": ("View", "Viewed the record"),
    "mizani.search_id": ("Search by ID", "Searched the registry by national ID"),
    "mizani.export": ("Export", "Exported records"),
    "mizani.import": ("Import", "Imported records"),
    "mizani.upload": ("Upload", "Uploaded a file to import"),
    "mizani.upload_discard": ("Upload discarded", "Discarded an upload; nothing imported"),
    "mizani.soft_delete": ("Delete (soft)", "Deleted the record (it can be restored)"),
    "mizani.restore": ("Restore", "Restored the record"),
    "mizani.member_add": ("Member added", "Added a household member"),
    "mizani.member_change": ("Member changed", "Changed a household member's role"),
    "mizani.member_remove": ("Member removed", "Removed a household member"),
    "mizani.login": ("Login", "Logged in"),
    "mizani.login_failed": ("Login failed", "A login attempt failed"),
    "mizani.access_change": ("Access change", "Changed a user's locations or roles"),
    "mizani.maintenance": ("Maintenance", "Ran a maintenance task"),
    "mizani.enrol": ("Enrolment", "Enrolled people in the plan"),
    "mizani.plan_status": ("Plan status", "Changed the plan's status"),
    "mizani.plan_schema": ("Plan schema", "Imported the plan's beneficiary schema"),
    "mizani.beneficiary_status": ("Beneficiary status", "Changed the beneficiary's status"),
    "mizani.beneficiary_status_bulk": ("Beneficiary statuses", "Changed the status of many beneficiaries"),
    "mizani.beneficiary_attributes": ("Beneficiary data", "Changed the beneficiary's plan data"),
    "mizani.enrol_file": ("Enrolled by file", "Enrolled by file"),
    "mizani.beneficiaries_update": ("Beneficiaries' data", "Changed many beneficiaries' plan data from a file"),
    "mizani.plan_change": ("Plan change", "Changed the plan (a new version)"),
    "mizani.approval_submit": ("Approval requested", "Submitted a request for approval"),
    "mizani.approval_skipped": ("Approval not required", "Applied without approval (approval is off)"),
    "mizani.approval_decision": ("Approval decision", "Decided on a request"),
    "mizani.approval_cancel": ("Request cancelled", "Cancelled the request"),
    "mizani.approval_void": ("Request void", "The record changed after submission; nothing applied"),
    "mizani.approval_execute": ("Request applied", "Applied the approved change"),
    "mizani.approval_failed": ("Request failed", "Applying the approved change failed"),
    "mizani.payment_plan_change": ("Payment plan", "Created or changed the payment plan"),
    "mizani.payment_cycle": ("Payment cycles", "Created payment cycles or changed a cycle's status"),
    "mizani.payroll_generate": ("Payroll started", "Started generating the payroll"),
    "mizani.payroll_sealed": ("Payroll sealed", "Generated and sealed the payroll (count, total, hash)"),
    "mizani.payroll_failed": ("Payroll failed", "Generating the payroll failed"),
    "mizani.payroll_approved": ("Payroll approved", "Approved the payroll for payment"),
    "mizani.payroll_rejected": ("Payroll rejected", "Rejected the payroll (kept for audit)"),
    "mizani.payroll_over_limit_released": ("Over-limit lines released",
                                           "Released the payroll's lines above the transaction limit for payment"),
    "mizani.payment_provider": ("Payment provider", "Created or changed the payment provider"),
    "mizani.payment_point": ("Payment point", "Created or changed the payment point"),
    "mizani.provider_token": ("Provider API token", "Created or revoked a payment provider's API token"),
    "mizani.reconcile_api": ("Reconciliation batch (API)", "A payment provider posted a reconciliation batch"),
}


def audit_title(instance):
    return f"{instance._meta.verbose_name.capitalize()} {instance.pk}"


def audit(instance, action, *, by, data=None, title=None):
    """Write one audit entry for `instance` (titled `title`, else neutrally after the record). Call
    inside the service's transaction."""
    return log(instance, action, user=by if by and by.is_authenticated else None,
               title=title or audit_title(instance), data=data or {})


def audit_many(model, action, *, by, rows_sql, params=()):
    """One entry per row of `rows_sql`, a SELECT of `id` (a record of `model`) and `data` (the entry's
    data as the database's JSON: jsonb on PostgreSQL, JSON text on SQLite), written by one INSERT ...
    SELECT: what a set-based operation did to each record, for its own history, as `audit` writes it
    for one (title included). Call inside the operation's transaction. Returns how many."""
    from django.contrib.contenttypes.models import ContentType
    from wagtail.models import ModelLogEntry

    field = ModelLogEntry._meta.get_field
    content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
    title = f"{model._meta.verbose_name.capitalize()} "
    now = field("timestamp").get_db_prep_value(timezone.now(), connection)
    uuid = field("uuid").get_db_prep_value(get_active_log_context().uuid, connection)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(ModelLogEntry._meta.db_table)} (content_type_id, label, action, data, timestamp, "
            f"uuid, user_id, revision_id, content_changed, deleted, object_id) "
            f"SELECT %s, %s || CAST(entry.id AS TEXT), %s, entry.data, %s, %s, %s, NULL, %s, %s, "
            f"CAST(entry.id AS TEXT) FROM ({rows_sql}) entry",
            [content_type.pk, title, action, now, uuid, by.pk if by and by.is_authenticated else None, False, False,
             *params])
        return cursor.rowcount


def audit_event(action, *, by=None, data=None, title=None):
    """An event with no record of its own (a failed login for an unknown name, an export) is logged on
    the organisation settings, the one object that stands for the whole installation, titled by what
    it was about (`title`, else the action's name), not by the settings."""
    from .models import OrganisationSettings

    return audit(OrganisationSettings.load(), action, by=by, data=data, title=title or ACTIONS[action][0])


def is_event(entry):
    """Whether a log entry was written by `audit_event`, rather than being a change to the settings."""
    from .models import OrganisationSettings

    return entry.action in ACTIONS and entry.content_type.model_class() is OrganisationSettings


# What an event is about when its data names no records: a search by ID looks for people; a failed
# login names a user who does not exist (one who does is logged on that user, as "User").
EVENT_SUBJECTS = {"mizani.search_id": "Individuals", "mizani.login_failed": "User"}


def event_subject(entry):
    """What an event (see is_event) is about, as the audit trail's Type reads it, in place of the
    settings it is logged on: the records exported ("Individuals"), a report, else "Event"."""
    from django.apps import apps

    data = entry.data if isinstance(entry.data, dict) else {}
    try:
        model = apps.get_model(data["model"])
    except (KeyError, AttributeError, ValueError, LookupError):
        model = None
    if model is not None:
        return capfirst(model._meta.verbose_name_plural)
    if data.get("report"):
        return "Report"
    return EVENT_SUBJECTS.get(entry.action, "Event")


def export_title(model, spreadsheet_format, rows):
    """An export's entry as the audit trail lists it: "Individuals export (CSV), 59 rows"."""
    return (f"{model._meta.verbose_name_plural.capitalize()} export ({spreadsheet_format.upper()}), "
            f"{rows:,} row{'' if rows == 1 else 's'}")


# Data the audit trail masks for a reader who may not see sensitive values: national IDs and phones,
# and what was searched or filtered on (a search by ID's text, a rule's literal values).
SENSITIVE_DATA_KEYS = frozenset({"national_id", "phone", "q", "criteria"})


def may_read_audit_trail(user):
    """The trail covers every location (what changed, who was exported): national readers only."""
    from .scoping import scope_for

    return user.has_perm("sites.view_audit") and scope_for(user).national


def sensitive_names():
    """The names whose values audit_details masks: SENSITIVE_DATA_KEYS and every attribute (registry
    or plan field) sensitive now, one made sensitive after an entry was written included (its values
    were stored as they were)."""
    from .fields import FieldDefinition

    names = set(SENSITIVE_DATA_KEYS)
    for model in FieldDefinition.__subclasses__():
        if not model._meta.abstract:
            names.update(model.objects.filter(sensitive=True).values_list("name", flat=True))
    return frozenset(names)


def audit_details(data, *, show_sensitive, hidden_names=SENSITIVE_DATA_KEYS):
    """An entry's data as a person reads it: "key: value" pairs, nested ones in brackets, lists joined;
    for a reader who may not see sensitive values, the values under `hidden_names` (at any depth)
    masked. Keys in alphabetical order: PostgreSQL's jsonb keeps no order of its own."""
    hidden_names = frozenset() if show_sensitive else hidden_names
    return _pairs(data, hidden_names) if isinstance(data, dict) else _value(data, hidden_names)


def entry_details(entry, *, show_sensitive, hidden_names=SENSITIVE_DATA_KEYS):
    """An entry's details (audit_details) from its data as its action's formatter reads it for a person
    where it can (`readable_data`: a merge's fields by their labels), else as stored."""
    readable = getattr(entry.formatter, "readable_data", None)
    return audit_details(readable(entry) if readable else entry.data, show_sensitive=show_sensitive,
                         hidden_names=hidden_names)


def _pairs(data, hidden_names, hidden=False):
    return "; ".join(f"{key.replace('_', ' ')}: {_value(value, hidden_names, hidden or key in hidden_names)}"
                     for key, value in sorted(data.items()))


def _value(value, hidden_names, hidden=False):
    if isinstance(value, dict):
        return f"({_pairs(value, hidden_names, hidden)})" if value else "none"
    if isinstance(value, list):  # a change's old and new values, a list of codes
        return ", ".join(_value(item, hidden_names, hidden) for item in value) or "none"
    if value is None:
        return "—"
    return mask(str(value)) if hidden else str(value)
