"""Admin views that read through a selector, so every URL a viewset registers (index, results, export,
inspect, edit, delete, history, usage) sees only what the user may see; anything else is a 404."""

import csv

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.forms import ModelChoiceField
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.views import View
from wagtail.admin.admin_url_finder import ModelAdminURLFinder, NullAdminURLFinder
from wagtail.admin.views import generic
from wagtail.admin.views.generic import history, usage
from wagtail.admin.views.generic.models import unquote
from wagtail.admin.views.mixins import Echo
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.coreutils import multigetattr

from .audit import audit_event, export_title
from .masking import can_view_sensitive
from .models import Location
from .paginator import ListingPaginator
from .refusals import refusal_message
from .spreadsheets import SafeSpreadsheetExportMixin, attribute_cell


class SelectorMixin:
    """`selector(user, include_deleted=...)` is passed in by the viewset."""

    selector = None

    def scoped(self, *, include_deleted=True):
        return self.selector(self.request.user, include_deleted=include_deleted)


CSV_ROWS_PER_CHUNK = 500


def unusable_filter_phrases(form, skip=()):
    """One phrase per error of a filter form (but the fields in `skip`), as an export's refusal says
    it: "the location filter is not one of your locations"."""
    phrases = []
    for name, errors in form.errors.as_data().items():
        if name in skip:
            continue
        field = form.fields.get(name)  # None for an error of the whole form
        for error in errors:
            if field is None:
                phrases.append(" ".join(error.messages).rstrip("."))
            elif error.code == "invalid_choice" and isinstance(field, ModelChoiceField):
                model = field.queryset.model._meta
                phrases.append(f"the {model.verbose_name} filter is not one of your {model.verbose_name_plural}")
            else:
                phrases.append(f"the {field.label or name} filter: {' '.join(error.messages).rstrip('.')}")
    return phrases


