import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from schemes.payments.models import PaymentPlan
from schemes.plans.models import BenefitPlan
from sites.models import CurrencyField, Location, OrganisationSettings
from tests.factories import LocationFactory, build_branch

pytestmark = pytest.mark.django_db


def fresh(location):
    return Location.objects.get(pk=location.pk)


# --- paths and depth --------------------------------------------------------------------------


def test_paths_and_depths_follow_the_tree():
    region, district, ward, village = build_branch()

    assert fresh(region).path == f"/{region.pk}/"
    assert fresh(district).path == f"/{region.pk}/{district.pk}/"
    assert fresh(ward).path == f"/{region.pk}/{district.pk}/{ward.pk}/"
    assert fresh(village).path == f"/{region.pk}/{district.pk}/{ward.pk}/{village.pk}/"
    assert [fresh(loc).depth for loc in (region, district, ward, village)] == [1, 2, 3, 4]
    # The in-memory instance knows its path too, right after creation.
    assert village.path == fresh(village).path


def test_ancestors_are_listed_from_the_top():
    region, district, ward, village = build_branch()

    assert fresh(village).ancestors() == [region, district, ward]
    assert fresh(region).ancestors() == []


def test_subtree_is_one_prefix_match():
    a = build_branch()
    build_branch(region=a.region)  # a sibling district under the same region

    subtree = Location.objects.filter(path__startswith=fresh(a.district).path)

    assert set(subtree) == {a.district, a.ward, a.village}


# --- moving a subtree -------------------------------------------------------------------------


def test_moving_a_ward_to_another_district_rewrites_descendants():
    a = build_branch()
    b = build_branch(region=a.region)
    ward, village = fresh(a.ward), fresh(a.village)

    ward.parent = b.district
    ward.save()

    ward, village = fresh(ward), fresh(village)
    assert ward.path == f"{fresh(b.district).path}{ward.pk}/"
    assert village.path == f"{ward.path}{village.pk}/"
    assert (ward.depth, village.depth) == (3, 4)
    # Nothing is left under the old district except the district itself.
    assert list(Location.objects.filter(path__startswith=fresh(a.district).path)) == [a.district]


def test_moving_up_a_level_changes_the_depth_of_the_whole_subtree():
    region, district, ward, village = build_branch()
    extra = LocationFactory(parent=village)  # depth 5

    ward = fresh(ward)
    ward.parent = region  # from depth 3 to depth 2
    ward.save()

    assert fresh(ward).depth == 2
    assert fresh(village).depth == 3
    assert fresh(extra).depth == 4
    assert fresh(extra).path == f"/{region.pk}/{ward.pk}/{village.pk}/{extra.pk}/"


def test_moving_to_the_top_makes_a_region():
    region, district, ward, village = build_branch()

    district = fresh(district)
    district.parent = None
    district.save()

    assert fresh(district).path == f"/{district.pk}/"
    assert fresh(district).depth == 1
    assert fresh(village).path == f"/{district.pk}/{ward.pk}/{village.pk}/"
    assert fresh(village).depth == 3
    assert fresh(region).path == f"/{region.pk}/"  # the old parent is untouched


def test_moving_down_a_level_deepens_the_subtree():
    a = build_branch()
    b = build_branch(region=a.region)

    district_b = fresh(b.district)
    district_b.parent = a.ward  # district B becomes a child of ward A (depth 2 -> 4)
    district_b.save()

    assert fresh(b.district).depth == 4
    assert fresh(b.ward).depth == 5
    assert fresh(b.village).depth == 6
    assert fresh(b.village).path.startswith(fresh(a.ward).path)


def test_saving_without_moving_keeps_paths():
    region, district, ward, village = build_branch()
    before = {loc.pk: (loc.path, loc.depth) for loc in Location.objects.all()}

    district = fresh(district)
    district.name = "Renamed"
    district.save()

    assert {loc.pk: (loc.path, loc.depth) for loc in Location.objects.all()} == before


def test_similar_id_prefixes_are_not_confused_when_moving():
    # Paths end with a slash, so moving /7001/ must not touch /70010/.
    one = Location.objects.create(pk=7001, code="P7001", name="Seven thousand one")
    ten = Location.objects.create(pk=70010, code="P70010", name="Seventy thousand ten")
    child_of_ten = LocationFactory(parent=ten)
    new_parent = LocationFactory()

    one = fresh(one)
    one.parent = new_parent
    one.save()

    assert fresh(ten).path == "/70010/"
    assert fresh(child_of_ten).path == f"/70010/{child_of_ten.pk}/"
    assert fresh(one).path == f"/{new_parent.pk}/7001/"


# --- refusing cycles --------------------------------------------------------------------------


