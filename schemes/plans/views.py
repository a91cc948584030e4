import json

import django_filters
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import ProtectedError, Q
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.ui.components import Component
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.views import generic

from schemes.rules.forms import CriteriaFilter
from sites.masking import can_view_sensitive, mask
from sites.models import Location
from sites.refusals import refusal_message
from sites.scoping import scope_for
from sites.viewsets import ScopedHistoryView, ScopedIndexView, ScopedInspectView
from workflows.services import approval_submit, requires_approval

from . import selectors, services, targeting
from .approvals import (
    BENEFICIARY_DATA,
    BENEFICIARY_STATUS,
    CHANGE_OPERATION,
    CLOSE_PLAN,
    ENROL_OPERATION,
    change_data_impact,
    close_counts,
    rejection_text,
)
from .catalogues import beneficiary_catalogue, plan_rules_subject
from .forms import (
    BeneficiaryDataForm,
    BulkStatusForm,
    EnrolmentForm,
    ReenrolmentForm,
    SchemaUploadForm,
    StatusChangeForm,
)
from .models import LIVE_STATUSES, BeneficiaryStatus, BenefitPlan, HouseholdBeneficiary, PlanStatus, PlanType
from .schema import export_schema, parse_schema, schema_import


class PlanIndexView(generic.IndexView):
    """The plans, each with its live beneficiaries in the user's locations; a plan's name opens its page
    (where it is activated, closed, enrolled in), its edit form stays in the row's actions where the
    user may change the plan (see _change_refusal)."""

    def get_base_queryset(self):
        return selectors.with_live_count(super().get_base_queryset(), self.request.user)

    def get_edit_url(self, instance):
        return None if _change_refusal(instance, self.request.user) else super().get_edit_url(instance)

    def _get_title_column(self, field_name, column_class=TitleColumn, **kwargs):
        return self._get_custom_column(field_name, self._get_title_column_class(column_class),
                                       get_url=self.get_inspect_url, **kwargs)


class PlanRecordView(generic.InspectView):
    """The plan page: beneficiaries by status (in the user's locations), criteria, schema, actions. An
    action the services would refuse the user (a change to an active plan without national scope) is
    not offered: the page says why instead."""

    @cached_property
    def change_refusal(self):
        return _change_refusal(self.object, self.request.user)

    def get_edit_url(self):
        return None if self.change_refusal else super().get_edit_url()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        plan = self.object
        user = self.request.user
        counts = selectors.status_counts(plan, user)
        can_change = user.has_perm("plans.change_benefitplan")
        close_refusal = _refusal(services.check_plan_close, plan=plan, by=user) if (
            can_change and plan.status == PlanStatus.ACTIVE) else ""
        context.update({
            "plan": plan,
            "counts": [(status.label, counts.get(status.value, 0), status.value) for status in BeneficiaryStatus],
            # Plan-wide only for national users: a district's user sees nothing of other districts.
            "live_count": plan.live_beneficiaries if scope_for(user).national
            else sum(counts.get(status, 0) for status in LIVE_STATUSES),
            "national": scope_for(user).national,
            "criteria": [(status.label, plan.criteria_text(status.value)) for status in
                         (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE)],
            "schema": plan.fields.order_by("sort_order", "name"),
            "score_formula": (plan.score_formula or {}).get("text", ""),
            "cutoffs": _cutoffs_by_tree(plan),
            "score_cutoff": None if plan.score_cutoff is None else services.bound_text(plan.score_cutoff),
            "can_change": can_change,
            "can_import_schema": can_change and not self.change_refusal and user.has_perm("plans.change_planfield"),
            "can_close": can_change and plan.status == PlanStatus.ACTIVE and not close_refusal,
            "refusals": [refusal for refusal in (self.change_refusal, close_refusal) if refusal] if can_change else [],
            "ended": services.plan_ended(plan),
            "can_enrol": plan.status == PlanStatus.ACTIVE and not services.plan_ended(plan)
                         and targeting.may_enrol(user, plan),
            "can_simulate": plan.status != PlanStatus.CLOSED and targeting.may_simulate(user, plan),
            "beneficiaries_url": reverse(beneficiary_namespace(plan) + ":index") + f"?plan={plan.pk}",
            "versions": selectors.plan_versions(plan),
            "rule_problems": selectors.rule_problems(plan),
        })
        return context


