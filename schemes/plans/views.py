import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import ProtectedError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.text import slugify
from django.views.decorators.http import require_POST
from django_fsm import TransitionNotAllowed
from wagtail.admin.ui.components import Component
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.views import generic

from sites.viewsets import ScopedIndexView, ScopedInspectView
from workflows.services import approval_submit

from . import selectors, services
from .forms import EnrolmentForm, SchemaUploadForm, StatusChangeForm
from .models import BeneficiaryStatus, PlanStatus
from .schema import export_schema, schema_import


def _messages_of(error):
    return " ".join(getattr(error, "messages", [str(error)]))


class PlanRecordView(generic.InspectView):
    """The plan page: beneficiaries by status (in the user's locations), criteria, schema, actions."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        plan = self.object
        counts = selectors.status_counts(plan, self.request.user)
        context.update({
            "plan": plan,
            "counts": [(status.label, counts.get(status.value, 0), status.value) for status in BeneficiaryStatus],
            "criteria": [(status.label, plan.criteria_text(status.value)) for status in
                         (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE)],
            "schema": plan.fields.order_by("sort_order", "name"),
            "can_change": self.request.user.has_perm("plans.change_benefitplan"),
            "can_enrol": plan.status == PlanStatus.ACTIVE and self.request.user.has_perm("plans.add_beneficiary"),
            "beneficiaries_url": reverse("plans_beneficiary:index") + f"?plan={plan.pk}",
        })
        return context


@require_POST
def plan_status(request, pk):
    plan = get_object_or_404(selectors.plans_for(request.user), pk=pk)
    if not request.user.has_perm("plans.change_benefitplan"):
        raise PermissionDenied
    action = request.POST.get("action", "")
    service = {"activate": services.plan_activate, "close": services.plan_close}.get(action)
    try:
        if service is None:
            raise ValidationError(f"'{action}' is not a plan status change.")
        service(plan=plan, by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _messages_of(error))
    except TransitionNotAllowed:
        messages.error(request, f"A {plan.get_status_display().lower()} plan cannot be {action}d.")
    else:
        messages.success(request, f"The plan is {action}d.")
    return redirect("plans_plan:inspect", plan.pk)


def enrol(request, pk):
    """Criteria -> preview (counts and a sample) -> submitted for approval (operation plans.enrol)."""
    plan = get_object_or_404(selectors.plans_for(request.user), pk=pk)
    initial = {"target_status": BeneficiaryStatus.POTENTIAL,
               "rule": plan.criteria_text(BeneficiaryStatus.POTENTIAL)}
    form = EnrolmentForm(request.POST or None, initial=initial)
    preview = None
    if request.method == "POST" and form.is_valid():
        rule, target = form.cleaned_data["rule"], form.cleaned_data["target_status"]
        try:
            if request.POST.get("submit") == "approval":
                approval = approval_submit(operation="plans.enrol", by=request.user,
                                           payload={"plan": plan.pk, "rule": rule, "target_status": target})
                messages.success(request, "Enrolment sent for approval: nobody is enrolled until it is approved.")
                return redirect("workflows_approvals:inspect", approval.pk)
            preview = services.enrolment_preview(plan=plan, rule=rule, target_status=target, by=request.user)
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, errors in error.message_dict.items():
                    form.add_error("rule" if field == "criteria" else None, errors)
            else:
                form.add_error(None, error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
    return TemplateResponse(request, "plans/enrol.html", {
        "plan": plan, "form": form, "preview": preview, "page_title": f"Enrol in {plan}", "header_icon": "group",
    })


class PlanDeleteView(generic.DeleteView):
    """A plan that has beneficiaries is closed, not deleted: say so instead of failing."""

    def delete_action(self):
        try:
            super().delete_action()
        except ProtectedError:
            raise ValidationError(f"{self.object} has beneficiaries: close it instead of deleting it.") from None

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except ValidationError as error:
            messages.error(self.request, _messages_of(error))
            return redirect(self.request.path)


class BeneficiaryIndexView(ScopedIndexView):
    default_ordering = "-enrolled_at"
    list_filter = ["plan", "status"]
    list_export = ["id", "plan.code", "individual_id", "individual.first_name", "individual.last_name", "status",
                   "enrolled_at", "status_changed_at", "reason"]

    @cached_property
    def plan(self):
        """The plan the list is filtered to, if one: its criteria can then be checked per row."""
        plan_id = self.request.GET.get("plan", "")
        return selectors.plans_for(self.request.user).filter(pk=plan_id).first() if plan_id.isdigit() else None

    def get_base_queryset(self):
        queryset = super().get_base_queryset().select_related("plan", "individual")
        return selectors.with_criteria_check(queryset, self.plan) if self.plan else queryset

    @cached_property
    def columns(self):
        inspect = self.inspect_url_name
        criteria = [Column("meets_criteria", label="Meets criteria",
                           accessor=lambda obj: {True: "Yes", False: "No"}.get(obj.meets_criteria, "—"))
                    ] if self.plan else []
        return [
            TitleColumn("individual", label="Person", accessor="individual",
                        get_url=lambda obj: reverse(inspect, args=[obj.pk])),
            Column("plan", label="Plan", accessor="plan.code"),
            Column("status", label="Status", accessor="get_status_display", sort_key="status"),
            Column("enrolled_at", label="Enrolled", accessor=lambda obj: f"{obj.enrolled_at:%Y-%m-%d}",
                   sort_key="enrolled_at"),
        ] + criteria


class BeneficiaryRecordView(ScopedInspectView):
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        beneficiary = self.object
        context.update({
            "beneficiary": beneficiary,
            "transitions": [t.name for t in beneficiary.get_available_status_transitions()],
            "can_change": self.request.user.has_perm("plans.change_beneficiary"),
            "status_url": reverse("plans_beneficiary:change_status", args=[beneficiary.pk]),
        })
        return context


@require_POST
def beneficiary_status(request, pk):
    beneficiary = get_object_or_404(selectors.beneficiaries_for(request.user), pk=pk)
    form = StatusChangeForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors.as_text())
        services.beneficiary_change_status(beneficiary=beneficiary, action=form.cleaned_data["action"],
                                           reason=form.cleaned_data["reason"], by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _messages_of(error))
    else:
        messages.success(request, "Status changed.")
    return redirect("plans_beneficiary:inspect", beneficiary.pk)


def person_plans_section(request, person):
    """The plans and statuses on a person's record page (registry's record-section hook)."""

    class PlansSection(Component):
        template_name = "plans/person_plans_section.html"

        def get_context_data(self, parent_context=None):
            return {"memberships": list(selectors.plans_of_person(person, request.user)),
                    "inspect_url_name": "plans_beneficiary:inspect"}

    return PlansSection() if request.user.has_perm("plans.view_beneficiary") else None



def schema_export(request, pk):
    """The plan's beneficiary schema as a JSON Schema file (openIMIS beneficiary_data_schema)."""
    plan = get_object_or_404(selectors.plans_for(request.user), pk=pk)
    response = JsonResponse(export_schema(plan), json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{slugify(plan.code)}-schema.json"'
    return response


def schema_import_view(request, pk):
    plan = get_object_or_404(selectors.plans_for(request.user), pk=pk)
    if not request.user.has_perm("plans.change_planfield"):
        raise PermissionDenied
    form = SchemaUploadForm(request.POST or None, request.FILES or None)
    errors = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > 1_000_000:
                raise ValidationError("The file is larger than 1 MB.")
            data = json.loads(upload.read().decode("utf-8-sig"))
            fields = schema_import(plan=plan, data=data, by=request.user)
        except (ValueError, UnicodeDecodeError) as error:
            errors = [f"The file is not valid JSON: {error}."]
        except ValidationError as error:
            errors = error.messages
        else:
            messages.success(request, f"Schema imported: {len(fields)} fields.")
            return redirect("plans_plan:inspect", plan.pk)
    return TemplateResponse(request, "plans/schema_import.html", {
        "plan": plan, "form": form, "errors": errors, "page_title": "Import a beneficiary schema",
        "header_icon": "upload"})
