"""The Dashboards folder and the default dashboards (Programme overview, Registry, Payments).

Created once, when the folder does not exist yet (after `migrate`, and by `seed_demo`); from then on
they are content that administrators edit, unpublish or delete like any page. Scheme administrators
may add, edit and publish dashboards in the folder."""

import json
import uuid

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from wagtail.models import GroupPagePermission, Page

from .models import DashboardIndexPage, DashboardPage

EDITORS = "Scheme administrator"
EDITOR_PERMISSIONS = ("add_page", "change_page", "publish_page")


def _block(kind, **value):
    return {"type": kind, "value": value, "id": str(uuid.uuid4())}


def _kpis(*tiles):
    return {"type": "kpis", "id": str(uuid.uuid4()), "value": [
        {"type": "item", "id": str(uuid.uuid4()),
         "value": {"metric": metric, "label": label, "value": value, "row": row}}
        for metric, label, value, row in tiles]}


def _figure(kind, metric, *, width="half", title="", description="", height=360, **options):
    return _block(kind, metric=metric, title=title, description=description, width=width, height=height, **options)


def _bar(metric, *, value="", horizontal=False, stacked=False, **common):
    return _figure("bar", metric, value=value, horizontal=horizontal, stacked=stacked, **common)


DEFAULTS = [
    {
        "slug": "programme-overview", "title": "Programme overview",
        "summary": "People registered, beneficiaries by plan and place, enrolments and payments.",
        "groups": ["Manager", "Scheme administrator", "Accountant", "Checker", "Viewer", "System administrator"],
        "body": [
            _kpis(("registry_totals", "People registered", "", "People"),
                  ("registry_totals", "Households", "", "Households"),
                  ("beneficiaries_by_status", "Active beneficiaries", "", "Active"),
                  ("payments_due_vs_paid", "Total of approved payrolls", "due", "")),
            _bar("beneficiaries_by_plan", stacked=True, title="Beneficiaries by plan"),
            _figure("breakdown", "beneficiaries_by_location", depth=2, style="treemap",
                    title="Beneficiaries by region and district"),
            _figure("line", "enrolments_over_time", value="", markers=True),
            _bar("payments_due_vs_paid", title="Payments due and paid per cycle"),
        ],
    },
    {
        "slug": "registry", "title": "Registry",
        "summary": "Who is registered: sex, age, place, registrations over time; uploads and approvals.",
        "groups": ["Manager", "Scheme administrator", "Clerk", "Checker", "Viewer", "System administrator"],
        "body": [
            _kpis(("registry_totals", "People registered", "", "People"),
                  ("registry_totals", "Households", "", "Households")),
            _figure("pie", "people_by_sex", value="", donut=True),
            _bar("people_by_age_band"),
            _figure("breakdown", "people_by_location", depth=3, style="sunburst",
                    title="People by region, district and ward", height=420),
            _figure("line", "registrations_over_time", value="", markers=True, height=420),
            _block("table", metric="uploads_by_result", title="", description="", width="half", max_rows=50),
            _block("table", metric="approvals_pending", title="", description="", width="half", max_rows=50),
        ],
    },
    {
        "slug": "payments", "title": "Payments",
        "summary": "Amounts due and paid per cycle and payment plan, and each payroll's totals.",
        "groups": ["Accountant", "Manager", "Scheme administrator", "Checker"],
        "body": [
            _kpis(("payments_due_vs_paid", "Total", "due", ""), ("payments_due_vs_paid", "Paid", "paid", ""),
                  ("payments_due_vs_paid", "Lines", "due_lines", ""),
                  ("payments_due_vs_paid", "Lines paid", "paid_lines", ""),
                  ("payments_due_vs_paid", "Failed (unpaid)", "failed_lines", ""),
                  ("payments_due_vs_paid", "Still due", "still_due_lines", "")),
            _bar("payments_due_vs_paid", width="full", title="Due and paid per cycle"),
            _bar("payroll_totals", horizontal=True, title="Payroll totals (your locations)"),
            _figure("pie", "beneficiaries_by_status", value="", donut=True, title="Beneficiaries by status"),
            _block("table", metric="payroll_totals", title="Payrolls", description="", width="full", max_rows=50),
        ],
    },
]


def _grant_editors(folder):
    group = Group.objects.filter(name=EDITORS).first()
    if group is None:
        return
    for codename in EDITOR_PERMISSIONS:
        permission = Permission.objects.get(content_type__app_label="wagtailcore", codename=codename)
        GroupPagePermission.objects.get_or_create(group=group, page=folder, permission=permission)


@transaction.atomic
def ensure_default_dashboards(*, only_when_new=False):
    """Create the folder if missing (with the editors' page permissions) and the default dashboards
    missing from it; with `only_when_new`, dashboards only along with a new folder. Returns the titles
    created."""
    root = Page.get_first_root_node()
    if root is None:
        return []
    folder = DashboardIndexPage.objects.first()
    created = []
    if folder is None:
        folder = root.add_child(instance=DashboardIndexPage(title="Dashboards", slug="dashboards"))
        _grant_editors(folder)
        created.append(folder.title)
    elif only_when_new:
        return created
    existing = set(DashboardPage.objects.child_of(folder).values_list("slug", flat=True))
    for spec in DEFAULTS:
        if spec["slug"] in existing:
            continue
        page = DashboardPage(title=spec["title"], slug=spec["slug"], summary=spec["summary"],
                             body=json.dumps(spec["body"]))
        folder.add_child(instance=page)
        page.viewer_groups.set(Group.objects.filter(name__in=spec["groups"]))
        page.save_revision().publish()
        created.append(page.title)
    return created
