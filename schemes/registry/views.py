import uuid
from decimal import Decimal

import django_filters
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Concat, Lower
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.views import View
from wagtail import hooks
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.log_actions import registry as log_registry

from schemes.rules.catalogue import household_catalogue, individual_catalogue
from schemes.rules.forms import CriteriaFilter
from sites.audit import audit
from sites.fields import FieldType
from sites.masking import can_view_sensitive, mask
from sites.paginator import ListingPaginator, planned_rows
from sites.refusals import refusal_message
from sites.scoping import scope_for
from sites.viewsets import ScopedHistoryView, ScopedIndexView, ScopedInspectView, ServiceDeleteView
from workflows.services import approval_submit, requires_approval

from . import selectors, services
from .approvals import MEMBERS_OPERATION, labelled_diff
from .forms import AddMemberForm, ChangeMemberForm, RemoveMemberForm, SetHeadForm
from .models import SEX_NOT_RECORDED, Household, Individual, MemberRole, Membership, RegistryField, Sex

# --- listing filters -------------------------------------------------------------------------


def _scoped_locations(request):
    return scope_for(request.user).locations().order_by("path")


class RegistryFilterSet(WagtailFilterSet):
    location = django_filters.ModelChoiceFilter(
        queryset=_scoped_locations, method="filter_location", label="Location (and below)"
    )
    status = django_filters.ChoiceFilter(
        choices=[("deleted", "Deleted")], method="filter_status", label="Status", empty_label="Registered"
    )

    def filter_location(self, queryset, name, location):
        return queryset.filter(location__path__startswith=location.path) if location else queryset

    def filter_status(self, queryset, name, value):
        return queryset  # applied by the view, which starts from live or deleted records

    def filter_attribute(self, queryset, name, value):
        definition = self.attribute_definitions[name]
        if value in ("", None):
            return queryset
        if definition.field_type == FieldType.BOOLEAN:
            value = value == "true"
        elif definition.field_type == FieldType.INTEGER:
            value = int(value)
        return selectors.filter_by_attribute(queryset, definition, value)


def attribute_filters(target):
    """One filter per choice, yes/no or whole-number attribute the administrators have defined."""
    filters, definitions = {}, {}
    for definition in RegistryField.objects.filter(
        target=target, sensitive=False,
        field_type__in=[FieldType.CHOICE, FieldType.BOOLEAN, FieldType.INTEGER],
    ):
        name = f"attr_{definition.name}"
        definitions[name] = definition
        if definition.field_type == FieldType.CHOICE:
            filters[name] = django_filters.ChoiceFilter(
                choices=[(c, c) for c in definition.choices], label=definition.label, method="filter_attribute")
        elif definition.field_type == FieldType.BOOLEAN:
            filters[name] = django_filters.ChoiceFilter(
                choices=[("true", "Yes"), ("false", "No")], label=definition.label, method="filter_attribute")
        else:
            filters[name] = django_filters.NumberFilter(label=definition.label, method="filter_attribute")
    return filters, definitions


NO_SEX = "none"  # the filter's value for people whose sex is not recorded (blank is "any")


class IndividualFilterSet(RegistryFilterSet):
    sex = django_filters.ChoiceFilter(choices=[*Sex.choices, (NO_SEX, SEX_NOT_RECORDED)], method="filter_sex")
    age_band = django_filters.ChoiceFilter(
        choices=[(band, band) for band in selectors.AGE_BANDS], method="filter_age_band", label="Age")
    criteria = CriteriaFilter(subject="individual", catalogue=individual_catalogue)

    class Meta:
        model = Individual
        fields = []

    def filter_age_band(self, queryset, name, value):
        return selectors.filter_by_age_band(queryset, value)

    def filter_sex(self, queryset, name, value):
        return queryset.filter(sex="" if value == NO_SEX else value)


class HouseholdFilterSet(RegistryFilterSet):
    criteria = CriteriaFilter(subject="household", catalogue=household_catalogue)

    class Meta:
        model = Household
        fields = []


def filterset_with_attributes(base, target):
    filters, definitions = attribute_filters(target)
    return type(base.__name__, (base,), {**filters, "attribute_definitions": definitions})