def _cutoffs_by_tree(plan):
    """[(location's place in the tree, cut-off)], in the tree's order by name."""
    cutoffs = {cutoff.location_id: services.bound_text(cutoff.cutoff) for cutoff in plan.cutoffs.all()}
    return [(name, cutoffs[location.pk]) for location, name in
            selectors.locations_by_tree(Location.objects.filter(pk__in=cutoffs))]


def beneficiary_namespace(plan_or_model):
    model = getattr(plan_or_model, "beneficiary_model", plan_or_model)
    return "plans_householdbeneficiary" if model is HouseholdBeneficiary else "plans_beneficiary"


class PlanEditView(generic.EditView):
    """A draft plan is edited directly; a change to an active plan is a new version that goes through
    approval (operation `plans.change`): the checkers see the diff, nothing changes until approved. A
    closed plan does not change. Every save is `services.plan_change`, so both paths keep its rules."""

    def get(self, request, *args, **kwargs):
        plan = self.get_object()
        if plan.status == PlanStatus.CLOSED:
            messages.warning(request, "This plan is closed: it no longer changes, and saving is refused.")
        elif refusal := _change_refusal(plan, request.user):
            messages.warning(request, f"{refusal} Saving is refused.")
        elif plan.status == PlanStatus.ACTIVE:
            messages.info(request, "This plan is active: saving submits the change for approval as a new "
                                   "version; nothing changes until it is approved.")
        return super().get(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            if self.object.status == PlanStatus.ACTIVE:
                approval = approval_submit(operation=CHANGE_OPERATION, by=self.request.user, payload={
                    "plan": self.object.pk, **services.plan_change_payload(form.save(commit=False))})
                messages.success(self.request, "Sent for approval: nothing changes until it is approved.")
                _warn_of_data_impact(self.request, approval)
                return redirect("workflows_approvals:inspect", approval.pk)
            return super().form_valid(form)
        except (ValidationError, PermissionDenied) as error:
            errors = ({None: [refusal_message(error)]} if isinstance(error, PermissionDenied)
                      else error.error_dict if hasattr(error, "error_dict") else {None: error.error_list})
            for name, problems in errors.items():
                form.add_error(name if name in form.fields else None, problems)
            self.produced_error_message = self.get_error_message()
            return self.form_invalid(form)

    def save_instance(self):
        # A draft's save is refused as an approved change would be (closed plan, a type change once
        # there are beneficiaries) or if the plan was activated since it was read, and recorded by the
        # service as a new version.
        change = services.plan_change_payload(self.form.save(commit=False))
        saved_version = self.object.latest_revision_id
        plan = services.plan_change(plan=self.object, change=change, by=self.request.user)
        self.unchanged = plan.latest_revision_id == saved_version
        return plan

    def get_success_message(self):
        if getattr(self, "unchanged", False):
            return f"Nothing changed in {self.object}: no new version was saved."
        return super().get_success_message()


def _change_refusal(plan, user):
    """Why `user` may not change `plan` (an active plan takes national scope), or "": said when its edit
    or schema import page opens, not only once a change is submitted; and the plan's page and list
    then offer neither."""
    return _refusal(services.check_plan_changes, plan, user)


def _refusal(check, *args, **kwargs):
    """What the service check `check` refuses, said as its refusal says it, or "" where it passes."""
    try:
        check(*args, **kwargs)
    except (ValidationError, PermissionDenied) as error:
        return refusal_message(error)
    return ""


def _warn_of_data_impact(request, approval):
    """Tell the maker of a `plans.change` what it does to the data beneficiaries hold, as its checkers
    are told (see approvals.change_data_impact)."""
    impact = change_data_impact(approval.summary)
    if impact:
        messages.warning(request, "This change affects data the plan's beneficiaries hold (nothing is rewritten): "
                                  + "; ".join(impact) + ".")


class PlanCreateView(generic.CreateView):
    def save_instance(self):
        instance = super().save_instance()
        instance.save_revision(user=self.request.user, clean=False)
        return instance


@require_http_methods(["GET", "POST"])
def plan_status(request, pk):
    """Activate a draft or close an active plan. The GET of `?action=activate` or `?action=close` is the
    confirmation (what the change does, with counts); the POST activates the plan at once, or submits
    the closing (operation plans.close: applied once approved)."""
    plan = get_object_or_404(selectors.plans_for(request.user), pk=pk)
    if not request.user.has_perm("plans.change_benefitplan"):
        raise PermissionDenied
    if request.method == "GET":
        confirmation = {"close": _close_confirmation, "activate": _activate_confirmation}.get(request.GET.get("action"))
        if confirmation is None:
            return HttpResponseNotAllowed(["POST"])
        return confirmation(request, plan)
    action = request.POST.get("action", "")
    try:
        if action == "close":
            approval = approval_submit(operation=CLOSE_PLAN, by=request.user, payload={"plan": plan.pk})
            messages.success(request, "The closing of the plan is submitted: it applies once approved (at once "
                                      "where approval is off).")
            return redirect("workflows_approvals:inspect", approval.pk)
        if action != "activate":
            raise ValidationError(f"'{action}' is not a plan status change.")
        services.plan_activate(plan=plan, by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
    else:
        messages.success(request, "The plan is activated: it is open for enrolment.")
    return redirect("plans_plan:inspect", plan.pk)


def _activate_confirmation(request, plan):
    """What activating the plan does, before it is done; a plan that cannot be activated (or a user
    who may not) is refused on its page."""
    try:
        services.check_plan_activate(plan=plan, by=request.user)
        counts = services.plan_activation_counts(plan, request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
        return redirect("plans_plan:inspect", plan.pk)
    subjects = "households" if plan.plan_type == PlanType.HOUSEHOLD else "people"
    meeting = counts["meeting_criteria"]
    return TemplateResponse(request, "plans/plan_activate.html", {
        "plan": plan, "counts": {
            "Beneficiary schema fields": counts["fields"],
            "Cut-offs by region": counts["cutoffs"],
            f"{subjects.capitalize()} in your locations meeting its criteria for potential beneficiaries now":
                f"{meeting:,}" if isinstance(meeting, int) else {
                    "none": "no criteria", "unchecked": "its criteria no longer check (see the plan's page)"}[meeting]},
        "needs_change_approval": requires_approval(CHANGE_OPERATION),
        "page_title": f"Activate {plan}", "header_icon": "clipboard-list"})


def _close_confirmation(request, plan):
    """What closing the plan would do, before it is submitted; a plan that cannot be closed (or a
    user who may not) is refused on its page."""
    try:
        services.check_plan_close(plan=plan, by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
        return redirect("plans_plan:inspect", plan.pk)
    # Payments build on plans: imported here, so that plans do not need payments to load.
    from schemes.payments.models import PAYROLL_STATUS_PHRASES
    from schemes.payments.selectors import payrolls_left_open

    return TemplateResponse(request, "plans/plan_close.html", {
        "plan": plan, "counts": close_counts(services.plan_close_counts(plan)),
        "payrolls_left_open": [(payroll, PAYROLL_STATUS_PHRASES[payroll.status])
                               for payroll in payrolls_left_open(plan)],
        "closing_reason": services.CLOSING_REASON, "needs_approval": requires_approval(CLOSE_PLAN),
        "page_title": f"Close {plan}", "header_icon": "clipboard-list"})


def enrol(request, pk):
    """Criteria -> preview (counts and a sample) -> submitted for approval (operation plans.enrol).
    With `?reenrol=<beneficiary id>`: one rejected person (or household) enrolled again."""
    plan = get_object_or_404(selectors.plans_for(request.user), pk=pk)
    if "reenrol" in request.GET:
        return _reenrol(request, plan)
    if not targeting.may_enrol(request.user, plan):
        raise PermissionDenied
    # `?target_status=ACTIVE` opens the form on that status, the rule box holding the plan's rule for it.
    target = request.GET.get("target_status")
    target = target if target in services.ENROL_TARGETS else BeneficiaryStatus.POTENTIAL
    initial = {"target_status": target, "rule": plan.criteria_text(target)}
    form = EnrolmentForm(request.POST or None, initial=initial, plan=plan, user=request.user)
    preview = None
    if request.method == "POST" and form.is_valid():
        criteria, target = form.cleaned_data["rule"], form.cleaned_data["target_status"]
        rule = criteria["rule"]
        try:
            if request.POST.get("submit") == "approval":
                approval = approval_submit(operation="plans.enrol", by=request.user, payload={
                    "plan": plan.pk, "rule": rule, "text": criteria["text"], "target_status": target})
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
        "plan_rules": [(status.label.lower(), plan.criteria_text(status)) for status in services.ENROL_TARGETS
                       if plan.criteria_text(status)],
    })


def _reenrol(request, plan):
    """The GET names the rejection and its reason (the confirmation); the POST submits enrolling them
    again, with why, as operation plans.enrol (applied once approved)."""
    model, beneficiary_id = plan.beneficiary_model, request.GET["reenrol"]
    if not beneficiary_id.isdigit():
        raise Http404("No such beneficiary.")
    rejected = _beneficiary(request, int(beneficiary_id), model)
    if rejected.plan_id != plan.pk:
        raise Http404("No such beneficiary in this plan.")
    record_url = reverse(f"{beneficiary_namespace(model)}:inspect", args=[rejected.pk])
    try:
        rejected = services.reenrolment_check(beneficiary=rejected, by=request.user)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, refusal_message(error))
        return redirect(record_url)
    form = ReenrolmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            approval = approval_submit(operation=ENROL_OPERATION, by=request.user, payload={
                "plan": plan.pk, "reenrol": rejected.pk, "reason": form.cleaned_data["reason"]})
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, refusal_message(error))
        else:
            messages.success(request, "Enrolling them again is submitted: it applies once approved (at once where "
                                      "approval is off).")
            return redirect("workflows_approvals:inspect", approval.pk)
    return TemplateResponse(request, "plans/reenrol.html", {
        "plan": plan, "beneficiary": rejected, "rejection": rejection_text(rejected), "form": form,
        "needs_approval": requires_approval(ENROL_OPERATION), "record_url": record_url,
        "page_title": f"Enrol {rejected.subject} again", "header_icon": "group"})


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
            messages.error(self.request, refusal_message(error))
            return redirect(self.request.path)


