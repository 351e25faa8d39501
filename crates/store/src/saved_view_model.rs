//! Saved views: a Trace Explorer filter set kept by name, for its owner or for everyone.

pub type SavedViewId = i64;

#[derive(Debug, Clone, PartialEq)]
pub struct SavedView {
    pub id: SavedViewId,
    pub name: String,
    /// The Trace Explorer's query string (`status=error&model=gpt-4o`), checked by the caller.
    pub query: String,
    pub owner_id: i64,
    /// The owner's email (read with the view).
    pub owner_email: String,
    /// Everyone sees it, not only its owner.
    pub shared: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A view to save, or what to replace one with (its owner stays).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSavedView {
    pub name: String,
    pub query: String,
    pub owner_id: i64,
    pub shared: bool,
}
