import django_fsm
from django.db import migrations, models

from sites.migration_operations import PostgresOnlySQL

SEALED = "payroll_sealed: a payroll that is no longer generating cannot change its lines, count, total or hash"
RELEASED = "payroll_released: the release of over-limit lines is never withdrawn"
KEPT = "payroll_kept: payrolls and the lines of sealed payrolls are never deleted"

# 0003's payroll guard with the GENERATED status (sealed, to submit for approval) and its moves, and
# the left-out counts sealed with the lines.
PAYROLL_GUARD = """
CREATE OR REPLACE FUNCTION payments_payroll_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '{kept}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.status <> 'GENERATING' AND (
        (NEW.payment_plan_id, NEW.cycle_id, NEW.follow_up_of_id, NEW.line_count, NEW.total,
         NEW.seal_hash, NEW.sealed_at, NEW.formula, NEW.parameters{left_out_new})
        IS DISTINCT FROM (OLD.payment_plan_id, OLD.cycle_id, OLD.follow_up_of_id, OLD.line_count,
         OLD.total, OLD.seal_hash, OLD.sealed_at, OLD.formula, OLD.parameters{left_out_old})
        OR (NEW.status <> OLD.status AND NOT ({moves}))) THEN
        RAISE EXCEPTION '{sealed}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.over_limit_released_at IS NOT NULL
       AND NEW.over_limit_released_at IS DISTINCT FROM OLD.over_limit_released_at THEN
        RAISE EXCEPTION '{released}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""
MOVES = """(OLD.status = 'GENERATED' AND NEW.status IN ('PENDING_APPROVAL', 'REJECTED'))
            OR (OLD.status = 'PENDING_APPROVAL' AND NEW.status IN ('APPROVED', 'REJECTED', 'GENERATED'))
            OR (OLD.status = 'APPROVED' AND NEW.status = 'RECONCILED')"""
MOVES_BEFORE = """(OLD.status = 'PENDING_APPROVAL' AND NEW.status IN ('APPROVED', 'REJECTED'))
            OR (OLD.status = 'APPROVED' AND NEW.status = 'RECONCILED')"""
LIVE_REQUEST = ("PENDING", "APPROVED", "EXECUTING")


def not_submitted_as_generated(apps, schema_editor):
    """Payrolls read "Waiting for approval" as soon as sealed: those with no live approval request
    were never submitted (or their request ended undecided): GENERATED. Planned cycles with a live
    payroll are under way: OPEN."""
    Payroll = apps.get_model("payments", "Payroll")
    PaymentCycle = apps.get_model("payments", "PaymentCycle")
    ApprovalRequest = apps.get_model("workflows", "ApprovalRequest")
    submitted = ApprovalRequest.objects.filter(operation="payments.approve_payroll", status__in=LIVE_REQUEST)
    submitted_ids = {payload.get("payroll") for payload in submitted.values_list("payload", flat=True)}
    Payroll.objects.filter(status="PENDING_APPROVAL").exclude(pk__in=submitted_ids).update(status="GENERATED")
    live = Payroll.objects.exclude(status__in=("REJECTED", "FAILED")).values("cycle_id")
    PaymentCycle.objects.filter(status="PLANNED", pk__in=live).update(status="OPEN")


def generated_as_pending(apps, schema_editor):
    apps.get_model("payments", "Payroll").objects.filter(status="GENERATED").update(status="PENDING_APPROVAL")


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0008_currency_codes"),
        ("workflows", "0003_decision_matches_the_current_step"),
    ]

    operations = [
        migrations.AddField(
            model_name="payroll",
            name="left_out",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="payroll",
            name="status",
            field=django_fsm.FSMField(choices=[
                ("GENERATING", "Generating"), ("GENERATED", "Generated: to submit for approval"),
                ("PENDING_APPROVAL", "Waiting for approval"), ("APPROVED", "Approved for payment"),
                ("RECONCILED", "Reconciled"), ("REJECTED", "Rejected"), ("FAILED", "Failed")],
                default="GENERATING", max_length=50, protected=True),
        ),
        PostgresOnlySQL(
            sql=[PAYROLL_GUARD.format(kept=KEPT, sealed=SEALED, released=RELEASED, moves=MOVES,
                                      left_out_new=", NEW.left_out", left_out_old=", OLD.left_out")],
            reverse_sql=[PAYROLL_GUARD.format(kept=KEPT, sealed=SEALED, released=RELEASED, moves=MOVES_BEFORE,
                                              left_out_new="", left_out_old="")],
        ),
        migrations.RunPython(not_submitted_as_generated, generated_as_pending),
    ]