# What an export says of the person or household after its name (selectors.with_export_columns
# annotates the rest), so that beneficiaries can be told apart and placed.
SUBJECT_EXPORT_FIELDS = {"individual": ("first_name", "last_name", "national_id", "dob", "sex"), "household": ("code",)}
SUBJECT_EXPORT_COLUMNS = {
    "individual": ["individual.national_id", "individual.dob", "individual.sex", "location_code", "location_name",
                   "household_code"],
    "household": ["location_code", "location_name", "head_name", "size"],
}


class BeneficiaryIndexView(ScopedIndexView):
    default_ordering = "-id"
    results_template_name = "plans/beneficiary_index_results.html"
    # As the registry's exports and lists head the same values (schemes.registry.views).
    export_headings = {"plan.code": "Plan", "individual.national_id": "National ID", "individual.dob": "Date of birth",
                       "individual.sex": "Sex", "location_code": "Location code", "location_name": "Location",
                       "household_code": "Household", "head_name": "Head", "size": "Members"}

    @cached_property
    def subject(self):
        return self.model.SUBJECT

    @cached_property
    def filterset_class(self):
        """Plan, status and criteria. Filtered to one plan, the criteria name what the plan's own rules
        do (its type's fields and the plan's attributes); otherwise the person's or household's fields.
        Filtered to one plan, also whether they meet its criteria for their status (the list's "Meets
        criteria" column: those whose status has no criteria are neither yes nor no)."""
        plan = self.plan or BenefitPlan(plan_type=_plan_type_of(self.model))  # unsaved: no attributes
        criteria = CriteriaFilter(subject=plan_rules_subject(plan) if self.plan else self.subject,
                                  catalogue=lambda: beneficiary_catalogue(plan))
        meta = type("Meta", (), {"model": self.model, "fields": ["plan", "status"]})
        filters = {"Meta": meta, "criteria": criteria}
        if self.plan:
            filters["meets"] = django_filters.ChoiceFilter(
                label="Meets the criteria of their status", choices=[("yes", "Yes"), ("no", "No")],
                method=lambda queryset, name, value: queryset.filter(meets_criteria=value == "yes"))
        return type(f"{self.model.__name__}FilterSet", (WagtailFilterSet,), filters)

    @cached_property
    def list_export(self):
        return ["id", "plan.code", f"{self.subject}_id", str(self.subject), *SUBJECT_EXPORT_COLUMNS[self.subject],
                "status", "enrolled_at", "status_changed_at", "reason", *self.attribute_columns]

    def to_row_dict(self, item):
        row = {**super().to_row_dict(item), "status": item.get_status_display()}  # as people read it
        if self.subject == "individual":
            row["individual.sex"] = item.individual.sex_shown
            if not self.shows_sensitive:  # as the individuals export masks it
                row["individual.national_id"] = mask(row["individual.national_id"])
        return row

    def export_attributes(self):
        """The plan's schema fields, when the list is filtered to one plan (plans differ in them)."""
        return self.plan.schema().definitions if self.plan else []

    @cached_property
    def plan(self):
        """The plan the list is filtered to, if one: its criteria can then be checked per row."""
        plan_id = self.request.GET.get("plan", "")
        plans = selectors.plans_for(self.request.user).filter(plan_type=_plan_type_of(self.model))
        return plans.filter(pk=plan_id).first() if plan_id.isdigit() else None

    def get_base_queryset(self):
        queryset = super().get_base_queryset().select_related("plan", self.subject)
        if self.is_export:  # its columns only: the subject's, the plan's code, the annotations
            subject_fields = (f"{self.subject}__{field}" for field in SUBJECT_EXPORT_FIELDS[self.subject])
            queryset = selectors.with_export_columns(queryset, self.request.user).only(
                "id", "plan", "plan__code", self.subject, *subject_fields, "status", "enrolled_at", "status_changed_at",
                "reason", "attributes")
        return selectors.with_criteria_check(queryset, self.plan) if self.plan else queryset

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # The bulk change selects by status alone: offered under criteria, "these beneficiaries" would
        # be more than the list shows.
        criteria = self.request.GET.get("criteria", "").strip()
        if self.plan and not criteria and self.request.user.has_perm(f"plans.change_{self.model._meta.model_name}"):
            statuses = self.request.GET.getlist("status")
            query = "&".join([f"status={status}" for status in statuses if status in BeneficiaryStatus.values])
            context["bulk_status_url"] = reverse("plans_plan:bulk_status", args=[self.plan.pk]) + (
                f"?{query}" if query else "")
        return context

    @cached_property
    def columns(self):
        inspect = self.inspect_url_name
        criteria = [Column("meets_criteria", label="Meets criteria",
                           accessor=lambda obj: {True: "Yes", False: "No"}.get(obj.meets_criteria, "—"))
                    ] if self.plan else []
        return [
            TitleColumn(self.subject, label=self.subject.capitalize(), accessor=self.subject,
                        get_url=lambda obj: reverse(inspect, args=[obj.pk])),
            Column("plan", label="Plan", accessor="plan.code"),
            Column("status", label="Status", accessor="get_status_display", sort_key="status"),
            Column("enrolled_at", label="Enrolled", accessor=lambda obj: f"{timezone.localtime(obj.enrolled_at):%Y-%m-%d}",
                   sort_key="enrolled_at"),
        ] + criteria


