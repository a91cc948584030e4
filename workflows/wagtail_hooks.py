from django import forms
from django.core.exceptions import ValidationError
from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.menu import MenuItem
from wagtail.admin.panels import FieldPanel, FieldRowPanel, InlinePanel, ObjectList
from wagtail.admin.ui.tables import Column
from wagtail.snippets.models import register_snippet
from wagtail.snippets.views.snippets import SnippetViewSet

from . import selectors, services, views
from .models import WorkflowDefinition
from .operations import operation_choices

APPROVAL_URLS = [
    path("", views.approvals_index, name="index"),
    path("<int:pk>/", views.approval_detail, name="inspect"),
    path("<int:pk>/decide/", views.approval_decide, name="decide"),
    path("<int:pk>/cancel/", views.approval_cancel, name="cancel"),
]
JOB_URLS = [
    path("", views.jobs_index, name="index"),
    path("<int:pk>/", views.job_detail, name="inspect"),
    path("<int:pk>/status/", views.job_status, name="status"),
    path("<int:pk>/cancel/", views.job_cancel, name="cancel"),
]


@hooks.register("register_admin_urls")
def workflow_urls():
    return [
        path("approvals/", include((APPROVAL_URLS, "workflows_approvals"))),
        path("jobs/", include((JOB_URLS, "workflows_jobs"))),
    ]


class ApprovalsMenuItem(MenuItem):
    """'Approvals' with the number of requests waiting for the user."""

    def render_component(self, request):
        waiting = selectors.inbox_for(request.user).count()
        label = f"Approvals ({waiting})" if waiting else "Approvals"
        return MenuItem(label, self.url, name=self.name, icon_name=self.icon_name,
                        order=self.order).render_component(request)


@hooks.register("register_admin_menu_item")
def approvals_menu_item():
    return ApprovalsMenuItem("Approvals", reverse("workflows_approvals:index"), name="approvals", icon_name="tasks",
                             order=150)


@hooks.register("register_admin_menu_item")
def jobs_menu_item():
    return MenuItem("Background jobs", reverse("workflows_jobs:index"), name="jobs", icon_name="time", order=960)


class WorkflowDefinitionForm(WagtailAdminModelForm):
    operation = forms.ChoiceField(choices=operation_choices)

    def clean(self):
        """Refuse a workflow no request could complete (each step is checked on its own by its model)."""
        cleaned_data = super().clean()
        steps = self.formsets["steps"]
        if cleaned_data.get("requires_approval") and steps.is_valid():
            try:
                services.workflow_steps_check([form.instance for form in steps.ordered_forms])
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned_data


class WorkflowDefinitionViewSet(SnippetViewSet):
    """Scheme administrators edit who approves what; every save is a revision in the history."""

    model = WorkflowDefinition
    icon = "tasks"
    # The menu, the pages and the messages all say "approval workflow(s)" (the model's verbose names).
    menu_order = 810
    add_to_admin_menu = True
    list_display = ["__str__", Column("requires_approval", label="Requires approval",
                                      accessor=lambda definition: "Yes" if definition.requires_approval else "No"),
                    "updated_at"]
    list_filter = ["requires_approval"]
    edit_handler = ObjectList([
        FieldPanel("operation"),
        FieldRowPanel([FieldPanel("min_total"), FieldPanel("requires_approval")]),
        FieldPanel("description"),
        InlinePanel("steps", heading="Steps, in order", label="Step", min_num=0),
    ], base_form_class=WorkflowDefinitionForm)


register_snippet(WorkflowDefinitionViewSet)
