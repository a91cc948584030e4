from wagtail import hooks

from .views import household_plans_section
from .viewsets import PlansViewSetGroup


@hooks.register("register_admin_viewset")
def register_plan_viewsets():
    return PlansViewSetGroup()


@hooks.register("register_household_record_section")
def plans_on_the_household_record(request, household):
    return household_plans_section(request, household)