def _plan_type_of(model):
    return "HOUSEHOLD" if model is HouseholdBeneficiary else "INDIVIDUAL"


class BeneficiaryRecordView(ScopedInspectView):
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        beneficiary = self.object
        user = self.request.user
        namespace = beneficiary_namespace(type(beneficiary))
        context.update({
            "beneficiary": beneficiary,
            "subject_url": reverse(f"registry_{beneficiary.SUBJECT}:inspect", args=[beneficiary.subject.pk]),
            "transitions": [t.name for t in beneficiary.get_available_status_transitions()],
            "can_change": user.has_perm(f"plans.change_{type(beneficiary)._meta.model_name}"),
            "status_url": reverse(f"{namespace}:change_status", args=[beneficiary.pk]),
            "data_url": reverse(f"{namespace}:edit_data", args=[beneficiary.pk]),
            "reenrol_url": _reenrol_url(beneficiary, user),
            "needs_approval": requires_approval(BENEFICIARY_STATUS),
            "plan_data": beneficiary.plan.schema().display(
                beneficiary.attributes, show_sensitive=user.has_perm("registry.view_sensitive_data")),
            "history": selectors.beneficiary_history(beneficiary, user),
            "history_url": reverse(f"{namespace}:history", args=[beneficiary.pk]),
        })
        return context