class ScopedIndexView(SelectorMixin, SafeSpreadsheetExportMixin, generic.IndexView):
    """A scoped listing whose CSV export streams at any size and whose XLSX export is refused past
    MIZANI_EXPORT_XLSX_MAX_ROWS. Exports carry the listing's filters (criteria included), and
    `export_attributes` adds one column per attribute definition of the records' `attributes`."""

    paginator_class = ListingPaginator
    results_template_name = "sites/index_results.html"

    def get_base_queryset(self):
        return self.scoped(include_deleted=False)

    def order_queryset(self, queryset):
        """End every ordering with the primary key, so that pages neither repeat nor skip rows that
        share a sort value."""
        queryset = super().order_queryset(queryset)
        ordering = list(queryset.query.order_by)
        if ordering and not any(key.lstrip("-") in ("pk", "id") for key in ordering if isinstance(key, str)):
            last = ordering[-1]
            descending = isinstance(last, str) and last.startswith("-")
            queryset = queryset.order_by(*ordering, "-pk" if descending else "pk")
        return queryset

    # --- filters -----------------------------------------------------------------------------

    @cached_property
    def refused_filters(self):
        """What is wrong with the filters that must not be ignored when invalid (a rule the user wrote),
        one sentence each. Wagtail ignores a whole invalid filter set, which would list and export
        everything while the user believes the list filtered."""
        if not self.filters or self.filters.is_valid():
            return []
        form = self.filters.form
        return [f"{form[name].label}: {message}" for name, errors in form.errors.items()
                if getattr(self.filters.filters.get(name), "refuses_when_invalid", False) for message in errors]

    def filter_queryset(self, queryset):
        if not self.filters:
            return queryset
        if self.refused_filters:
            return queryset.none()
        # The filters that clean apply even when another does not (a location outside the user's is
        # not offered, so it is dropped): Wagtail would drop them all, criteria included.
        return self.filters.filter_queryset(queryset)  # its form was cleaned by refused_filters

    @cached_property
    def is_filtering(self):
        # A refused filter is still the user's filter: the listing says why it is empty, rather than
        # inviting them to add a first record.
        return bool(self.refused_filters) or super().is_filtering

    @cached_property
    def no_results_message(self):
        if self.refused_filters:
            return " ".join(self.refused_filters)
        return super().no_results_message

    # --- exports -----------------------------------------------------------------------------

    def export_attributes(self):
        """The attribute definitions (sites.fields) whose values the export carries from each record's
        `attributes`, one column each, headed by the definition's name as the import templates are."""
        return []

    @cached_property
    def attribute_columns(self):
        return {f"attributes.{definition.name}": definition for definition in self.export_attributes()}

    @cached_property
    def shows_sensitive(self):
        return can_view_sensitive(self.request.user)

    def get_heading(self, queryset, field):
        if field in self.attribute_columns:
            return self.attribute_columns[field].name
        return super().get_heading(queryset, field)

    def to_row_dict(self, item):
        return {field: attribute_cell(self.attribute_columns[field], item.attributes,
                                      show_sensitive=self.shows_sensitive)
                if field in self.attribute_columns else multigetattr(item, field)
                for field in self.list_export}

    @cached_property
    def unusable_filters(self):
        """The filters that do not clean other than the refused ones, one phrase each ("the location
        filter is not one of your locations"). The listing drops them; an export must not: without the
        filter it would be a file of other rows than the user asked for (a location outside theirs
        dropped, all their people)."""
        if not self.filters or self.filters.is_valid():
            return []
        return unusable_filter_phrases(self.filters.form, skip={
            name for name, refusing in self.filters.filters.items() if getattr(refusing, "refuses_when_invalid", False)})

    def get(self, request, *args, **kwargs):
        if self.is_export:
            refusals = list(self.refused_filters)
            if self.unusable_filters:
                refusals.append(capfirst("; ".join(self.unusable_filters)) + ": nothing was exported.")
            if refusals:
                return self.refuse_export(" ".join(refusals))
            # Wagtail builds the whole listing first, and counts an unpaginated list with len(): every
            # row in memory before the first byte (51 s and 3 GB for a million people). An export
            # needs only the filtered, searched, ordered queryset.
            return self.as_spreadsheet(self.get_queryset(), request.GET.get("export"))
        return super().get(request, *args, **kwargs)

    def refuse_export(self, message):
        """Back to the same listing (same filters), the reason shown; no file."""
        messages.error(self.request, message)
        params = self.request.GET.copy()
        params.pop("export", None)
        return redirect(f"{self.request.path}?{params.urlencode()}" if params else self.request.path)

    def stream_csv(self, queryset):
        # As Wagtail's, but reading the rows in chunks (memory stays flat at any size), inside a
        # transaction: outside one the database cursor is declared WITH HOLD, which computes every row
        # before sending the first (a million people: 5 s of silence after the header; ten million, a
        # proxy's timeout). Sent some hundred rows at a time.
        writer = csv.DictWriter(Echo(), fieldnames=self.list_export)
        yield writer.writerow({field: self.get_heading(queryset, field) for field in self.list_export})
        with transaction.atomic(using=queryset.db):
            lines = []
            for item in queryset.iterator(chunk_size=2000):
                lines.append(self.write_csv_row(writer, self.to_row_dict(item)))
                if len(lines) == CSV_ROWS_PER_CHUNK:
                    yield b"".join(lines)
                    lines = []
            yield b"".join(lines)

    @cached_property
    def _preprocess_functions(self):
        return {}

    def get_preprocess_function(self, field, value, export_format):
        """Wagtail's choice of function for a cell depends on the field, the value's type and the
        format only: chosen once per combination, not once per cell."""
        key = (field, type(value), export_format)
        try:
            return self._preprocess_functions[key]
        except KeyError:
            function = self._preprocess_functions[key] = super().get_preprocess_function(field, value, export_format)
            return function

    def as_spreadsheet(self, queryset, spreadsheet_format):
        rows = queryset.count()
        limit = settings.MIZANI_EXPORT_XLSX_MAX_ROWS
        if spreadsheet_format == self.FORMAT_XLSX and rows > limit:
            # A workbook is built in memory; a CSV streams at any size.
            return self.refuse_export(f"{rows:,} rows are too many for an XLSX file (at most {limit:,}): "
                                      "download CSV instead.")
        audit_event("mizani.export", by=self.request.user, title=export_title(self.model, spreadsheet_format, rows),
                    data={"model": self.model._meta.label, "format": spreadsheet_format, "rows": rows,
                          "filters": self.audited_filters()})
        return super().as_spreadsheet(queryset, spreadsheet_format)

    def audited_filters(self):
        """The export's filters as asked; a location's also by code and name (its id alone tells an
        auditor nothing)."""
        filters = {key: values[0] if len(values) == 1 else values
                   for key, values in self.request.GET.lists() if key != "export"}
        if self.filters and self.filters.is_bound:
            self.filters.is_valid()  # cleans the form once: a location it refuses is not named
            for key, value in self.filters.form.cleaned_data.items():
                if isinstance(value, Location):
                    filters.update({f"{key}_code": value.code, f"{key}_name": value.name})
        return filters


