from wagtail import hooks

from .viewsets import PaymentsViewSetGroup

# What submitting, withdrawing, reconciling and closing payrolls write to the payroll's audit trail.
PAYROLL_AUDIT_ACTIONS = {
    "mizani.payroll_submitted": ("Payroll submitted", "Submitted the payroll for approval"),
    "mizani.payroll_withdrawn": ("Payroll withdrawn", "Its approval request ended undecided (cancelled, failed or "
                                                      "void): the payroll is to submit again"),
    "mizani.reconcile": ("Reconciliation", "Applied what a provider paid (a file or an API batch) to the payroll"),
    "mizani.payroll_closed": ("Payroll closed", "Closed the payroll (reconciled)"),
}


@hooks.register("register_log_actions")
def register_payroll_audit_actions(actions):
    for action, (label, message) in PAYROLL_AUDIT_ACTIONS.items():
        actions.register_action(action, label, message)


@hooks.register("register_admin_viewset")
def register_payment_viewsets():
    return PaymentsViewSetGroup()