class BeneficiaryHistoryView(ScopedHistoryView):
    """Whoever may read the beneficiary may read its history (its page shows the latest entries); a
    change of plan data reads old -> new per field, masked as its page masks them."""

    any_permission_required = ["view", "add", "change", "delete"]
    header_buttons = []  # Wagtail's "Edit": beneficiaries have no edit form (it linked to this page)

    def get_base_queryset(self):
        """Its own entries and the plan's entry of the enrolment by criteria that enrolled it."""
        queryset = super().get_base_queryset()
        enrolment = selectors.enrolment_entry(self.object)
        if enrolment is None:
            return queryset
        return self._annotate_queryset(queryset.model.objects.filter(
            Q(pk__in=queryset.values("pk")) | Q(pk=enrolment.pk)))

    @cached_property
    def columns(self):
        definitions = self.object.plan.schema().by_name
        show_sensitive = can_view_sensitive(self.request.user)

        def described(entry):
            if entry.action == "mizani.enrol":  # the plan's entry of the enrolment by criteria that enrolled it
                return selectors.enrolled_by_criteria(entry.data)
            changes = selectors.plan_data_changes(entry, definitions, show_sensitive=show_sensitive)
            return "; ".join([entry.message, *(change_text(*change) for change in changes)])

        return [Column("message", label="Action", accessor=described), *super().columns[1:]]