def test_clean_refuses_moving_under_own_descendant():
    region, district, ward, village = build_branch()

    district = fresh(district)
    district.parent = village
    with pytest.raises(ValidationError) as exc:
        district.clean()

    assert "parent" in exc.value.message_dict
    assert "descendants" in exc.value.message_dict["parent"][0]


def test_clean_refuses_moving_under_itself():
    region, district, ward, village = build_branch()

    district = fresh(district)
    district.parent = district
    with pytest.raises(ValidationError) as exc:
        district.full_clean()

    assert "parent" in exc.value.message_dict


def test_clean_allows_a_legal_move():
    a = build_branch()
    b = build_branch(region=a.region)

    ward = fresh(a.ward)
    ward.parent = b.district
    ward.full_clean()  # no error


def test_save_refuses_moving_under_own_descendant_and_leaves_the_tree_intact():
    # clean() is not called by save(); the tree invariant must also hold for direct saves (imports,
    # scripts), otherwise a cycle is written and every path under the node is corrupted.
    region, district, ward, village = build_branch()
    before = {loc.pk: (loc.path, loc.depth) for loc in Location.objects.all()}

    district = fresh(district)
    district.parent = village
    with pytest.raises(ValidationError):
        with transaction.atomic():
            district.save()

    assert {loc.pk: (loc.path, loc.depth) for loc in Location.objects.all()} == before


# --- level names ------------------------------------------------------------------------------


def test_default_level_names():
    region, district, ward, village = build_branch()

    assert [fresh(loc).level_name for loc in (region, district, ward, village)] == [
        "Region",
        "District",
        "Ward",
        "Village",
    ]
    deeper = LocationFactory(parent=village)
    assert fresh(deeper).level_name == "Level 5"


def test_level_names_are_configurable_and_trimmed():
    settings = OrganisationSettings.load()
    settings.location_level_names = " Province ,Commune, ,  "
    settings.save()

    assert settings.level_names() == ["Province", "Commune"]
    region, district, ward, _ = build_branch()
    assert fresh(region).level_name == "Province"
    assert fresh(district).level_name == "Commune"
    assert fresh(ward).level_name == "Level 3"


def test_level_name_out_of_range():
    settings = OrganisationSettings()
    assert settings.level_name(0) == "Level 0"
    assert settings.level_name(1) == "Region"
    assert settings.level_name(4) == "Village"
    assert settings.level_name(9) == "Level 9"


# --- organisation settings --------------------------------------------------------------------


@pytest.mark.parametrize("pattern, described, field", [
    ("[0-9", "12 digits", "national_id_pattern"),
    ("[0-9]{12", "12 digits", "national_id_pattern"),  # compiles, as the text "{12": no ID would match
    ("([0-9]+)+X", "12 digits", "national_id_pattern"),  # 5 s per 22-digit ID, in every form and import row
    ("[0-9]{12}", " ", "national_id_format"),
])
def test_a_national_id_format_must_compile_and_be_described(pattern, described, field):
    organisation = OrganisationSettings.load()
    organisation.national_id_pattern, organisation.national_id_format = pattern, described

    with pytest.raises(ValidationError) as error:
        organisation.full_clean()

    assert list(error.value.message_dict) == [field]


def test_the_national_id_rule_is_none_until_a_format_is_set():
    organisation = OrganisationSettings.load()
    assert organisation.national_id_rule() is None

    organisation.national_id_pattern, organisation.national_id_format = "[0-9]{12}", "12 digits"
    pattern, described = organisation.national_id_rule()
    assert pattern.fullmatch("012345678901") and described == "12 digits"


def test_the_organisation_currency_is_an_iso_code():
    organisation = OrganisationSettings.load()
    organisation.currency = "usd"

    with pytest.raises(ValidationError) as error:
        organisation.full_clean()

    assert list(error.value.message_dict) == ["currency"]


@pytest.mark.parametrize("model", [OrganisationSettings, BenefitPlan, PaymentPlan])
def test_a_currency_field_takes_any_case_in_forms_and_keeps_upper_case(model):
    """One shared field: every form that asks for a currency (organisation settings, plans)
    takes "usd" as USD, and still refuses what is not a code."""
    field = model._meta.get_field("currency")
    form_field = field.formfield()

    assert isinstance(field, CurrencyField)
    assert form_field.clean(" usd ") == "USD"
    with pytest.raises(ValidationError):
        field.clean(form_field.clean("T$"), None)


def test_the_organisation_settings_form_saves_a_lower_case_currency_upper_cased(db):
    from wagtail.contrib.settings.views import get_setting_edit_handler

    organisation = OrganisationSettings.load()
    form_class = get_setting_edit_handler(OrganisationSettings).get_form_class()
    data = {name: getattr(organisation, name) for name in form_class._meta.fields}
    form = form_class({**data, "currency": "tzs"}, instance=organisation)

    assert form.is_valid(), form.errors
    form.save()
    assert OrganisationSettings.load().currency == "TZS"
