"""The duplicate review queue: the list of possible duplicates (with the scan that fills it), and the
page comparing a pair side by side, from which a clerk marks it "not a duplicate", asks to merge it
(keeping one record) or asks to undo a merge. Thin: reads through selectors, writes through services
(merges through the approval engine)."""

import uuid

import django_filters
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.views.decorators.http import require_POST
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.ui.tables import Column, TitleColumn

from sites.audit import audit
from sites.masking import can_view_sensitive, mask
from sites.refusals import refusal_message
from sites.scoping import scope_for
from sites.viewsets import ScopedIndexView, ScopedInspectView
from workflows.models import ApprovalRequest, RequestStatus

from . import selectors, services
from .models import (
    UNMERGE_OPERATION,
    DuplicateCandidate,
    DuplicateReason,
    DuplicateStatus,
    Individual,
    Membership,
    MergeStatus,
    RegistryField,
)

ALL_STATUSES = "all"


class DuplicateFilterSet(WagtailFilterSet):
    status = django_filters.ChoiceFilter(
        choices=[*[(s.value, s.label) for s in DuplicateStatus if s != DuplicateStatus.OPEN], (ALL_STATUSES, "All")],
        empty_label=DuplicateStatus.OPEN.label, method="filter_status", label="Status")
    reason = django_filters.ChoiceFilter(choices=DuplicateReason.choices, method="filter_reason", label="Found for")
    score = django_filters.ChoiceFilter(
        choices=[("90", "90 and above"), ("70", "70 and above"), ("50", "50 and above")], method="filter_score",
        label="Score")

    class Meta:
        model = DuplicateCandidate
        fields = []

    def filter_status(self, queryset, name, value):
        return queryset  # applied by the view, which lists the pairs to review unless asked otherwise

    def filter_reason(self, queryset, name, value):
        return selectors.filter_by_reason(queryset, value) if value else queryset

    def filter_score(self, queryset, name, value):
        return queryset.filter(score__gte=int(value)) if value else queryset


class DuplicateIndexView(ScopedIndexView):
    """The queue: pairs to review, best score first; a panel starts a scan and follows its progress."""

    template_name = "registry/duplicates/index.html"
    default_ordering = "-score"
    filterset_class = DuplicateFilterSet
    # Each record by its ID too: two people of the same name are told apart, and found, by it.
    list_export = ["id", "first_id", "first", "second_id", "second", "score", "reason_labels", "get_status_display",
                   "found_at"]
    export_headings = {"first_id": "First record ID", "first": "First record", "second_id": "Second record ID",
                       "second": "Second record", "reason_labels": "Found for",
                       "get_status_display": "Status"}

    @cached_property
    def columns(self):
        inspect = self.inspect_url_name
        return [
            TitleColumn("pair", label="Possible duplicates", accessor=str,
                        get_url=lambda pair: reverse(inspect, args=[pair.pk])),
            Column("score", label="Score", sort_key="score"),
            Column("reasons", label="Found for", accessor="reason_labels"),
            Column("dob", label="Dates of birth",
                   accessor=lambda pair: f"{pair.first.dob:%Y-%m-%d} / {pair.second.dob:%Y-%m-%d}"),
            Column("location", label="Locations", accessor=lambda pair: " / ".join(
                person.location.name if person.location else "—" for person in (pair.first, pair.second))),
            Column("status", label="Status", accessor="get_status_display"),
            Column("found_at", label="Found", sort_key="found_at",
                   accessor=lambda pair: f"{timezone.localtime(pair.found_at):%Y-%m-%d}"),
        ]

    def get_base_queryset(self):
        queryset = super().get_base_queryset().select_related("first__location", "second__location")
        status = self.request.GET.get("status")
        if status == ALL_STATUSES:
            return queryset
        return queryset.filter(status=status if status in DuplicateStatus.values else DuplicateStatus.OPEN)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        scan = selectors.latest_scan(self.request.user)
        context.update({
            "scan": scan,
            "can_scan": self.request.user.has_perm("registry.scan_duplicates") and not scope_for(
                self.request.user).is_empty,
            "scan_key": uuid.uuid4().hex,
        })
        return context