def change_text(label, old, new):
    """"Income: 100 → 150" (a field named alone where the entry kept no values)."""
    if old is None and new is None:
        return label
    return f"{label}: {'—' if old is None else old} → {'—' if new is None else new}"


def _reenrol_url(beneficiary, user):
    """Where a rejection made by mistake is corrected (enrolling them again), if it can be: the page
    it leads to names the rejection first."""
    if beneficiary.status != BeneficiaryStatus.REJECTED or beneficiary.plan.status != PlanStatus.ACTIVE or (
            not user.has_perm(f"plans.add_{type(beneficiary)._meta.model_name}")):
        return None
    return reverse("plans_plan:enrol", args=[beneficiary.plan_id]) + f"?reenrol={beneficiary.pk}"


def _beneficiary(request, pk, model):
    selector = selectors.household_beneficiaries_for if model is HouseholdBeneficiary else selectors.beneficiaries_for
    return get_object_or_404(selector(request.user).select_related("plan"), pk=pk)


def beneficiary_status_view(model):
    """A status change of one beneficiary: the GET (`?action=`) is the confirmation (old -> new status,
    the reason where the transition needs one, whether they meet the criteria before activation); the
    POST applies it, or submits it for approval where a workflow for operation plans.beneficiary_status
    requires one."""

    @require_http_methods(["GET", "POST"])
    def change_status(request, pk):
        data = request.POST if request.method == "POST" else request.GET
        if "action" not in data:
            return HttpResponseNotAllowed(["POST"])
        beneficiary = _beneficiary(request, pk, model)
        record_url = reverse(f"{beneficiary_namespace(model)}:inspect", args=[beneficiary.pk])
        form = StatusChangeForm(data)
        try:
            if not form.is_valid():
                raise ValidationError(form.errors.as_text())
            action = form.cleaned_data["action"]
            _, _, target = services.beneficiary_check_status(beneficiary=beneficiary, action=action, by=request.user)
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, refusal_message(error))
            return redirect(record_url)
        needs_approval = requires_approval(BENEFICIARY_STATUS)
        if request.method == "POST":
            reason = form.cleaned_data["reason"]
            try:
                if needs_approval:
                    approval = approval_submit(operation=BENEFICIARY_STATUS, by=request.user, payload={
                        "model": model._meta.model_name, "beneficiary": beneficiary.pk, "action": action,
                        "reason": reason})
                    messages.success(request, "The status change is submitted for approval: nothing changes until "
                                              "it is approved.")
                    return redirect("workflows_approvals:inspect", approval.pk)
                services.beneficiary_change_status(beneficiary=beneficiary, action=action, reason=reason,
                                                   by=request.user)
            except (ValidationError, PermissionDenied) as error:
                if hasattr(error, "error_dict") and set(error.error_dict) <= set(form.fields):
                    form.add_error(None, error)  # on its field: "Say why"
                else:
                    form.add_error(None, refusal_message(error))
            else:
                messages.success(request, "Status changed.")
                return redirect(record_url)
        return TemplateResponse(request, "plans/beneficiary_status.html", {
            "beneficiary": beneficiary, "form": form, "action": action, "target": target,
            "needs_reason": action in services.REASON_REQUIRED, "needs_approval": needs_approval,
            "fails_criteria": action == "activate"
            and selectors.meets_criteria_as(beneficiary, BeneficiaryStatus.ACTIVE) is False,
            "active_criteria": beneficiary.plan.criteria_text(BeneficiaryStatus.ACTIVE),
            "record_url": record_url, "page_title": f"{action.capitalize()} {beneficiary.subject}",
            "header_icon": "user"})

    return change_status


