from wagtail import hooks

from .viewsets import PaymentsViewSetGroup

# What reconciling and closing payrolls write to the audit trail.
RECONCILIATION_AUDIT_ACTIONS = {
    "mizani.reconcile": ("Reconciliation", "Applied what a provider paid (a file or an API batch) to the payroll"),
    "mizani.payroll_closed": ("Payroll closed", "Closed the payroll (reconciled)"),
}


@hooks.register("register_log_actions")
def register_reconciliation_audit_actions(actions):
    for action, (label, message) in RECONCILIATION_AUDIT_ACTIONS.items():
        actions.register_action(action, label, message)


@hooks.register("register_admin_viewset")
def register_payment_viewsets():
    return PaymentsViewSetGroup()