PERSON_ROWS = (("Name", lambda p: f"{p.first_name} {p.last_name}"), ("Date of birth", lambda p: f"{p.dob:%Y-%m-%d}"),
               ("Age", lambda p: p.age()), ("Sex", lambda p: p.sex_shown),
               ("National ID", lambda p: p.national_id), ("Phone", lambda p: p.phone),
               ("Location", lambda p: str(p.location) if p.location else None),
               ("Registered", lambda p: f"{timezone.localtime(p.created_at):%Y-%m-%d}"))
SENSITIVE_ROWS = {"National ID", "Phone"}


class DuplicateCompareView(ScopedInspectView):
    """The two records side by side, what a merge would do either way, and the decisions."""

    page_title = "Compare"

    def get(self, request, *args, **kwargs):
        for person in (self.object.first, self.object.second):
            audit(person, "mizani.view", by=request.user, data={"via": f"possible duplicate {self.object.pk}"})
        return super().get(request, *args, **kwargs)

    def get_page_subtitle(self):
        return str(self.object)

    @cached_property
    def header_more_buttons(self):
        return []

    @cached_property
    def _memberships(self):
        """Each person's membership and its household, the household None where it is outside the
        user's locations (as on the person's record)."""
        scope = scope_for(self.request.user)
        memberships = {}
        for person in (self.object.first, self.object.second):
            membership = Membership.objects.filter(individual=person).select_related("household", "role").first()
            household = membership.household if membership else None
            memberships[person.pk] = (membership, household if household and scope.allows(household.location) else None)
        return memberships

    def _household(self, person):
        membership, household = self._memberships[person.pk]
        if membership is None:
            return "—"
        if household is None:
            return "A household outside your locations"
        return f"{household.code} ({membership.role.label})"

    def _benefits(self, people):
        """Each person's enrolments and payments as their record shows them (same selectors, same
        include), so a merge is decided knowing which plans each is in and what each was paid."""
        user = self.request.user
        if not selectors.may_see_person_benefits(user):
            return []
        return [{"person": person, "heading_id": f"person-benefits-heading-{person.pk}",
                 "membership": self._memberships[person.pk][0],
                 "household": self._memberships[person.pk][1],
                 "enrolments": selectors.person_enrolments(person, user),
                 "payments": selectors.person_payments(person, user)} for person in people]

    def _rows(self, people):
        user = self.request.user
        show = can_view_sensitive(user)
        schema = RegistryField.schema_for(RegistryField.Target.INDIVIDUAL)
        rows = [(label, *[(value(p) if show or label not in SENSITIVE_ROWS else mask(value(p))) for p in people])
                for label, value in PERSON_ROWS]
        rows.append(("Household", *[self._household(p) for p in people]))
        attributes = [dict(schema.display(p.attributes, show_sensitive=show)) for p in people]
        rows += [(label, *[values.get(label) for values in attributes]) for label in dict.fromkeys(
            label for values in attributes for label in values)]
        return [{"label": label, "values": [None if value == "" else value for value in values],
                 "differs": len({str(value) for value in values}) > 1} for label, *values in rows]

    def _merge_options(self, pair):
        """For each record, what keeping it would do, or why it cannot be kept now."""
        options = []
        for kept in (pair.first, pair.second):
            merged = pair.other(kept)
            try:
                services.check_merge(kept=kept, merged=merged, by=self.request.user)
            except (ValidationError, PermissionDenied) as error:
                options.append({"kept": kept, "merged": merged, "problem": refusal_message(error)})
            else:
                options.append({"kept": kept, "merged": merged,
                                "preview": services.merge_preview(kept=kept, merged=merged,
                                                                  scope=scope_for(self.request.user))})
        return options

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        pair, user = self.object, self.request.user
        people = (pair.first, pair.second)
        merge = selectors.merges_for(user).filter(candidate=pair, status=MergeStatus.MERGED).first()
        unmerge_pending = merge is not None and ApprovalRequest.objects.filter(
            operation=UNMERGE_OPERATION, payload__merge=merge.pk,
            status__in=[RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.EXECUTING]).first()
        is_open = pair.status == DuplicateStatus.OPEN
        may_merge = user.has_perm(services.MERGE_PERMISSION)
        may_review = user.has_perm(services.DUPLICATE_REVIEW_PERMISSION)
        context.update({
            "pair": pair,
            "people": people,
            "rows": self._rows(people),
            "can_dismiss": is_open and may_review,
            "can_reopen": pair.status == DuplicateStatus.DISMISSED and may_review,
            "merge_options": self._merge_options(pair) if is_open and may_merge else [],
            "merge": merge,
            "filled_labels": _field_labels(merge.moved.get("filled", [])) if merge else [],
            "unmerge_pending": unmerge_pending,
            "can_unmerge": bool(merge) and may_merge and not unmerge_pending,
            "benefits": self._benefits(people),
            "household_url_name": "registry_household:inspect",
        })
        return context


