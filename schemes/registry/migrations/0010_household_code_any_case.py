import django.db.models.functions.text
from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import Lower

NAMED = 10  # clashes named in the message; the rest are counted


def refuse_codes_differing_only_in_case(apps, schema_editor):
    """The constraint below cannot be created while two households' codes differ only in case: name
    some, for the system administrator to rename all but one of each (nothing is renamed here: a
    household's code is on cards, files and lists outside Mizani). Deleted households count too: the
    constraint holds for them (a restored household keeps its code)."""
    households = apps.get_model("registry", "Household").objects.using(schema_editor.connection.alias)
    folded = households.annotate(folded=Lower("code"))
    repeated = list(folded.values("folded").annotate(n=Count("pk")).filter(n__gt=1)
                    .order_by("folded").values_list("folded", flat=True))
    if not repeated:
        return
    spellings = {}
    for value, code in folded.filter(folded__in=repeated[:NAMED]).values_list("folded", "code"):
        spellings.setdefault(value, []).append(code)
    named = "; ".join(" / ".join(repr(code) for code in sorted(spellings[value])) for value in repeated[:NAMED])
    more = f" and {len(repeated) - NAMED:,} more" if len(repeated) > NAMED else ""
    raise RuntimeError(
        f"Household codes are now unique whatever their case, and {len(repeated):,} codes are written on more "
        f"than one household in different cases: {named}{more}. Rename all but one of each (with the version "
        "you are upgrading from), then run the migrations again.")


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0009_field_names_any_case'),
    ]

    operations = [
        migrations.RunPython(refuse_codes_differing_only_in_case, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name='household',
            name='household_unique_code',
        ),
        migrations.AddConstraint(
            model_name='household',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('code'), name='household_code_unique_any_case', violation_error_code='code_taken', violation_error_message='Another household already has this code (codes are compared ignoring upper and lower case).'),
        ),
    ]