class ScopedCreateView(SelectorMixin, generic.CreateView):
    inspect_url_name = None


class ScopedEditView(SelectorMixin, generic.EditView):
    def get_queryset(self):
        return self.scoped(include_deleted=False)


class ScopedDeleteView(SelectorMixin, generic.DeleteView):
    def get_queryset(self):
        return self.scoped(include_deleted=False)


class ScopedInspectView(SelectorMixin, generic.InspectView):
    history_url_name = None
    page_title = None  # the record's kind ("Upload", "Payroll"), not Wagtail's "Inspect"

    def get_page_title(self):
        return self.page_title or capfirst(self.model._meta.verbose_name)

    def get_object(self, queryset=None):
        return get_object_or_404(self.scoped(), pk=unquote(str(self.pk)))


class ScopedHistoryView(SelectorMixin, history.HistoryView):
    def get_base_object_queryset(self):
        return self.scoped()


class ScopedUsageView(SelectorMixin, usage.UsageView):
    def get_base_object_queryset(self):
        return self.scoped()


class InspectURLFinder(ModelAdminURLFinder):
    """Links an object to its record page, for users with the permission that page requires."""

    permission = None  # the inspect view's permission_required, set by the viewset

    def get_edit_url(self, instance):
        if self.user and not self.permission_policy.user_has_permission_for_instance(
                self.user, self.permission, instance):
            return None
        return self.construct_edit_url(instance)


class ScopedModelViewSet(ModelViewSet):
    """A ModelViewSet whose every view reads through `selector`. Copy is off: it would bypass services."""

    selector = None
    copy_view_enabled = False
    index_view_class = ScopedIndexView
    add_view_class = ScopedCreateView
    edit_view_class = ScopedEditView
    delete_view_class = ScopedDeleteView
    inspect_view_class = ScopedInspectView
    history_view_class = ScopedHistoryView
    usage_view_class = ScopedUsageView

    def get_common_view_kwargs(self, **kwargs):
        return super().get_common_view_kwargs(selector=self.selector, **kwargs)

    def get_inspect_view_kwargs(self, **kwargs):
        return super().get_inspect_view_kwargs(history_url_name=self.get_url_name("history"), **kwargs)

    @property
    def url_finder_class(self):
        """Wagtail's finder links an object wherever it is listed (the audit trail, usage) to its edit
        view, which a read-only viewset does not serve (NoReverseMatch for anyone allowed to change it):
        such a viewset links to its record page instead, or nowhere."""
        served = {pattern.name for pattern in self.get_urlpatterns()}
        if "edit" in served:
            return super().url_finder_class
        if "inspect" in served:
            return type("_InspectURLFinder", (InspectURLFinder,), {
                "permission_policy": self.permission_policy, "edit_url_name": self.get_url_name("inspect"),
                "permission": self.inspect_view_class.permission_required})
        return NullAdminURLFinder


# --- records whose every change goes through a service ------------------------------------------


class ServiceFormMixin:
    """The form's save is a service call; the service's ValidationError goes back onto the form,
    field by field, and the record page follows a success."""

    def form_valid(self, form):
        try:
            with transaction.atomic():
                return super().form_valid(form)
        except ValidationError as error:
            form.apply_service_errors(error)
            self.produced_error_message = self.get_error_message()
            return self.form_invalid(form)

    def get_success_url(self):
        return reverse(self.inspect_url_name, args=[self.object.pk])