def beneficiary_data_view(model):
    """Edit a beneficiary's plan data (the plan's schema fields): saved at once, or submitted for
    approval where a workflow for operation plans.beneficiary_data requires one."""

    def edit_data(request, pk):
        beneficiary = _beneficiary(request, pk, model)
        if not request.user.has_perm(f"plans.change_{model._meta.model_name}"):
            raise PermissionDenied
        form = BeneficiaryDataForm(request.POST or None, beneficiary=beneficiary,
                                   show_sensitive=request.user.has_perm("registry.view_sensitive_data"))
        inspect = f"{beneficiary_namespace(model)}:inspect"
        needs_approval = requires_approval(BENEFICIARY_DATA)
        if request.method == "POST" and form.is_valid():
            try:
                if needs_approval:
                    approval = approval_submit(operation=BENEFICIARY_DATA, by=request.user, payload={
                        "model": model._meta.model_name, "beneficiary": beneficiary.pk,
                        "attributes": form.attribute_values()})
                    messages.success(request, "The change of plan data is submitted for approval: nothing changes "
                                              "until it is approved.")
                    return redirect("workflows_approvals:inspect", approval.pk)
                services.beneficiary_update_attributes(beneficiary=beneficiary, attributes=form.attribute_values(),
                                                       by=request.user)
            except ValidationError as error:
                form.apply_service_errors(error)
            except PermissionDenied as error:
                form.add_error(None, refusal_message(error))
            else:
                messages.success(request, "Plan data saved.")
                return redirect(inspect, beneficiary.pk)
        return TemplateResponse(request, "plans/beneficiary_data.html", {
            "beneficiary": beneficiary, "form": form, "cancel_url": reverse(inspect, args=[beneficiary.pk]),
            "needs_approval": needs_approval, "page_title": f"Plan data of {beneficiary}", "header_icon": "user"})

    return edit_data


