"""Drives a keywarden sandbox with the official OpenRouter Python SDK.

Lists workspaces, lists and creates guardrails, bulk-assigns and unassigns
keys and lists the assignments. Every answer goes through the SDK's own
response validation (pydantic models generated from OpenRouter's OpenAPI
document); the script then asserts on the typed objects it returns.

Usage: KEYWARDEN_SANDBOX_KEY=sk-or-v1-... fidelity.py BASE_URL, BASE_URL
being the sandbox's `http://127.0.0.1:PORT/api/v1` and the variable its
management key; the sandbox holds exactly 5 keys, no workspace or guardrail
beyond those it starts with. Only loopback addresses are accepted.
Exits 0 and prints "ok" when every call was accepted.
"""

import os
import sys
from urllib.parse import urlparse

import openrouter
from openrouter import OpenRouter, components

CHEAP_MODELS_ONLY = "00000000-0000-4000-8000-00000000c4e9"
NO_TRAINING = "00000000-0000-4000-8000-0000000070a1"


def loopback_only(base_url: str) -> str:
    host = urlparse(base_url).hostname
    if host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit(f"refusing {base_url}: the fidelity test talks to a local sandbox only")
    return base_url


def every_page(first):
    """The results of every page of an offset/limit listing, following the
    SDK's own `next()`, and how many pages held any (after a full last page
    the SDK fetches one more, empty)."""
    results, pages, page = [], 0, first
    while page is not None:
        results.extend(page.result.data)
        pages += 1 if page.result.data else 0
        page = page.next()
    return results, pages


def main() -> None:
    base_url, key = loopback_only(sys.argv[1]), os.environ["KEYWARDEN_SANDBOX_KEY"]
    with OpenRouter(api_key=key, server_url=base_url, retry_config=None) as client:
        # Workspaces: the three the sandbox starts with, one page and then by slug.
        first = client.workspaces.list(limit=2)
        assert isinstance(first.result, components.ListWorkspacesResponse)
        assert first.result.total_count == 3, first.result
        workspaces, pages = every_page(first)
        assert pages == 2, pages
        assert [w.slug for w in workspaces] == ["default", "research", "support"]
        assert all(isinstance(w, components.Workspace) for w in workspaces)
        research = client.workspaces.get(id="research").data
        assert research.id == workspaces[1].id and research.name == "Research"
        created_ws = client.workspaces.create(name="Growth", slug="growth").data
        assert created_ws.slug == "growth" and created_ws.updated_at is None

        # Guardrails: the two it starts with, and one created here.
        guardrails, _ = every_page(client.guardrails.list())
        names = {g.name: g for g in guardrails}
        assert set(names) == {"cheap-models-only", "no-training"}, names
        cheap = names["cheap-models-only"]
        assert isinstance(cheap, components.Guardrail)
        assert cheap.id == CHEAP_MODELS_ONLY and "openai/gpt-4o-mini" in cheap.allowed_models
        assert names["no-training"].enable_paid_model_training is False
        created = client.guardrails.create(
            name="capped",
            limit_usd=50,
            reset_interval="monthly",
            allowed_providers=["openai", "anthropic"],
            workspace_id=research.id,
        ).data
        assert isinstance(created, components.Guardrail)
        assert created.limit_usd == 50 and created.reset_interval == "monthly"
        assert created.workspace_id == research.id
        fetched = client.guardrails.get(id=created.id).data
        assert fetched.allowed_providers == ["openai", "anthropic"]
        updated = client.guardrails.update(id=created.id, limit_usd=75).data
        assert updated.limit_usd == 75 and updated.updated_at is not None

        # Keys: every one of the default workspace, then bulk assignment.
        keys = client.api_keys.list(include_disabled=True).data
        hashes = [k.hash for k in keys]
        assert len(hashes) == 5, hashes
        assigned = client.guardrails.bulk_assign_keys(id=CHEAP_MODELS_ONLY, key_hashes=hashes)
        assert isinstance(assigned, components.BulkAssignKeysResponse)
        assert assigned.assigned_count == 5
        # Assigning replaces: the first key moves to no-training.
        moved = client.guardrails.bulk_assign_keys(id=NO_TRAINING, key_hashes=hashes[:1])
        assert moved.assigned_count == 1

        on_cheap, pages = every_page(
            client.guardrails.list_guardrail_key_assignments(id=CHEAP_MODELS_ONLY, limit=2)
        )
        assert pages == 2, pages
        assert [a.key_hash for a in on_cheap] == hashes[1:]
        assert all(isinstance(a, components.KeyAssignment) for a in on_cheap)
        assert {a.key_name for a in on_cheap} == {k.name for k in keys[1:]}

        unassigned = client.guardrails.bulk_unassign_keys(
            id=CHEAP_MODELS_ONLY, key_hashes=hashes[1:3]
        )
        assert isinstance(unassigned, components.BulkUnassignKeysResponse)
        assert unassigned.unassigned_count == 2

        everything, _ = every_page(client.guardrails.list_key_assignments(limit=100))
        held = {a.key_hash: a.guardrail_id for a in everything}
        assert held == {
            hashes[0]: NO_TRAINING,
            hashes[3]: CHEAP_MODELS_ONLY,
            hashes[4]: CHEAP_MODELS_ONLY,
        }, held

        # Errors come back as the SDK's typed errors.
        try:
            client.guardrails.get(id="00000000-0000-4000-8000-000000000000")
            raise AssertionError("an unknown guardrail must be a 404")
        except openrouter.errors.NotFoundResponseError as e:
            assert e.data.error.code == 404, e.data
        try:
            client.workspaces.create(name="Bad", slug="Not A Slug")
            raise AssertionError("a bad slug must be a 400")
        except openrouter.errors.BadRequestResponseError as e:
            assert e.data.error.code == 400, e.data

        deleted = client.guardrails.delete(id=created.id)
        assert deleted.DELETED is True  # the SDK names the const field so
    print("ok")


if __name__ == "__main__":
    main()
