"""What a rule can be about: each subject names its field catalogue and the records a user may see,
so that a rule field checks against the right fields and the live count is scoped to the user.

Imports happen when a subject is used, not when this module loads: forms across the apps import it,
and the catalogues and selectors import those apps' models."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Subject:
    label: str  # what the records are called in the count, e.g. "Individuals"
    catalogue: Callable  # () -> Catalogue
    queryset_for: Callable  # (user) -> QuerySet already limited to what the user may see


def _individual_catalogue():
    from .catalogue import individual_catalogue

    return individual_catalogue()


def _individuals_for(user):
    from schemes.registry.selectors import individuals_for

    return individuals_for(user)


SUBJECTS = {"individual": Subject("Individuals", catalogue=_individual_catalogue, queryset_for=_individuals_for)}


def register_subject(name, subject):
    """Add a subject (e.g. "household" from the registry's AppConfig.ready). A name names one subject:
    registering another under it is a mistake, not an override."""
    if SUBJECTS.get(name, subject) != subject:
        raise ValueError(f"A rules subject named {name!r} is already registered.")
    SUBJECTS[name] = subject
