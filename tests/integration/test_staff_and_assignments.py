"""Staff management and agent assignments through the HTTP API, with their audit entries.

Admin manages any staff; a Manager creates and manages Agents of their own branch; a record
outside the caller's scope answers 404; bad input 422 naming the field; a state conflict 409.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from namma.kit.db import transaction
from namma.kit.passwords import password_problem
from namma.models import AgentAssignment, Customer
from tests.integration.conftest import PASSWORD, World

GOOD_PASSWORD = "monsoon ledger at the branch office"
TEMP_PASSWORD = "temporary passphrase from head office"
COMMON_PASSWORD = "qwerty123456"  # 12 characters, and among the most common passwords


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _login(client: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/auth/login", json={"login": login, "password": password, "token_delivery": "body"}
    )


async def _login_headers(client: httpx.AsyncClient, login: str, password: str) -> dict[str, str]:
    response = await _login(client, login, password)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok", response.json()
    return _auth(response.json()["access_token"])


def _fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {d["field"] for d in response.json()["error"]["details"]}


def _staff_body(world: World, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Nandini Agent",
        "role": "agent",
        "branch_id": str(world.branch_a.id),
        "email": "nandini@example.com",
        "password": TEMP_PASSWORD,
    }
    body.update(overrides)
    return body


async def _audit(
    client: httpx.AsyncClient, admin: dict[str, str], **filters: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/audit",
        headers=admin,
        params={"limit": 200, **{k: str(v) for k, v in filters.items()}},
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


async def _history(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: Any
) -> httpx.Response:
    return await client.get(f"/api/customers/{customer_id}/agent/history", headers=headers)


async def _open_agent(client: httpx.AsyncClient, admin: dict[str, str], customer_id: Any) -> str:
    """The agent currently serving the customer (exactly one open assignment)."""
    response = await _history(client, admin, customer_id)
    assert response.status_code == 200, response.text
    open_ = [a for a in response.json()["assignments"] if a["ended_at"] is None]
    assert len(open_) == 1, open_
    return str(open_[0]["agent_id"])


# --- creating staff --------------------------------------------------------------------------


async def test_admin_creates_a_manager_and_an_agent(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await client.post(
        "/api/staff",
        headers=admin,
        json=_staff_body(
            world,
            name="Mohan Manager",
            role="manager",
            branch_id=str(world.branch_b.id),
            email="Mohan@Example.com",
            phone="+91 98450 12345",
        ),
    )
    assert manager.status_code == 201, manager.text
    created = manager.json()
    assert created["role"] == "manager"
    assert created["branch_id"] == str(world.branch_b.id)
    assert created["email"] == "mohan@example.com"
    assert created["phone"] == "9845012345"
    assert created["must_change_password"] is True
    assert created["is_active"] is True
    assert created["extra_permissions"] == []

    agent = await client.post(
        "/api/staff",
        headers=admin,
        json=_staff_body(world, email=None, phone="98450 54321"),
    )
    assert agent.status_code == 201, agent.text
    assert agent.json()["role"] == "agent"
    assert agent.json()["branch_id"] == str(world.branch_a.id)

    for response in (manager, agent):
        (entry,) = await _audit(
            client, admin, action="staff.created", entity_id=response.json()["id"]
        )
        assert entry["actor_id"] == str(world.admin.id)
        assert entry["actor_role"] == "admin"
        assert entry["after"]["role"] == response.json()["role"]
        assert TEMP_PASSWORD not in str(entry) and "argon2" not in str(entry)


async def test_a_manager_creates_agents_of_their_own_branch_only(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    manager = await bearer(world.manager_a)
    omitted = await client.post(
        "/api/staff", headers=manager, json=_staff_body(world, branch_id=None)
    )
    assert omitted.status_code == 201, omitted.text
    assert omitted.json()["branch_id"] == str(world.branch_a.id)
    explicit = await client.post(
        "/api/staff", headers=manager, json=_staff_body(world, email="neha@example.com")
    )
    assert explicit.status_code == 201, explicit.text

    refused = [
        _staff_body(world, email="x1@example.com", role="manager"),
        _staff_body(world, email="x2@example.com", role="admin", branch_id=None),
        _staff_body(world, email="x3@example.com", branch_id=str(world.branch_b.id)),
    ]
    for body in refused:
        response = await client.post("/api/staff", headers=manager, json=body)
        assert response.status_code == 403, (body, response.text)
        assert response.json()["error"]["code"] == "forbidden"

    admin = await bearer(world.admin)
    created = await _audit(client, admin, action="staff.created")
    assert {e["entity_id"] for e in created} == {omitted.json()["id"], explicit.json()["id"]}
    assert all(e["actor_id"] == str(world.manager_a.id) for e in created)
    # The other branch's manager cannot see them.
    other = await client.get(
        f"/api/staff/{omitted.json()['id']}", headers=await bearer(world.manager_b)
    )
    assert other.status_code == 404


def test_the_common_password_used_below_is_refused_by_the_policy() -> None:
    assert len(COMMON_PASSWORD) >= 12
    assert "common" in (password_problem(COMMON_PASSWORD) or "")
    assert password_problem(GOOD_PASSWORD) is None
    assert password_problem(TEMP_PASSWORD) is None


async def test_bad_staff_input_is_422_naming_the_field(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"password": "short pass"}, "password"),
        ({"password": COMMON_PASSWORD}, "password"),
        ({"password": COMMON_PASSWORD.upper()}, "password"),
        ({"phone": "12345"}, "phone"),
        ({"phone": "5123456789"}, "phone"),  # Indian mobiles start with 6-9
        ({"email": "not-an-email"}, "email"),
        ({"email": None, "phone": None}, "email"),  # nothing to log in with
        ({"branch_id": None}, "branch_id"),  # an Agent belongs to a branch
        ({"branch_id": str(uuid.uuid4())}, "branch_id"),
        ({"role": "customer"}, "role"),
        ({"role": "boss"}, "role"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
    ]
    wrong = []
    for overrides, field in cases:
        response = await client.post(
            "/api/staff", headers=admin, json=_staff_body(world, **overrides)
        )
        if response.status_code != 422 or field not in _fields(response):
            wrong.append(f"{overrides}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert await _audit(client, admin, action="staff.created") == []


async def test_a_duplicate_email_or_phone_is_a_conflict(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    for overrides in (
        {"email": "Agent.A@Example.com"},  # emails are compared lower-cased
        {"email": None, "phone": "+91 90000 00004"},  # agent_a's number, written differently
        {"email": None, "phone": "9000000007"},  # a customer's login
    ):
        response = await client.post(
            "/api/staff", headers=admin, json=_staff_body(world, **overrides)
        )
        assert response.status_code == 409, (overrides, response.text)
        assert response.json()["error"]["code"] == "conflict"
    assert await _audit(client, admin, action="staff.created") == []


async def test_simultaneous_creates_with_one_email_give_one_201_and_409s(
    client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    body = _staff_body(world, email="twice@example.com")
    responses = await asyncio.gather(
        *(client.post("/api/staff", headers=admin, json=body) for _ in range(3))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409], [
        r.text[:120] for r in responses
    ]


async def test_new_staff_must_change_their_password_before_anything_else(
    client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    created = await client.post(
        "/api/staff",
        headers=admin,
        json=_staff_body(world, name="Mala Manager", role="manager", email="mala@example.com"),
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]

    first = await _login(client, "mala@example.com", TEMP_PASSWORD)
    assert first.status_code == 200, first.text
    assert first.json()["user"]["must_change_password"] is True
    temp = _auth(first.json()["access_token"])

    blocked = await client.get("/api/staff", headers=temp)
    assert blocked.status_code == 403
    assert blocked.json()["error"]["code"] == "password_change_required"
    me = await client.get("/api/auth/me", headers=temp)
    assert me.status_code == 200
    assert me.json()["user"]["must_change_password"] is True

    wrong_current = await client.post(
        "/api/auth/password",
        headers=temp,
        json={"current_password": "not the temporary one", "new_password": GOOD_PASSWORD},
    )
    assert _fields(wrong_current) == {"current_password"}
    too_common = await client.post(
        "/api/auth/password",
        headers=temp,
        json={"current_password": TEMP_PASSWORD, "new_password": COMMON_PASSWORD},
    )
    assert _fields(too_common) == {"new_password"}

    changed = await client.post(
        "/api/auth/password",
        headers=temp,
        json={"current_password": TEMP_PASSWORD, "new_password": GOOD_PASSWORD},
    )
    assert changed.status_code == 204, changed.text
    assert (await client.get("/api/auth/me", headers=temp)).status_code == 401

    assert (await _login(client, "mala@example.com", TEMP_PASSWORD)).status_code == 401
    fresh = await _login_headers(client, "mala@example.com", GOOD_PASSWORD)
    staff = await client.get("/api/staff", headers=fresh)
    assert staff.status_code == 200, staff.text
    assert (await client.get("/api/auth/me", headers=fresh)).json()["user"][
        "must_change_password"
    ] is False
    assert len(await _audit(client, admin, action="auth.password_changed", entity_id=user_id)) == 1


# --- deactivate, reset password, change role ---------------------------------------------------


async def test_deactivation_ends_sessions_at_once_and_reactivation_restores_login(
    client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    agent = await bearer(world.agent_a)
    session = (await _login(client, "agent.a@example.com", PASSWORD)).json()
    assert (await _history(client, agent, world.customer_a.id)).status_code == 200

    off = await client.post(f"/api/staff/{world.agent_a.id}/deactivate", headers=admin)
    assert off.status_code == 200, off.text
    assert off.json()["is_active"] is False
    assert (await client.get("/api/auth/me", headers=agent)).status_code == 401
    assert (await _history(client, agent, world.customer_a.id)).status_code == 401
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (await _login(client, "agent.a@example.com", PASSWORD)).status_code == 401

    again = await client.post(f"/api/staff/{world.agent_a.id}/deactivate", headers=admin)
    assert again.status_code == 409

    on = await client.post(f"/api/staff/{world.agent_a.id}/reactivate", headers=admin)
    assert on.status_code == 200, on.text
    assert on.json()["is_active"] is True
    assert (await client.get("/api/auth/me", headers=agent)).status_code == 401  # still over
    fresh = await _login_headers(client, "agent.a@example.com", PASSWORD)
    assert (await _history(client, fresh, world.customer_a.id)).status_code == 200
    assert (
        await client.post(f"/api/staff/{world.agent_a.id}/reactivate", headers=admin)
    ).status_code == 409

    (deactivated,) = await _audit(
        client, admin, action="staff.deactivated", entity_id=world.agent_a.id
    )
    assert deactivated["before"]["is_active"] is True
    assert deactivated["after"]["is_active"] is False
    assert deactivated["actor_id"] == str(world.admin.id)
    assert len(await _audit(client, admin, action="staff.reactivated")) == 1


async def test_who_may_deactivate_whom(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await bearer(world.manager_a)
    second_manager = await client.post(
        "/api/staff",
        headers=admin,
        json=_staff_body(world, name="Mala Manager", role="manager", email="mala@example.com"),
    )
    assert second_manager.status_code == 201

    async def deactivate(headers: dict[str, str], user_id: Any) -> int:
        response = await client.post(f"/api/staff/{user_id}/deactivate", headers=headers)
        return response.status_code

    assert await deactivate(admin, world.admin.id) == 409  # yourself
    assert await deactivate(manager, world.manager_a.id) == 409
    assert await deactivate(manager, second_manager.json()["id"]) == 403  # a manager
    assert await deactivate(manager, world.manager_b.id) == 404  # another branch
    assert await deactivate(manager, world.agent_b.id) == 404
    assert await deactivate(manager, world.admin.id) == 404  # head office
    assert await deactivate(manager, world.customer_user_a.id) == 404  # not staff
    assert await deactivate(manager, uuid.uuid4()) == 404
    assert await deactivate(await bearer(world.agent_a), world.agent_a2.id) == 403
    assert len(await _audit(client, admin, action="staff.deactivated")) == 0

    assert await deactivate(manager, world.agent_a2.id) == 200
    (entry,) = await _audit(client, admin, action="staff.deactivated")
    assert entry["entity_id"] == str(world.agent_a2.id)
    assert entry["actor_id"] == str(world.manager_a.id)


async def test_password_reset_ends_sessions_and_forces_a_change(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await bearer(world.manager_a)
    agent = await bearer(world.agent_a)

    weak = await client.post(
        f"/api/staff/{world.agent_a.id}/reset-password",
        headers=manager,
        json={"new_password": COMMON_PASSWORD},
    )
    assert _fields(weak) == {"new_password"}
    assert (await client.get("/api/auth/me", headers=agent)).status_code == 200  # untouched

    for target, status in ((world.agent_b, 404), (world.manager_b, 404), (world.admin, 404)):
        response = await client.post(
            f"/api/staff/{target.id}/reset-password",
            headers=manager,
            json={"new_password": TEMP_PASSWORD},
        )
        assert response.status_code == status, (target.name, response.text)

    reset = await client.post(
        f"/api/staff/{world.agent_a.id}/reset-password",
        headers=manager,
        json={"new_password": TEMP_PASSWORD},
    )
    assert reset.status_code == 200, reset.text
    assert reset.json()["must_change_password"] is True
    assert (await client.get("/api/auth/me", headers=agent)).status_code == 401
    assert (await _login(client, "agent.a@example.com", PASSWORD)).status_code == 401

    temp = await _login_headers(client, "agent.a@example.com", TEMP_PASSWORD)
    blocked = await _history(client, temp, world.customer_a.id)
    assert blocked.status_code == 403
    assert blocked.json()["error"]["code"] == "password_change_required"

    (entry,) = await _audit(client, admin, action="staff.password_reset")
    assert entry["entity_id"] == str(world.agent_a.id)
    assert entry["actor_id"] == str(world.manager_a.id)
    assert TEMP_PASSWORD not in str(entry)


async def test_role_change_is_for_admins_and_ends_the_targets_sessions(
    client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await bearer(world.manager_a)
    target = await bearer(world.agent_a2)
    path = f"/api/staff/{world.agent_a2.id}/role"

    assert (await client.post(path, headers=manager, json={"role": "manager"})).status_code == 403
    assert _fields(await client.post(path, headers=admin, json={"role": "customer"})) == {"role"}
    own = await client.post(
        f"/api/staff/{world.admin.id}/role", headers=admin, json={"role": "agent"}
    )
    assert own.status_code == 409
    assert (await client.get("/api/auth/me", headers=target)).status_code == 200

    changed = await client.post(path, headers=admin, json={"role": "manager"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "manager"
    assert changed.json()["branch_id"] == str(world.branch_a.id)
    assert (await client.get("/api/auth/me", headers=target)).status_code == 401
    promoted = await _login_headers(client, "agent.a2@example.com", PASSWORD)
    me = (await client.get("/api/auth/me", headers=promoted)).json()
    assert me["user"]["role"] == "manager"
    assert "staff:create" in me["permissions"]

    (entry,) = await _audit(client, admin, action="staff.role_changed")
    assert entry["entity_id"] == str(world.agent_a2.id)
    assert (entry["before"]["role"], entry["after"]["role"]) == ("agent", "manager")


async def test_role_change_drops_grants_the_new_role_cannot_hold(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    granted = await client.put(
        f"/api/staff/{world.manager_b.id}/permissions",
        headers=admin,
        json={"permissions": ["collection:reverse"]},
    )
    assert granted.status_code == 200, granted.text
    demoted = await client.post(
        f"/api/staff/{world.manager_b.id}/role", headers=admin, json={"role": "agent"}
    )
    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["extra_permissions"] == []


# --- extra permissions ---------------------------------------------------------------------------


async def test_admin_grants_extra_permissions_to_managers_only(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await bearer(world.manager_a)
    path = f"/api/staff/{world.manager_a.id}/permissions"

    granted = await client.put(path, headers=admin, json={"permissions": ["collection:reverse"]})
    assert granted.status_code == 200, granted.text
    assert granted.json() == {"extra_permissions": ["collection:reverse"]}
    me = (await client.get("/api/auth/me", headers=manager)).json()
    assert "collection:reverse" in me["permissions"]
    listed = await client.get(f"/api/staff/{world.manager_a.id}", headers=admin)
    assert listed.json()["extra_permissions"] == ["collection:reverse"]

    for permissions in (["staff:grant"], ["branch:manage"], ["no:such-thing"]):
        response = await client.put(path, headers=admin, json={"permissions": permissions})
        assert _fields(response) == {"permissions"}, permissions
    agent_path = f"/api/staff/{world.agent_a.id}/permissions"
    refused = await client.put(
        agent_path, headers=admin, json={"permissions": ["collection:reverse"]}
    )
    assert _fields(refused) == {"permissions"}
    assert (await client.put(path, headers=manager, json={"permissions": []})).status_code == 403

    (entry,) = await _audit(client, admin, action="staff.permissions_changed")
    assert entry["entity_id"] == str(world.manager_a.id)
    assert entry["before"] == {"permissions": []}
    assert entry["after"] == {"permissions": ["collection:reverse"]}


async def test_the_audit_log_needs_the_grant(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await bearer(world.manager_a)
    for user in (world.manager_a, world.agent_a, world.customer_user_a):
        response = await client.get("/api/audit", headers=await bearer(user))
        assert response.status_code == 403, user.name

    path = f"/api/staff/{world.manager_a.id}/permissions"
    assert (await client.put(path, headers=admin, json={"permissions": ["audit:read"]})).is_success
    assert (await client.get("/api/audit", headers=manager)).status_code == 200
    assert (await client.put(path, headers=admin, json={"permissions": []})).is_success
    assert (await client.get("/api/audit", headers=manager)).status_code == 403


async def test_a_manager_reads_only_their_branch_in_the_audit_log(
    client, app, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    from namma.audit.service import AuditActor, audit_record

    actors = {
        "agent_a": world.agent_a,
        "customer_a": world.customer_user_a,
        "manager_a": world.manager_a,
        "agent_b": world.agent_b,
        "customer_b": world.customer_user_b,
        "manager_b": world.manager_b,
        "admin": world.admin,
    }
    for name, user in actors.items():
        async with transaction(app.state.db) as session:
            await audit_record(
                session,
                actor=AuditActor(actor_id=user.id, actor_role=user.role.value),
                action="test.scoped",
                entity_type="test",
                entity_id=name,
            )
    async with transaction(app.state.db) as session:
        await audit_record(
            session,
            actor=AuditActor.system(),
            action="test.scoped",
            entity_type="test",
            entity_id="system",
        )
    admin = await bearer(world.admin)
    path = f"/api/staff/{world.manager_a.id}/permissions"
    assert (await client.put(path, headers=admin, json={"permissions": ["audit:read"]})).is_success

    seen = {
        e["entity_id"]
        for e in await _audit(client, await bearer(world.manager_a), action="test.scoped")
    }
    assert seen == {"agent_a", "customer_a", "manager_a"}
    everything = {e["entity_id"] for e in await _audit(client, admin, action="test.scoped")}
    assert everything == {*actors, "system"}


# --- agent assignments ---------------------------------------------------------------------------


async def test_reassigning_a_customer_keeps_the_history(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await bearer(world.manager_a)
    agent_a = await bearer(world.agent_a)
    agent_a2 = await bearer(world.agent_a2)
    assert (await _history(client, agent_a, world.customer_a.id)).status_code == 200
    assert (await _history(client, agent_a2, world.customer_a.id)).status_code == 404

    moved = await client.put(
        f"/api/customers/{world.customer_a.id}/agent",
        headers=manager,
        json={"agent_id": str(world.agent_a2.id), "reason": "route change"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["agent_id"] == str(world.agent_a2.id)
    assert moved.json()["ended_at"] is None
    assert moved.json()["assigned_by_id"] == str(world.manager_a.id)
    assert moved.json()["reason"] == "route change"

    history = (await _history(client, manager, world.customer_a.id)).json()["assignments"]
    assert [a["agent_id"] for a in history] == [str(world.agent_a2.id), str(world.agent_a.id)]
    assert history[0]["ended_at"] is None
    assert history[1]["ended_at"] is not None
    assert history[1]["ended_at"] <= history[0]["assigned_at"]

    assert (await _history(client, agent_a, world.customer_a.id)).status_code == 404
    assert (await _history(client, agent_a2, world.customer_a.id)).status_code == 200

    (entry,) = await _audit(client, admin, action="customer.agent_assigned")
    assert entry["entity_id"] == str(world.customer_a.id)
    assert entry["before"] == {"agent_id": str(world.agent_a.id)}
    assert entry["after"]["agent_id"] == str(world.agent_a2.id)
    assert entry["actor_id"] == str(world.manager_a.id)


async def test_assignments_that_cannot_be_made(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await bearer(world.manager_a)
    assert (
        await client.post(f"/api/staff/{world.agent_a2.id}/deactivate", headers=admin)
    ).status_code == 200

    def put(customer: Any, agent_id: Any) -> Any:
        return client.put(
            f"/api/customers/{customer.id}/agent", headers=manager, json={"agent_id": str(agent_id)}
        )

    for agent_id in (world.agent_b.id, world.manager_a.id, uuid.uuid4(), world.agent_a2.id):
        assert _fields(await put(world.customer_a, agent_id)) == {"agent_id"}, agent_id
    same = await put(world.customer_a, world.agent_a.id)
    assert same.status_code == 409, same.text
    assert (await put(world.customer_b, world.agent_b.id)).status_code == 404  # other branch
    agent = await bearer(world.agent_a)
    refused = await client.put(
        f"/api/customers/{world.customer_a.id}/agent",
        headers=agent,
        json={"agent_id": str(world.agent_a.id)},
    )
    assert refused.status_code == 403

    history = (await _history(client, admin, world.customer_a.id)).json()["assignments"]
    assert len(history) == 1 and history[0]["ended_at"] is None
    assert await _audit(client, admin, action="customer.agent_assigned") == []


async def test_ending_an_assignment(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await bearer(world.manager_a)
    agent = await bearer(world.agent_a)
    path = f"/api/customers/{world.customer_a.id}/agent/end"

    ended = await client.post(path, headers=manager, json={"reason": "moved to Chennai"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["ended_at"] is not None
    assert (await client.post(path, headers=manager, json={})).status_code == 409
    assert (await _history(client, agent, world.customer_a.id)).status_code == 404
    history = (await _history(client, manager, world.customer_a.id)).json()["assignments"]
    assert len(history) == 1 and history[0]["ended_at"] is not None

    (entry,) = await _audit(client, admin, action="customer.agent_unassigned")
    assert entry["before"] == {"agent_id": str(world.agent_a.id)}
    assert entry["after"] == {"agent_id": None, "reason": "moved to Chennai"}

    back = await client.put(
        f"/api/customers/{world.customer_a.id}/agent",
        headers=manager,
        json={"agent_id": str(world.agent_a.id)},
    )
    assert back.status_code == 200, back.text
    assert (await _history(client, agent, world.customer_a.id)).status_code == 200


async def _more_customers_of(app, world: World, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    """``count`` more branch-A customers, all served by agent_a."""
    ids = []
    async with transaction(app.state.db) as session:
        for n in range(count):
            customer = Customer(
                branch_id=world.branch_a.id, name=f"Customer {n}", phone=f"91000001{n:02d}"
            )
            session.add(customer)
            await session.flush()
            session.add(AgentAssignment(customer_id=customer.id, agent_id=world.agent_a.id))
            ids.append(str(customer.id))
    return ids


async def test_bulk_reassign_moves_the_agents_customers(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await bearer(world.manager_a)
    extra = await _more_customers_of(app, world, 2)
    everyone = {str(world.customer_a.id), *extra}

    moved = await client.post(
        f"/api/agents/{world.agent_a.id}/reassign",
        headers=manager,
        json={"to_agent_id": str(world.agent_a2.id), "reason": "Arun on leave"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["count"] == 3
    assert set(moved.json()["moved"]) == everyone
    for customer_id in everyone:
        assert await _open_agent(client, admin, customer_id) == str(world.agent_a2.id)
    agent_a = await bearer(world.agent_a)
    assert (await _history(client, agent_a, world.customer_a.id)).status_code == 404
    assert (await _open_agent(client, admin, world.customer_b.id)) == str(world.agent_b.id)
    assert len(await _audit(client, admin, action="customer.agent_assigned")) == 3

    some = await client.post(
        f"/api/agents/{world.agent_a2.id}/reassign",
        headers=manager,
        json={"to_agent_id": str(world.agent_a.id), "customer_ids": [extra[0]]},
    )
    assert some.status_code == 200, some.text
    assert some.json() == {"moved": [extra[0]], "count": 1}
    assert await _open_agent(client, admin, extra[0]) == str(world.agent_a.id)
    assert await _open_agent(client, admin, extra[1]) == str(world.agent_a2.id)


async def test_bulk_reassign_is_all_or_nothing(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    manager = await bearer(world.manager_a)
    (extra,) = await _more_customers_of(app, world, 1)
    path = f"/api/agents/{world.agent_a.id}/reassign"

    # customer_b is neither served by agent_a nor in the manager's branch.
    listed = [str(world.customer_a.id), extra, str(world.customer_b.id)]
    refused = await client.post(
        path, headers=manager, json={"to_agent_id": str(world.agent_a2.id), "customer_ids": listed}
    )
    assert _fields(refused) == {"customer_ids"}
    assert str(world.customer_b.id) in refused.json()["error"]["message"]

    other_branch = await client.post(
        path, headers=manager, json={"to_agent_id": str(world.agent_b.id)}
    )
    assert _fields(other_branch) == {"agent_id"}
    to_self = await client.post(path, headers=manager, json={"to_agent_id": str(world.agent_a.id)})
    assert _fields(to_self) == {"to_agent_id"}

    for customer_id in (world.customer_a.id, extra):
        assert await _open_agent(client, admin, customer_id) == str(world.agent_a.id)
        history = (await _history(client, admin, customer_id)).json()["assignments"]
        assert len(history) == 1
    assert await _audit(client, admin, action="customer.agent_assigned") == []


async def test_bulk_reassign_from_an_unknown_agent_is_404(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    response = await client.post(
        f"/api/agents/{uuid.uuid4()}/reassign",
        headers=admin,
        json={"to_agent_id": str(world.agent_a2.id)},
    )
    assert response.status_code == 404, response.text


# --- the staff list ------------------------------------------------------------------------------


async def _walk(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(50):
        query = {"limit": 2, **params, **({"after": after} if after else {})}
        response = await client.get("/api/staff", headers=headers, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["staff"]) <= 2
        seen.extend(page["staff"])
        after = page["next"]
        if after is None:
            return seen
    raise AssertionError("the staff list never ended")


async def test_staff_list_pages_through_the_callers_scope(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    # A namesake of an existing agent: the cursor must break the tie on id.
    namesake = await client.post(
        "/api/staff",
        headers=admin,
        json=_staff_body(world, name=world.agent_a.name, email="arun.two@example.com"),
    )
    assert namesake.status_code == 201, namesake.text

    everyone = await _walk(client, admin)
    ids = [s["id"] for s in everyone]
    assert len(ids) == len(set(ids)) == 7  # admin, 2 managers, 4 agents; no customers
    assert all(s["role"] != "customer" for s in everyone)
    whole = await client.get("/api/staff", headers=admin, params={"limit": 200})
    assert [s["id"] for s in whole.json()["staff"]] == ids
    names = [s["name"] for s in everyone]
    assert names == sorted(names)

    manager = await bearer(world.manager_a)
    branch = await _walk(client, manager)
    assert {s["id"] for s in branch} == {
        str(world.manager_a.id),
        str(world.agent_a.id),
        str(world.agent_a2.id),
        namesake.json()["id"],
    }
    assert len(branch) == 4
    agents = await _walk(client, manager, role="agent")
    assert len(agents) == 3 and all(s["role"] == "agent" for s in agents)
    other = await _walk(client, manager, branch_id=str(world.branch_b.id))
    assert other == []

    bad = await client.get("/api/staff", headers=admin, params={"after": "not a cursor"})
    assert _fields(bad) == {"after"}
