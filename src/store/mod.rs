//! SQLite storage (sqlx): one module per table family.
