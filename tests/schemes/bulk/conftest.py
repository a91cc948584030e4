"""The payments fixtures, for the reconciliation file's tests (an approved payroll and its people)."""

from tests.schemes.payments.conftest import (  # noqa: F401 (fixtures)
    accountant,
    approved_payroll,
    benefit_plan,
    checkers,
    cycle,
    cycles,
    payment_plan,
    payroll_workflow,
    people,
)
