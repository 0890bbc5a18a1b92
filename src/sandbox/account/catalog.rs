//! The account's workspaces, guardrails and key assignments: what the
//! `/workspaces` and `/guardrails` routes read and change.

use super::super::guardrail::{
    Assigned, Assignment, Guardrail, GuardrailFields, KeyAssignment, KeyHashes, Unassigned,
};
use super::super::ids::uuid_of;
use super::super::paging::{Page, PageRequest};
use super::super::workspace::{NewWorkspace, Workspace};
use super::{Account, AccountError, CREATOR, KeyRecord, State, rfc3339};
use chrono::{DateTime, Utc};

impl State {
    /// A fresh UUID for a record of `kind` (the same on every run).
    fn new_id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        uuid_of(&format!("{kind}\n{}", self.next_id))
    }

    fn guardrail(&self, id: &str) -> Result<&Guardrail, AccountError> {
        self.guardrails
            .iter()
            .find(|g| g.id == id)
            .ok_or(AccountError::GuardrailNotFound)
    }

    /// Refuses (403) a spend on `model` that the guardrail of key `hash`
    /// does not allow; a key without a guardrail may spend on any model.
    pub(super) fn admit(&self, hash: &str, model: &str) -> Result<(), AccountError> {
        let seq = self.by_hash.get(hash).ok_or(AccountError::NotFound)?;
        let Some(assignment) = self.keys.get(seq).and_then(|k| k.assignment.as_ref()) else {
            return Ok(());
        };
        let guardrail = self.guardrail(&assignment.guardrail_id)?;
        guardrail
            .admits(model)
            .map_err(|refusal| AccountError::ModelRefused {
                model: model.to_owned(),
                guardrail: guardrail.name.clone(),
                refusal,
            })
    }

    /// Every assignment (of `guardrail_id` only, when given), in key order.
    fn assignments(&self, guardrail_id: Option<&str>) -> Vec<KeyAssignment> {
        self.keys
            .values()
            .filter_map(|k| k.assignment.as_ref().map(|a| (k, a)))
            .filter(|(_, a)| guardrail_id.is_none_or(|g| a.guardrail_id == g))
            .map(|(key, assignment)| key_assignment(key, assignment))
            .collect()
    }
}

fn key_assignment(key: &KeyRecord, assignment: &Assignment) -> KeyAssignment {
    KeyAssignment {
        id: assignment.id.clone(),
        key_hash: key.hash.clone(),
        guardrail_id: assignment.guardrail_id.clone(),
        key_name: key.name.clone(),
        key_label: key.label.clone(),
        assigned_by: Some(CREATOR.into()),
        created_at: rfc3339(assignment.created_at),
    }
}

impl Account {
    /// One page of `GET /workspaces`, in creation order.
    pub fn workspaces(&self, page: PageRequest) -> Page<Workspace> {
        page.page(self.state().workspaces.clone())
    }

    /// `GET /workspaces/{id}`: one workspace by id or slug.
    pub fn workspace(&self, id_or_slug: &str) -> Result<Workspace, AccountError> {
        self.state()
            .workspaces
            .iter()
            .find(|w| w.is(id_or_slug))
            .cloned()
            .ok_or(AccountError::WorkspaceNotFound)
    }

    /// `POST /workspaces`: a new workspace; its slug must be unused (400).
    pub fn create_workspace(&self, new: NewWorkspace) -> Result<Workspace, AccountError> {
        new.validate()?;
        let mut state = self.state();
        if state.workspaces.iter().any(|w| w.slug == new.slug) {
            return Err(AccountError::Invalid(format!(
                "A workspace with slug {} already exists",
                new.slug
            )));
        }
        let id = state.new_id("workspace");
        let workspace = Workspace::create(id, new, state.clock.now());
        state.workspaces.push(workspace.clone());
        Ok(workspace)
    }

    /// `DELETE /workspaces/{id}` (id or slug): refused for the default
    /// workspace (403) and while any key is in it (400: "remove the keys
    /// first"); its guardrails go with it, and the keys that held them hold
    /// none after.
    pub fn delete_workspace(&self, id_or_slug: &str) -> Result<(), AccountError> {
        let mut state = self.state();
        let id = state
            .workspaces
            .iter()
            .find(|w| w.is(id_or_slug))
            .map(|w| w.id.clone())
            .ok_or(AccountError::WorkspaceNotFound)?;
        if id == super::DEFAULT_WORKSPACE {
            return Err(AccountError::DefaultWorkspace);
        }
        let keys = state.keys.values().filter(|k| k.workspace_id == id).count();
        if keys > 0 {
            return Err(AccountError::Invalid(format!(
                "Workspace {id_or_slug} still has {keys} API keys; remove the keys first"
            )));
        }
        let gone: Vec<String> = state
            .guardrails
            .iter()
            .filter(|g| g.workspace_id.as_deref() == Some(id.as_str()))
            .map(|g| g.id.clone())
            .collect();
        state.workspaces.retain(|w| w.id != id);
        state.guardrails.retain(|g| !gone.contains(&g.id));
        for key in state.keys.values_mut() {
            if key
                .assignment
                .as_ref()
                .is_some_and(|a| gone.contains(&a.guardrail_id))
            {
                key.assignment = None;
            }
        }
        Ok(())
    }