def bulk_status(request, pk):
    """One status change for many beneficiaries of a plan (those in the user's locations, in the
    ticked statuses): a preview, then applied or sent for approval (operation plans.bulk_status)."""
    plan = get_object_or_404(selectors.plans_for(request.user), pk=pk)
    if not request.user.has_perm(f"plans.change_{plan.beneficiary_model._meta.model_name}"):
        raise PermissionDenied
    form = BulkStatusForm(request.POST or None, initial={"statuses": request.GET.getlist("status")})
    preview = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            preview = services.bulk_status_preview(plan=plan, action=data["action"], by=request.user,
                                                   statuses=data["statuses"])
            if request.POST.get("submit") == "apply":
                approval = approval_submit(operation="plans.bulk_status", by=request.user, payload={
                    "plan": plan.pk, "action": data["action"], "reason": data["reason"],
                    "statuses": data["statuses"]})
                messages.success(request, "Status change submitted: it applies once approved (at once where "
                                          "approval is off).")
                return redirect("workflows_approvals:inspect", approval.pk)
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, refusal_message(error))
            preview = None
    return TemplateResponse(request, "plans/bulk_status.html", {
        "plan": plan, "form": form, "preview": preview, "page_title": f"Change statuses in {plan}",
        "header_icon": "group",
        "list_url": reverse(beneficiary_namespace(plan) + ":index") + f"?plan={plan.pk}"})


class PlansSection(Component):
    """The plans and statuses on a household's record page (a person's record shows theirs itself:
    registry.selectors.person_enrolments, their household's included)."""

    template_name = "plans/person_plans_section.html"

    def __init__(self, memberships, inspect_url_name):
        self.memberships, self.inspect_url_name = memberships, inspect_url_name

    def get_context_data(self, parent_context=None):
        return {"memberships": list(self.memberships), "inspect_url_name": self.inspect_url_name}


def household_plans_section(request, household):
    if not request.user.has_perm("plans.view_householdbeneficiary"):
        return None
    return PlansSection(selectors.plans_of_household(household, request.user), "plans_householdbeneficiary:inspect")


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
    if request.method == "GET" and (refusal := _change_refusal(plan, request.user)):
        messages.warning(request, f"{refusal} Importing is refused.")
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > 1_000_000:
                raise ValidationError("The file is larger than 1 MB.")
            data = json.loads(upload.read().decode("utf-8-sig"))
            result = schema_import(plan=plan, data=data, by=request.user)
        except (ValueError, UnicodeDecodeError) as error:
            errors = [f"The file is not valid JSON: {error}."]
        except ValidationError as error:
            errors = error.messages
        except PermissionDenied as error:
            errors = [refusal_message(error)]
        else:
            for note in parse_schema(data, plan_type=plan.plan_type).notes:
                messages.info(request, note)
            if isinstance(result, list):
                saved_version = plan.latest_revision_id
                plan.refresh_from_db(fields=["latest_revision"])
                if plan.latest_revision_id == saved_version:
                    messages.info(request, "The plan's schema is already this one: nothing changed, no new version "
                                           "was saved.")
                else:
                    messages.success(request, f"Schema imported: {len(result)} field{'' if len(result) == 1 else 's'}.")
                return redirect("plans_plan:inspect", plan.pk)
            messages.success(request, "The new schema is a change to an active plan: sent for approval.")
            _warn_of_data_impact(request, result)
            return redirect("workflows_approvals:inspect", result.pk)
    return TemplateResponse(request, "plans/schema_import.html", {
        "plan": plan, "form": form, "errors": errors, "page_title": "Import a beneficiary schema",
        "header_icon": "upload"})
