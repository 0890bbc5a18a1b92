//! A workspace of the account (SPEC §12): keys live in one each, and
//! selectors and `[openrouter] workspaces` name them by id, slug or name.

use serde::{Deserialize, Serialize};

/// One workspace, as `GET /workspaces` lists it (the fields keywarden uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Its UUID: what a key's `workspace_id` holds.
    pub id: String,
    /// Its URL-friendly slug, unique in the account (`research`).
    pub slug: String,
    /// Its display name (`Research`).
    pub name: String,
}

impl Workspace {
    /// Whether `id_or_slug` is this workspace's id or slug.
    pub fn is(&self, id_or_slug: &str) -> bool {
        self.id == id_or_slug || self.slug == id_or_slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_is_named_by_its_id_or_slug_and_reads_the_wire_object() {
        let w: Workspace = serde_json::from_str(
            r#"{"id": "550e8400", "slug": "research", "name": "Research", "description": null}"#,
        )
        .unwrap();
        assert!(w.is("550e8400") && w.is("research"));
        assert!(!w.is("Research"));
    }
}
