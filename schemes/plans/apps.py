from django.apps import AppConfig


class PlansConfig(AppConfig):
    """Benefit plans (programmes), their schema and criteria, beneficiaries and enrolment."""

    name = "schemes.plans"
    label = "plans"
    verbose_name = "Benefit plans"

    def ready(self):
        from schemes.registry.demo import registry_reset
        from schemes.rules.subjects import Subject, register_subject

        from .catalogues import candidate_catalogue, plan_for_rules, subjects_for
        from .demo import forget_demo_beneficiaries

        registry_reset.connect(forget_demo_beneficiaries, dispatch_uid="plans_forget_beneficiaries")
        # A plan's criteria and score name its type's fields and the plan's own attributes.
        register_subject("plan", Subject(
            "Possible beneficiaries",
            catalogue=lambda argument: candidate_catalogue(plan_for_rules(argument)),
            queryset_for=lambda user, argument: subjects_for(plan_for_rules(argument), user)))