    /// One page of `GET /guardrails`: those of `workspace_id` (default:
    /// the default workspace), in creation order.
    pub fn guardrails(&self, page: PageRequest, workspace_id: Option<&str>) -> Page<Guardrail> {
        let workspace = workspace_id.unwrap_or(super::DEFAULT_WORKSPACE);
        let state = self.state();
        let listed = state
            .guardrails
            .iter()
            .filter(|g| g.workspace_id.as_deref() == Some(workspace))
            .cloned()
            .collect();
        page.page(listed)
    }

    /// `GET /guardrails/{id}`.
    pub fn guardrail(&self, id: &str) -> Result<Guardrail, AccountError> {
        self.state().guardrail(id).cloned()
    }

    /// `POST /guardrails`: a new guardrail in an existing workspace (400 otherwise).
    pub fn create_guardrail(&self, new: GuardrailFields) -> Result<Guardrail, AccountError> {
        let mut state = self.state();
        if let Some(ws) = &new.workspace_id {
            if !state.workspaces.iter().any(|w| &w.id == ws) {
                return Err(AccountError::Invalid(format!("No workspace has id {ws}")));
            }
        }
        let id = state.new_id("guardrail");
        let guardrail = new.create(id, state.clock.now())?;
        state.guardrails.push(guardrail.clone());
        Ok(guardrail)
    }

    /// `PATCH /guardrails/{id}`: sets the fields the body names; a
    /// guardrail does not change workspace (400).
    pub fn update_guardrail(
        &self,
        id: &str,
        fields: GuardrailFields,
    ) -> Result<Guardrail, AccountError> {
        let mut state = self.state();
        state.guardrail(id)?;
        fields.validate()?;
        if fields.workspace_id.is_some() {
            return Err(AccountError::Invalid(
                "`workspace_id` cannot be changed".into(),
            ));
        }
        let now = state.clock.now();
        let guardrail = state
            .guardrails
            .iter_mut()
            .find(|g| g.id == id)
            .ok_or(AccountError::GuardrailNotFound)?;
        fields.apply(guardrail);
        guardrail.updated_at = Some(rfc3339(now));
        Ok(guardrail.clone())
    }

    /// `DELETE /guardrails/{id}`: the keys that held it hold none after.
    pub fn delete_guardrail(&self, id: &str) -> Result<(), AccountError> {
        let mut state = self.state();
        state.guardrail(id)?;
        state.guardrails.retain(|g| g.id != id);
        for key in state.keys.values_mut() {
            if key
                .assignment
                .as_ref()
                .is_some_and(|a| a.guardrail_id == id)
            {
                key.assignment = None;
            }
        }
        Ok(())
    }

    /// `POST /guardrails/{id}/assignments/keys`: each known key of
    /// `hashes` holds guardrail `id` after, whatever it held before
    /// (unknown hashes are skipped and not counted).
    pub fn assign_keys(&self, id: &str, hashes: &KeyHashes) -> Result<Assigned, AccountError> {
        hashes.validate()?;
        let mut state = self.state();
        state.guardrail(id)?;
        let now = state.clock.now();
        let mut assigned_count = 0;
        for hash in unique(&hashes.key_hashes) {
            let Some(&seq) = state.by_hash.get(hash) else {
                continue;
            };
            let holds = |k: &KeyRecord| k.assignment.as_ref().is_some_and(|a| a.guardrail_id == id);
            if !state.keys.get(&seq).is_some_and(holds) {
                let assignment = new_assignment(&mut state, id, now);
                if let Some(key) = state.keys.get_mut(&seq) {
                    key.assignment = Some(assignment);
                }
            }
            assigned_count += 1;
        }
        Ok(Assigned { assigned_count })
    }

    /// `POST /guardrails/{id}/assignments/keys/remove`: the keys of
    /// `hashes` that held guardrail `id` hold none after.
    pub fn unassign_keys(&self, id: &str, hashes: &KeyHashes) -> Result<Unassigned, AccountError> {
        hashes.validate()?;
        let mut state = self.state();
        state.guardrail(id)?;
        let mut unassigned_count = 0;
        for hash in unique(&hashes.key_hashes) {
            let Some(&seq) = state.by_hash.get(hash) else {
                continue;
            };
            if let Some(key) = state.keys.get_mut(&seq) {
                if key
                    .assignment
                    .as_ref()
                    .is_some_and(|a| a.guardrail_id == id)
                {
                    key.assignment = None;
                    unassigned_count += 1;
                }
            }
        }
        Ok(Unassigned { unassigned_count })
    }

    /// One page of `GET /guardrails/{id}/assignments/keys` (with
    /// `guardrail_id`) or `GET /guardrails/assignments/keys` (every one), in
    /// key creation order.
    pub fn assignments(
        &self,
        guardrail_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<KeyAssignment>, AccountError> {
        let state = self.state();
        if let Some(id) = guardrail_id {
            state.guardrail(id)?;
        }
        let mut listed = page.page(state.assignments(guardrail_id));
        if let Some(cut) = state.faults.faults().assignments_cut_at {
            listed
                .data
                .truncate(cut.saturating_sub(page.offset.unwrap_or(0)));
        }
        Ok(listed)
    }
}

/// A new assignment to guardrail `id` at `now`.
fn new_assignment(state: &mut State, id: &str, now: DateTime<Utc>) -> Assignment {
    Assignment {
        id: state.new_id("assignment"),
        guardrail_id: id.to_owned(),
        created_at: now,
    }
}

/// `hashes` without repeats, in their order.
fn unique(hashes: &[String]) -> impl Iterator<Item = &str> {
    let mut seen = std::collections::HashSet::new();
    hashes
        .iter()
        .map(String::as_str)
        .filter(move |h| seen.insert(*h))
}