class ServiceCreateView(ServiceFormMixin, ScopedCreateView):
    create_service = None

    def save_instance(self):
        return self.create_service(fields=self.form.core_values(), attributes=self.form.attribute_values(),
                                   by=self.request.user)


class ApprovalMixin:
    """When the operation needs approval, the view submits a request instead of applying the change."""

    def needs_approval(self, operation):
        from workflows.services import requires_approval

        return bool(operation) and requires_approval(operation)

    def submit_for_approval(self, operation, payload):
        from workflows.services import approval_submit

        request = approval_submit(operation=operation, payload=payload, by=self.request.user)
        messages.success(self.request, "Sent for approval: nothing changes until it is approved.")
        return redirect("workflows_approvals:inspect", request.pk)


class ServiceEditView(ApprovalMixin, ServiceFormMixin, ScopedEditView):
    update_service = None
    change_operation = None
    record_kwarg = None  # the service's keyword for the record: "individual", "household"...
    inspect_url_name = None

    def form_valid(self, form):
        if not self.needs_approval(self.change_operation):
            return super().form_valid(form)
        try:
            return self.submit_for_approval(self.change_operation, {
                "record": self.object.pk, "fields": form.core_values(), "attributes": form.attribute_values()})
        except ValidationError as error:
            form.apply_service_errors(error)
            self.produced_error_message = self.get_error_message()
            return self.form_invalid(form)

    def save_instance(self):
        return self.update_service(**{self.record_kwarg: self.object}, fields=self.form.core_values(),
                                   attributes=self.form.attribute_values(), by=self.request.user)


class ServiceDeleteView(ApprovalMixin, ScopedDeleteView):
    """Soft delete through `delete_service` (or a request, when deletion needs approval); a refusal is
    shown as a message on the same page."""

    delete_service = None
    delete_operation = None
    record_kwarg = None

    def delete_action(self):
        self.delete_service(**{self.record_kwarg: self.object}, by=self.request.user)

    def form_valid(self, form):
        try:
            if self.needs_approval(self.delete_operation):
                return self.submit_for_approval(self.delete_operation, {"record": self.object.pk})
            return super().form_valid(form)
        except (ValidationError, PermissionDenied) as error:
            messages.error(self.request, refusal_message(error))
            return redirect(self.request.path)


class RestoreView(SelectorMixin, View):
    """POST-only: bring back a soft-deleted record through `restore_service`."""

    restore_service = None
    record_kwarg = None
    inspect_url_name = None

    def post(self, request, pk):
        record = get_object_or_404(self.scoped(include_deleted=True), pk=pk)
        try:
            self.restore_service(**{self.record_kwarg: record}, by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        except PermissionDenied as error:
            messages.error(request, str(error) or "You may not restore this record.")
        else:
            messages.success(request, f"{record._meta.verbose_name.capitalize()} restored.")
        return redirect(self.inspect_url_name, record.pk)


class RecordViewSet(ScopedModelViewSet):
    """Registry-style records: scoped reads, service writes, soft delete and restore, a record page."""

    record_kwarg = None
    create_service = None
    update_service = None
    delete_service = None
    restore_service = None
    change_operation = None  # approval operations, when edits or deletions may need a checker
    delete_operation = None
    inspect_view_enabled = True
    add_view_class = ServiceCreateView
    edit_view_class = ServiceEditView
    delete_view_class = ServiceDeleteView

    def get_add_view_kwargs(self, **kwargs):
        return super().get_add_view_kwargs(create_service=self.create_service, **kwargs)

    def get_edit_view_kwargs(self, **kwargs):
        return super().get_edit_view_kwargs(update_service=self.update_service, record_kwarg=self.record_kwarg,
                                            change_operation=self.change_operation, **kwargs)

    def get_delete_view_kwargs(self, **kwargs):
        return super().get_delete_view_kwargs(delete_service=self.delete_service, record_kwarg=self.record_kwarg,
                                              delete_operation=self.delete_operation, **kwargs)

    @property
    def restore_view(self):
        return RestoreView.as_view(selector=self.selector, restore_service=self.restore_service,
                                   record_kwarg=self.record_kwarg,
                                   inspect_url_name=self.get_url_name("inspect"))

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [path("restore/<int:pk>/", self.restore_view, name="restore")]
