"""What a rule can be about: each subject names its field catalogue and the records a user may see,
so that a rule field checks against the right fields and the live count is scoped to the user.

A subject is named "<name>" or "<name>:<argument>" (e.g. "plan:12.HOUSEHOLD": a plan's rules, whose
fields depend on the plan); the argument is passed to the subject's functions (None without one).

Imports happen when a subject is used, not when this module loads: forms across the apps import it,
and the catalogues and selectors import those apps' models."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Subject:
    label: str  # what the records are called in the count, e.g. "Individuals"
    catalogue: Callable  # (argument) -> Catalogue
    queryset_for: Callable  # (user, argument) -> QuerySet already limited to what the user may see


def _individual_catalogue(argument):
    from .catalogue import individual_catalogue

    return individual_catalogue()


def _individuals_for(user, argument):
    from schemes.registry.selectors import individuals_for

    return individuals_for(user)


def _household_catalogue(argument):
    from .catalogue import household_catalogue

    return household_catalogue()


def _households_for(user, argument):
    from schemes.registry.selectors import households_for

    return households_for(user)


SUBJECTS = {
    "individual": Subject("Individuals", catalogue=_individual_catalogue, queryset_for=_individuals_for),
    "household": Subject("Households", catalogue=_household_catalogue, queryset_for=_households_for),
}


def register_subject(name, subject):
    """Add a subject (e.g. "plan" from the plans app's AppConfig.ready). A name names one subject:
    registering another under it is a mistake, not an override."""
    if SUBJECTS.get(name, subject) != subject:
        raise ValueError(f"A rules subject named {name!r} is already registered.")
    SUBJECTS[name] = subject


def resolve_subject(name):
    """(Subject, argument) for "<name>[:<argument>]", or (None, None) for an unknown name."""
    key, _, argument = (name or "").partition(":")
    return SUBJECTS.get(key), argument or None