def _field_labels(names):
    """Labels of person fields and attributes named as in a change's diff ("phone", "attributes.income")."""
    attributes = dict(RegistryField.objects.filter(target=RegistryField.Target.INDIVIDUAL).values_list("name", "label"))
    return [attributes.get(name.removeprefix("attributes."), name.removeprefix("attributes."))
            if name.startswith("attributes.") else capfirst(Individual._meta.get_field(name).verbose_name)
            for name in names]


def _pair(request, pk):
    return get_object_or_404(selectors.duplicates_for(request.user).select_related("first", "second"), pk=pk)


@require_POST
def duplicate_dismiss(request, pk):
    pair = _pair(request, pk)
    try:
        services.duplicate_dismiss(candidate=pair, reason=request.POST.get("reason", ""), by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
    else:
        messages.success(request, "Marked as two different people: later scans leave this pair alone.")
    return redirect("registry_duplicate:inspect", pair.pk)


@require_POST
def duplicate_reopen(request, pk):
    """Put a pair marked "not a duplicate" back in the review queue."""
    pair = _pair(request, pk)
    try:
        services.duplicate_reopen(candidate=pair, by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
    else:
        messages.success(request, "Reopened: the pair is back in the possible duplicates to review.")
    return redirect("registry_duplicate:inspect", pair.pk)


@require_POST
def duplicate_merge(request, pk):
    """Ask to merge the pair, keeping the record posted as `keep`."""
    pair = _pair(request, pk)
    kept = {pair.first_id: pair.first, pair.second_id: pair.second}.get(_int(request.POST.get("keep")))
    try:
        if kept is None:
            raise ValidationError("Choose which of the two records to keep.")
        approval = services.individual_merge_request(candidate=pair, kept=kept, by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
        return redirect("registry_duplicate:inspect", pair.pk)
    messages.success(request, "Merge requested: nothing changes until it is approved (at once where approval is off).")
    return redirect("workflows_approvals:inspect", approval.pk)


@require_POST
def duplicate_unmerge(request, pk):
    """Ask to undo the merge of the pair."""
    pair = _pair(request, pk)
    merge = selectors.merges_for(request.user).filter(candidate=pair, status=MergeStatus.MERGED).first()
    try:
        if merge is None:
            raise ValidationError("This pair has no merge to undo.")
        approval = services.individual_unmerge_request(merge=merge, by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
        return redirect("registry_duplicate:inspect", pair.pk)
    messages.success(request, "Undoing the merge is requested: nothing changes until it is approved.")
    return redirect("workflows_approvals:inspect", approval.pk)


@require_POST
def duplicates_scan(request):
    """Start a scan of the user's locations (or show the one already running) and go back to the queue."""
    if not request.user.has_perm("registry.scan_duplicates"):
        raise PermissionDenied
    try:
        services.duplicates_scan_start(idempotency_key=request.POST.get("key") or uuid.uuid4().hex, by=request.user)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Scanning for duplicates: the list fills as the scan goes.")
    return redirect("registry_duplicate:index")


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