class LiveOrDeletedMixin:
    @cached_property
    def shows_deleted(self):
        return self.request.GET.get("status") == "deleted"

    def get_base_queryset(self):
        queryset = self.scoped(include_deleted=True)
        if self.shows_deleted:
            return queryset.deleted()
        return queryset.live()


class PlacesExportMixin:
    """A decimal attribute is exported to its field's places (1200.50), as the record page shows it,
    and still as a number: the imports read it back by value."""

    def to_row_dict(self, item):
        row = super().to_row_dict(item)
        for column, definition in self.attribute_columns.items():
            if isinstance(row.get(column), Decimal):
                row[column] = Decimal(definition.display_text(row[column]))
        return row


# --- individuals -------------------------------------------------------------------------------


class MaskedColumn(Column):
    cell_template_name = "wagtailadmin/tables/cell.html"

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.show = can_view_sensitive(user)

    def get_value(self, instance):
        value = super().get_value(instance)
        return value if self.show else mask(value)


class IndividualIndexView(PlacesExportMixin, LiveOrDeletedMixin, ScopedIndexView):
    # Newest first: what a clerk just registered or imported, read off the primary key at any size.
    default_ordering = "-id"
    # Headings the individuals import reads back (schemes.bulk.individuals: "Location code" and
    # "Household" are its aliases of location and group_code), then the registry attributes.
    export_headings = {"location_code": "Location code", "household_code": "Household", "deleted_at": "Deleted on",
                       "merged_into_id": "Merged into"}

    @cached_property
    def list_export(self):
        # An export of deleted people says when each was deleted, and into whom a merged one went.
        deleted = ["deleted_at", "merged_into_id"] if self.shows_deleted else []
        return ["id", "first_name", "last_name", "dob", "sex", "national_id", "phone", "location_code",
                "household_code", *self.attribute_columns, *deleted]

    def export_attributes(self):
        return RegistryField.schema_for(RegistryField.Target.INDIVIDUAL).definitions

    @cached_property
    def filterset_class(self):
        return filterset_with_attributes(IndividualFilterSet, RegistryField.Target.INDIVIDUAL)

    @cached_property
    def columns(self):
        inspect = self.inspect_url_name
        return [
            TitleColumn("name", label="Name", accessor=str, sort_key="last_name",
                        get_url=lambda obj: reverse(inspect, args=[obj.pk])),
            MaskedColumn("national_id", label="National ID", user=self.request.user),
            Column("sex", label="Sex", accessor="sex_shown", sort_key="sex"),
            Column("dob", label="Date of birth", sort_key="dob",
                   accessor=lambda obj: f"{obj.dob:%Y-%m-%d} ({obj.age()})"),
            Column("location", label="Location", accessor="location.name", sort_key="location__name"),
            Column("household", label="Household", accessor="household_code"),
            # Ids grow with registration (imports take theirs in one block): the id orders by it.
            Column("registered", label="Registered", sort_key="id",
                   accessor=lambda obj: f"{timezone.localtime(obj.created_at):%Y-%m-%d}"),
        ]

    def get_base_queryset(self):
        # Only a household the user may see is named, as on the person's record page.
        household = scope_for(self.request.user).filter(
            Membership.objects.filter(individual=OuterRef("pk")), field="household__location"
        ).values("household__code")[:1]
        queryset = super().get_base_queryset().annotate(
            household_code=Subquery(household), location_code=F("location__code"))
        if self.is_export:
            # Its columns are these fields and the annotations: no location row built per person, no
            # timestamps parsed (a third of a million-row export's time).
            return queryset.only("id", "first_name", "last_name", "dob", "sex", "national_id", "phone", "attributes",
                                 *(["deleted_at", "merged_into"] if self.shows_deleted else []))
        return queryset.select_related("location")

    def search_queryset(self, queryset):
        if not self.is_searching:
            return queryset
        return services.individual_search(queryset=queryset, text=self.search_query, by=self.request.user)

    def to_row_dict(self, item):
        row = super().to_row_dict(item)
        if not self.shows_sensitive:
            row["national_id"] = mask(row["national_id"])
            row["phone"] = mask(row["phone"])
        return row


RECORD_OPERATIONS = {Individual: ["registry.change_individual", "registry.delete_individual"],
                     Household: ["registry.change_household", "registry.delete_household"]}


