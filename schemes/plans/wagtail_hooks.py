from wagtail import hooks

from .views import person_plans_section
from .viewsets import PlansViewSetGroup


@hooks.register("register_admin_viewset")
def register_plan_viewsets():
    return PlansViewSetGroup()


@hooks.register("register_individual_record_section")
def plans_on_the_record(request, person):
    return person_plans_section(request, person)
