from wagtail import hooks

from .views import person_benefits_section
from .viewsets import PaymentsViewSetGroup


@hooks.register("register_admin_viewset")
def register_payment_viewsets():
    return PaymentsViewSetGroup()


@hooks.register("register_individual_record_section")
def benefits_on_the_person_record(request, person):
    return person_benefits_section(request, person)