def _openable(user, requests):
    """The requests the user may open (workflows.selectors.requests_for): a record's page does not show
    the title of a request placed where the reader has no access (a person moving to another district)."""
    from workflows.selectors import requests_for

    return requests.filter(pk__in=requests_for(user).values("pk"))


def recent_history(instance, limit=8):
    entries = list(log_registry.get_logs_for_instance(instance).select_related("user").order_by("-timestamp")[:limit])
    target = RegistryField.Target.HOUSEHOLD if isinstance(instance, Household) else RegistryField.Target.INDIVIDUAL
    for entry in entries:
        # A merge's or its undoing's changes by the fields' labels (schemes/registry/wagtail_hooks.py).
        if labelled_changes := getattr(entry.formatter, "labelled_changes", None):
            entry.changes = labelled_changes(entry)
        elif entry.action == "wagtail.edit" and isinstance((entry.data or {}).get("changes"), dict):
            # An edit names the fields it changed by their labels ("Monthly income", not
            # "attributes.income"); its values stay in the full history, masked as written.
            entry.changes = [(row[0], None, None) for row in labelled_diff(type(instance), target,
                                                                          entry.data["changes"])]
    return entries


class IndividualRecordView(ScopedInspectView):
    """The person's record: details, household, attributes, history; audited on every view."""

    page_title = "Record"

    def get(self, request, *args, **kwargs):
        audit(self.object, "mizani.view", by=request.user)
        return super().get(request, *args, **kwargs)

    def get_page_subtitle(self):
        return str(self.object)

    @cached_property
    def header_more_buttons(self):
        return [] if self.object.is_deleted else super().header_more_buttons

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        person = self.object
        user = self.request.user
        show_sensitive = can_view_sensitive(user)
        membership = Membership.objects.filter(individual=person).select_related("household", "role").first()
        household = membership.household if membership else None
        if household is not None and not scope_for(user).allows(household.location):
            household = None  # the person is visible, their household is outside the user's locations
        shows_benefits = selectors.may_see_person_benefits(user)
        context.update({
            "person": person,
            "age": person.age(),
            "national_id": person.national_id if show_sensitive else mask(person.national_id),
            "phone": person.phone if show_sensitive else mask(person.phone),
            "attributes": RegistryField.schema_for(RegistryField.Target.INDIVIDUAL).display(
                person.attributes, show_sensitive=show_sensitive),
            "membership": membership,
            "household": household,
            "members": selectors.household_members(household, user) if household else [],
            "hidden_members": selectors.hidden_member_count(household, user) if household else 0,
            "history": recent_history(person),
            "history_url": reverse(self.history_url_name, args=[person.pk]),
            "pending_requests": _openable(user, selectors.open_requests(RECORD_OPERATIONS[Individual],
                                                                         record=person.pk)),
            "location_trail": person.location.ancestors() + [person.location] if person.location else [],
            "can_restore": person.is_deleted and user.has_perm("registry.delete_individual"),
            "restore_url": reverse("registry_individual:restore", args=[person.pk]),
            "household_url_name": "registry_household:inspect",
            "shows_benefits": shows_benefits,
            "enrolments": selectors.person_enrolments(person, user) if shows_benefits else [],
            "payments": selectors.person_payments(person, user) if shows_benefits else None,
        })
        return context


# --- households --------------------------------------------------------------------------------


def _form_problems(form):
    """A small form's errors as one message, each field named by its label."""
    return " ".join(f"{form[name].label if name in form.fields else 'This change'}: {' '.join(errors)}"
                    for name, errors in form.errors.items())


