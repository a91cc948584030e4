from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from workflows.services import approval_submit

from . import selectors, targeting
from .forms import SimulationForm


def _show_errors(form, error):
    """A service's ValidationError on the form: under the field it names, else above the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def simulate_view(request, pk):
    """Criteria, score formula and cut-offs -> coverage and cost by region, and a sample -> "Enrol
    these" submits the same enrolment for approval (operation plans.enrol). The enrolment is
    simulated again on submission: only a valid simulation is sent."""
    plan = get_object_or_404(selectors.plans_for(request.user), pk=pk)
    if not targeting.may_simulate(request.user, plan):
        raise PermissionDenied
    # Those who may only change the plan simulate; "Enrol these" is for those who may enrol.
    may_enrol = targeting.may_enrol(request.user, plan)
    form = SimulationForm(request.POST or None, plan=plan, regions=targeting.regions_for(request.user),
                          user=request.user)
    result = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = targeting.simulate(plan=plan, rule=data["criteria"]["rule"], scoring=form.scoring(),
                                        by=request.user, target_status=data["target_status"], amount=data["amount"])
            if request.POST.get("submit") == "enrol" and may_enrol:
                approval = approval_submit(operation="plans.enrol", by=request.user, payload={
                    "plan": plan.pk, "rule": data["criteria"]["rule"], "text": data["criteria"]["text"],
                    "target_status": data["target_status"], "scoring": result["scoring"],
                    "amount": None if data["amount"] is None else str(data["amount"])})
                messages.success(request, "Enrolment sent for approval: nobody is enrolled until it is approved.")
                return redirect("workflows_approvals:inspect", approval.pk)
        except ValidationError as error:
            _show_errors(form, error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
    return TemplateResponse(request, "plans/simulation.html", {
        "plan": plan, "form": form, "result": result, "may_enrol": may_enrol, "page_title": f"Targeting simulation: {plan}",
        "header_icon": "group",
    })
