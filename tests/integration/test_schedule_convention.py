"""A product version chooses the `fineract-progressive` schedule convention through the API, and
its loans are disbursed with Fineract's numbers; products that say nothing keep ours."""

from __future__ import annotations

from decimal import Decimal

from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.models import Customer, KycStatus

LIMITS = {
    "min_principal": "100.00",
    "max_principal": "50000.00",
    "min_rate": "9",
    "max_rate": "26",
    "default_rate": "24",
    "min_installments": 3,
    "max_installments": 24,
}
# Every 15 days on a 360-day year: Fineract's ProgressiveEMICalculatorTest,
# test_disbursedAmt100_dayInYears360_daysInMonthDoesntMatter_repayEvery15Days (see
# tests/unit/finance/test_fineract_parity.py). The schedule does not depend on the date.
FIFTEEN_DAYS = {
    "frequency": "days",
    "every": 15,
    "interest_period": "daily",
    "days_in_year": "360",
}


async def test_a_version_with_the_fineract_convention_disburses_fineracts_schedule(
    app, client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    created = await client.post(
        "/api/products",
        json={
            "code": "FIN-15D",
            "name": "Every 15 days, Fineract's schedule",
            "terms": {**FIFTEEN_DAYS, "schedule_convention": "fineract-progressive"},
            "limits": LIMITS,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["latest_version"]["terms"]["schedule_convention"] == "fineract-progressive"

    async with transaction(app.state.db) as session:
        customer = await session.get(Customer, world.customer_a.id)
        assert customer is not None
        customer.kyc_status = KycStatus.VERIFIED
        customer.household_monthly_income = Decimal("20000.00")
    applied = await client.post(
        "/api/loans",
        json={
            "customer_id": str(world.customer_a.id),
            "product_id": product["id"],
            "amount": "100.00",
            "installments": 6,
            "annual_rate": "9.4822",
        },
        headers=await bearer(world.agent_a),
    )
    assert applied.status_code == 201, applied.text
    loan = applied.json()
    approved = await client.post(
        f"/api/loans/{loan['id']}/approve", headers=await bearer(world.manager_a)
    )
    assert approved.status_code == 200, approved.text
    disbursed = await client.post(
        f"/api/loans/{loan['id']}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "cash"},
        headers=await bearer(world.manager_a),
    )
    assert disbursed.status_code == 201, disbursed.text
    rows = [(i["principal"], i["interest"], i["balance"]) for i in disbursed.json()["schedule"]]
    assert rows == [
        ("16.50", "0.40", "83.50"),
        ("16.57", "0.33", "66.93"),
        ("16.64", "0.26", "50.29"),
        ("16.70", "0.20", "33.59"),
        ("16.77", "0.13", "16.82"),
        ("16.82", "0.07", "0.00"),
    ]


async def test_the_convention_is_ours_unless_chosen_and_refused_where_undefined(
    client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    plain = await client.post(
        "/api/products",
        json={"code": "OURS-15D", "name": "Every 15 days", "terms": FIFTEEN_DAYS, "limits": LIMITS},
        headers=admin,
    )
    assert plain.status_code == 201, plain.text
    assert plain.json()["latest_version"]["terms"]["schedule_convention"] == "namma"

    undefined = await client.post(
        "/api/products",
        json={
            "code": "FIN-BAD",
            "name": "Fineract's schedule on an actual year",
            "terms": {
                "frequency": "days",
                "every": 15,
                "interest_period": "daily",
                "schedule_convention": "fineract-progressive",
            },
            "limits": LIMITS,
        },
        headers=admin,
    )
    assert undefined.status_code == 422
    details = undefined.json()["error"]["details"]
    assert details[0]["field"] == "terms.schedule_convention"
    assert "360, 364 or 365" in details[0]["message"]
    unknown = await client.post(
        "/api/products",
        json={
            "code": "FIN-UNK",
            "name": "An unknown convention",
            "terms": {**FIFTEEN_DAYS, "schedule_convention": "mambu"},
            "limits": LIMITS,
        },
        headers=admin,
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["field"] == "terms.schedule_convention"


async def test_the_product_page_names_the_convention_and_a_new_version_keeps_it(
    app, client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_pages import csrf_of, sign_in

    made = await client.post(
        "/api/products",
        json={
            "code": "FIN-15D",
            "name": "Every 15 days, Fineract's schedule",
            "terms": {**FIFTEEN_DAYS, "schedule_convention": "fineract-progressive"},
            "limits": LIMITS,
        },
        headers=await bearer(world.admin),
    )
    assert made.status_code == 201, made.text
    url = f"/office/products/{made.json()['id']}"
    await sign_in(app, client, world.admin)
    page = await client.get(url)
    assert page.status_code == 200
    assert (
        '<dt>Schedule convention</dt><dd id="product-convention">Apache Fineract\'s '
        "progressive: interest by each period's days, the installment over those periods</dd>"
        in page.text
    )

    # The page edits a few terms; a new version made there keeps the convention.
    form = await client.get(f"{url}/versions/new")
    assert '<select id="f-schedule_convention" name="schedule_convention">' in form.text
    assert '<option value="fineract-progressive" selected>' in form.text
    assert '<option value="namma">' in form.text
    values = {
        "frequency": "days",
        "interest_method": "declining",
        "amortization": "equal-installments",
        "excess": "advance",
        **LIMITS,
        "min_installments": "3",
        "max_installments": "24",
        "default_rate": "20",
        "confirmed": "yes",
    }
    revised = await client.post(
        f"{url}/versions/new", data={"csrf_token": csrf_of(form.text), **values}
    )
    assert revised.status_code == 303, revised.text
    detail = (
        await client.get(f"/api/products/{made.json()['id']}", headers=await bearer(world.admin))
    ).json()
    assert [v["terms"]["schedule_convention"] for v in detail["versions"]] == [
        "fineract-progressive",
        "fineract-progressive",
    ]

    # The form chooses the convention (D-211): back to ours, compared before it is made.
    form = await client.get(f"{url}/versions/new")
    ours = {**values, "schedule_convention": "namma"}
    del ours["confirmed"]
    compared = await client.post(
        f"{url}/versions/new", data={"csrf_token": csrf_of(form.text), **ours}
    )
    assert compared.status_code == 200, compared.text
    assert (
        '<th scope="row">Schedule convention <span class="badge badge-due">Changed</span></th>'
        in compared.text
    )
    assert (
        "<td><strong>Ours: a rate per period, the installment at that rate</strong></td>"
        in compared.text
    )
    made_ours = await client.post(
        f"{url}/versions/new",
        data={"csrf_token": csrf_of(form.text), **ours, "confirmed": "yes"},
    )
    assert made_ours.status_code == 303, made_ours.text
    detail = (
        await client.get(f"/api/products/{made.json()['id']}", headers=await bearer(world.admin))
    ).json()
    assert detail["versions"][0]["terms"]["schedule_convention"] == "namma"

    # A new product on Fineract's convention with terms it is not defined for (monthly, interest
    # per installment): refused on the field, nothing made.
    new_form = await client.get("/office/products/new")
    assert '<option value="namma" selected>' in new_form.text
    refused = await client.post(
        "/office/products/new",
        data={
            "csrf_token": csrf_of(new_form.text),
            "code": "FIN-M",
            "name": "Monthly on Fineract's convention",
            "frequency": "monthly",
            "interest_method": "declining",
            "amortization": "equal-installments",
            "schedule_convention": "fineract-progressive",
            **LIMITS,
        },
    )
    assert refused.status_code == 422
    assert 'id="f-schedule_convention-error"' in refused.text
    listed = (await client.get("/api/products", headers=await bearer(world.admin))).json()
    assert "FIN-M" not in str(listed)

    switched = await client.post(
        "/language", data={"csrf_token": csrf_of(page.text), "lang": "kn", "next": url}
    )
    assert switched.status_code == 303
    kannada = await client.get(url)
    assert '<html lang="kn">' in kannada.text
    assert "ವೇಳಾಪಟ್ಟಿಯ ಪದ್ಧತಿ" in kannada.text
    kannada_form = await client.get(f"{url}/versions/new")
    assert '<label for="f-schedule_convention">ವೇಳಾಪಟ್ಟಿಯ ಪದ್ಧತಿ</label>' in kannada_form.text
    assert "ನಮ್ಮದು: ಪ್ರತಿ ಅವಧಿಗೆ ಒಂದು ದರ, ಆ ದರದಲ್ಲಿ ಕಂತು" in kannada_form.text
    assert "Apache Fineract ನ ಪ್ರಗತಿಶೀಲ ವೇಳಾಪಟ್ಟಿ ದೈನಂದಿನ ಬಡ್ಡಿ" in kannada_form.text