class HouseholdPaginator(ListingPaginator):
    """For a common name the households are not counted (selectors.search_households): the label
    says how many were found at least, and the pages run as far as that or PostgreSQL's estimate."""

    def __init__(self, *args, at_least=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.at_least = at_least

    @cached_property
    def count(self):
        if self.at_least is None:
            return super().count
        self.count_is_estimate = True
        if connections[self.object_list.db].vendor != "postgresql":
            return self.at_least
        return max(planned_rows(self.object_list.order_by()), self.at_least)

    @cached_property
    def items_count_label(self):
        if self.at_least is None:
            return super().items_count_label
        return f"At least {self.at_least:,} {self.verbose_name_plural}"


class HouseholdIndexView(PlacesExportMixin, LiveOrDeletedMixin, ScopedIndexView):
    default_ordering = "code"
    paginator_class = HouseholdPaginator
    found_at_least = None  # set by a search for a common name (selectors.search_households)
    export_headings = {"head_name": "Head", "location_code": "Location code", "size": "Members",
                       "deleted_at": "Deleted on"}
    search_fields = ["code"]

    @cached_property
    def list_export(self):
        return ["id", "code", "head_name", "location_code", "size", *self.attribute_columns,
                *(["deleted_at"] if self.shows_deleted else [])]

    def export_attributes(self):
        return RegistryField.schema_for(RegistryField.Target.HOUSEHOLD).definitions

    @cached_property
    def filterset_class(self):
        return filterset_with_attributes(HouseholdFilterSet, RegistryField.Target.HOUSEHOLD)

    @cached_property
    def columns(self):
        inspect = self.inspect_url_name
        return [
            TitleColumn("code", label="Code", sort_key="code",
                        get_url=lambda obj: reverse(inspect, args=[obj.pk])),
            Column("head", label="Head", accessor="head_name"),
            Column("size", label="Members", accessor="size"),
            Column("location", label="Location", accessor="location.name", sort_key="location__name"),
        ]

    def get_base_queryset(self):
        # The head is named only when in the user's locations, as on the household's page.
        head = scope_for(self.request.user).filter(
            Membership.objects.filter(household=OuterRef("pk"), role_id=MemberRole.HEAD),
            field="individual__location",
        ).annotate(
            full=Concat("individual__first_name", Value(" "), "individual__last_name")).values("full")[:1]
        queryset = selectors.households_with_size(super().get_base_queryset()).annotate(
            location_code=F("location__code"), head_name=Subquery(head))
        if self.is_export:  # its columns: no location row built per household
            return queryset.only("id", "code", "attributes", *(["deleted_at"] if self.shows_deleted else []))
        return queryset.select_related("location")

    def order_queryset(self, queryset):
        # By code as the unique index folds it (case aside): page 1 is read from that index, not sorted
        # out of every household (and a common-name search walks it in that order).
        if self.ordering in ("code", "-code"):
            return queryset.order_by(Lower("code").desc() if self.ordering == "-code" else Lower("code"))
        return super().order_queryset(queryset)

    def search_queryset(self, queryset):
        if not self.is_searching:
            return queryset
        found = selectors.search_households(queryset, self.search_query, user=self.request.user)
        self.found_at_least = found.at_least
        return found.households

    def get_paginator(self, queryset, per_page, **kwargs):
        return super().get_paginator(queryset, per_page, at_least=self.found_at_least, **kwargs)


class HouseholdRecordView(ScopedInspectView):
    """The household page: details, members with roles, and the forms that manage them. People are
    found with a plain search, not a chooser: Wagtail's chooser widget needs an inline script, which
    the Content-Security-Policy refuses."""

    page_title = "Household"
    candidate_limit = 10

    @cached_property
    def person_query(self):
        return self.request.GET.get("person_q", "").strip()[:100]

    def candidates(self):
        """People in the user's locations, in no household yet, matching the search."""
        if not self.person_query:
            return []
        people = selectors.individuals_for(self.request.user).filter(membership__isnull=True)
        found = services.individual_search(queryset=people, text=self.person_query, by=self.request.user)
        return list(found.select_related("location")[: self.candidate_limit])

    def get_page_subtitle(self):
        return self.object.code

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        household = self.object
        user = self.request.user
        can_manage = user.has_perm("registry.change_household") and not household.is_deleted
        members = list(selectors.household_members(household, user))
        context.update({
            "household": household,
            "members": members,
            "hidden_members": selectors.hidden_member_count(household, user),
            "attributes": RegistryField.schema_for(RegistryField.Target.HOUSEHOLD).display(
                household.attributes, show_sensitive=can_view_sensitive(user)),
            "history": recent_history(household),
            "history_url": reverse(self.history_url_name, args=[household.pk]),
            "pending_requests": [
                *_openable(user, selectors.open_requests(RECORD_OPERATIONS[Household], record=household.pk)),
                *_openable(user, selectors.open_requests([MEMBERS_OPERATION], household=household.pk))],
            "enrolments": selectors.household_enrolments(household),
            "can_manage": can_manage,
            "roles": MemberRole.objects.exclude(pk=MemberRole.HEAD),
            "person_query": self.person_query,
            "candidates": self.candidates() if can_manage else [],
            "can_restore": household.is_deleted and user.has_perm("registry.delete_household"),
            "restore_url": reverse("registry_household:restore", args=[household.pk]),
            "members_url": reverse("registry_household:members", args=[household.pk]),
            "sections": [section for hook in hooks.get_hooks("register_household_record_section")
                         if (section := hook(self.request, household)) is not None],
        })
        return context


class HouseholdMembersView(View):
    """POST-only member operations on one household: applied at once, or sent for approval when a
    workflow for "Change a household's members" requires it."""

    def post(self, request, pk):
        household = get_object_or_404(selectors.households_for(request.user), pk=pk)
        try:
            change = self.change(request, household)
            if requires_approval(MEMBERS_OPERATION):
                approval = approval_submit(operation=MEMBERS_OPERATION, by=request.user, payload={
                    key: value.pk if hasattr(value, "pk") else value for key, value in change.items()})
                messages.success(request, f"Sent for approval (request {approval.pk}): nothing changes until it "
                                          "is approved.")
                return redirect("workflows_approvals:inspect", approval.pk)
            services.household_member_change(**change, by=request.user)
            messages.success(request, self.done[change["action"]].format(person=change["individual"]))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        except PermissionDenied as error:
            messages.error(request, str(error) or "You may not change this household.")
        except Individual.DoesNotExist:
            messages.error(request, "That person is not in your locations.")
        return redirect("registry_household:inspect", household.pk)

    done = {"add": "{person} added.", "change": "{person} updated.", "set_head": "{person} is now the head.",
            "remove": "{person} removed from the household."}

    def change(self, request, household):
        """The service's keyword arguments for the posted operation (forms checked)."""
        user, operation = request.user, request.POST.get("operation")
        if operation not in self.done:
            raise ValidationError("Unknown operation.")
        change = {"household": household, "action": operation, "role": None, "recipient_type": None,
                  "former_head_role": None, "new_primary": None}
        if operation == "add":
            form = AddMemberForm(request.POST, individuals=selectors.individuals_for(user))
            if not form.is_valid():
                raise ValidationError(_form_problems(form))
            return {**change, **form.cleaned_data}
        membership = get_object_or_404(selectors.household_members(household, user), pk=request.POST.get("membership"))
        change["individual"] = membership.individual
        if operation == "remove":
            form = RemoveMemberForm(request.POST, others=selectors.individuals_for(user).filter(
                membership__household=household).exclude(pk=membership.individual_id))
        else:
            form = {"change": ChangeMemberForm, "set_head": SetHeadForm}[operation](request.POST)
        if not form.is_valid():
            raise ValidationError(_form_problems(form))
        change.update(form.cleaned_data)
        return change


class RecordDeleteView(ServiceDeleteView):
    """The confirmation states what deleting touches (household, enrolments, payment lines) rather than
    Wagtail's reference count (registry records are kept out of the reference index), and what the
    service would refuse."""

    check_delete_service = None

    def get_usage_url(self):
        return None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["consequences"] = selectors.delete_consequences(self.object, scope_for(self.request.user))
        context["needs_approval"] = self.needs_approval(self.delete_operation)  # the button says what it does
        try:
            self.check_delete_service(**{self.record_kwarg: self.object}, by=self.request.user)
        except (ValidationError, PermissionDenied) as error:
            context["refusal"] = refusal_message(error)
        return context


class RecordHistoryView(ScopedHistoryView):
    """Whoever may read the record (viewers, checkers, managers...) may read its history, as its page
    already shows the latest entries; changed values are masked in the audit trail when written."""

    any_permission_required = ["view", "add", "change", "delete"]


def maintenance(request):
    """Registry maintenance tasks, each started as a background job with its own progress page. The
    form carries an idempotency key, so a double submit starts one job."""
    if request.method == "POST":
        try:
            job = services.national_ids_renormalise(idempotency_key=request.POST.get("key", ""), by=request.user)
        except PermissionDenied as error:
            messages.error(request, str(error))
        else:
            return redirect("workflows_jobs:inspect", job.pk)
    return TemplateResponse(request, "registry/maintenance.html", {
        "key": uuid.uuid4().hex, "page_title": "Registry maintenance", "header_icon": "cogs",
    })
