"""Admin views that read through a selector, so every URL a viewset registers (index, results, export,
inspect, edit, delete, history, usage) sees only what the user may see; anything else is a 404."""

from django.shortcuts import get_object_or_404
from wagtail.admin.views import generic
from wagtail.admin.views.generic import history, usage
from wagtail.admin.views.generic.models import unquote
from wagtail.admin.viewsets.model import ModelViewSet

from .audit import audit_event
from .spreadsheets import SafeSpreadsheetExportMixin


class SelectorMixin:
    """`selector(user, include_deleted=...)` is passed in by the viewset."""

    selector = None

    def scoped(self, *, include_deleted=True):
        return self.selector(self.request.user, include_deleted=include_deleted)


class ScopedIndexView(SelectorMixin, SafeSpreadsheetExportMixin, generic.IndexView):
    def get_base_queryset(self):
        return self.scoped(include_deleted=False)

    def as_spreadsheet(self, queryset, spreadsheet_format):
        audit_event("mizani.export", by=self.request.user, data={
            "model": self.model._meta.label,
            "format": spreadsheet_format,
            "rows": queryset.count(),
            "filters": {key: value for key, value in self.request.GET.items() if key != "export"},
        })
        return super().as_spreadsheet(queryset, spreadsheet_format)


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
    def get_object(self, queryset=None):
        return get_object_or_404(self.scoped(), pk=unquote(str(self.pk)))


class ScopedHistoryView(SelectorMixin, history.HistoryView):
    def get_base_object_queryset(self):
        return self.scoped()


class ScopedUsageView(SelectorMixin, usage.UsageView):
    def get_base_object_queryset(self):
        return self.scoped()


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
