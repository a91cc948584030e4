import django.db.models.deletion
from django.db import migrations, models

STATUSES = ("DUE", "PAID", "UNPAID", "CANCELLED")


def count_sealed_payrolls(apps, schema_editor):
    """Totals for the payrolls sealed before they were kept (as schemes.payments.summaries.count_lines
    writes them; changes are counted from the lines until a payroll is compared again)."""
    connection = schema_editor.connection
    statuses = " UNION ALL ".join(["SELECT %s AS status"] * len(STATUSES))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # no line moves between the count and the commit
            cursor.execute("LOCK TABLE payments_paymentline IN SHARE MODE")
        cursor.execute(
            "INSERT INTO payments_payrolltotal (payroll_id, location_id, status, flagged_over_limit, lines, amount) "
            "SELECT g.payroll_id, g.location_id, s.status, g.flagged, "
            "SUM(CASE WHEN g.status = s.status THEN g.lines ELSE 0 END), "
            "SUM(CASE WHEN g.status = s.status THEN g.amount ELSE 0 END) "
            "FROM (SELECT l.payroll_id, l.location_id, l.flagged_over_limit AS flagged, l.status, COUNT(*) AS lines, "
            "SUM(l.amount) AS amount FROM payments_paymentline l JOIN payments_payroll p ON p.id = l.payroll_id "
            "WHERE p.sealed_at IS NOT NULL GROUP BY l.payroll_id, l.location_id, l.flagged_over_limit, l.status) g "
            f"CROSS JOIN ({statuses}) s GROUP BY g.payroll_id, g.location_id, g.flagged, s.status", STATUSES)


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0005_reconciliation'),
        ('sites', '0003_role_presets'),
    ]

    operations = [
        migrations.AddField(
            model_name='payroll',
            name='compared_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='payroll',
            name='compared_with',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='payments.payroll'),
        ),
        migrations.CreateModel(
            name='PayrollChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('NEW', 'New'), ('REMOVED', 'Removed'), ('CHANGED', 'Changed amount')], max_length=10)),
                ('lines', models.IntegerField()),
                ('amount', models.DecimalField(decimal_places=2, max_digits=18)),
                ('previous_amount', models.DecimalField(decimal_places=2, max_digits=18)),
                ('location', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='sites.location')),
                ('payroll', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='changes', to='payments.payroll')),
            ],
        ),
        migrations.CreateModel(
            name='PayrollTotal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('DUE', 'Due'), ('PAID', 'Paid'), ('UNPAID', 'Unpaid'), ('CANCELLED', 'Cancelled')], max_length=20)),
                ('flagged_over_limit', models.BooleanField()),
                ('lines', models.IntegerField()),
                ('amount', models.DecimalField(decimal_places=2, max_digits=18)),
                ('location', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='sites.location')),
                ('payroll', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='totals', to='payments.payroll')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('payroll', 'location', 'status', 'flagged_over_limit'), name='payroll_total_one_per_group', nulls_distinct=False)],
            },
        ),
        migrations.RunPython(count_sealed_payrolls, migrations.RunPython.noop),
    ]
