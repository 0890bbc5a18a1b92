//! The vocabulary every layer shares: an observed [`Key`], its settable
//! [`Field`]s and their typed [`FieldValue`]s, the [`Settings`] a rule
//! asserts, the account's [`Credits`], the [`event::EventKind`]s recorded, and the UTC [`Window`]s usage is
//! counted in and limits reset on, with their bounds, and the account's
//! [`Workspace`]s.
//!
//! Nothing here does I/O; the rules, the core, the client, the store and the
//! sandbox all speak these types.

pub mod credits;
pub mod event;
pub mod field;
pub mod guardrail;
pub mod key;
pub mod settings;
pub mod timestamp;
pub mod window;
pub mod workspace;

pub use credits::Credits;
pub use field::{Field, FieldValue};
pub use guardrail::{Guardrail, GuardrailId, GuardrailRef};
pub use key::Key;
pub use settings::Settings;
pub use window::{LimitReset, Window, WindowBounds};
pub use workspace::Workspace;
