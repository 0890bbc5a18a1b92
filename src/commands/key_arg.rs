//! The KEY argument of `history --key` and `exempt add`: a key hash, or a
//! key name resolved through the history or, failing that, the account.

use crate::config::Config;
use crate::exit::{Failure, UsageError};
use crate::openrouter::{Client, ClientSettings};
use crate::store::Store;

/// Resolves a KEY argument: a hash that history knows, a key name that
/// history knows for exactly one hash, anything shaped like a hash, or else
/// (when a credential is configured) a name the account has for exactly one
/// key, looked up live. Ambiguous and unknown names are usage errors.
pub async fn resolve_key(config: &Config, store: &Store, key: &str) -> anyhow::Result<String> {
    if store.key_hash_known(key).await? {
        return Ok(key.to_string());
    }
    let hashes = store.key_hashes_named(key).await?;
    match hashes.as_slice() {
        [hash] => Ok(hash.clone()),
        [] if looks_like_hash(key) => Ok(key.to_string()),
        [] => resolve_live(config, key).await,
        _ => Err(UsageError::new(format!(
            "the key name `{key}` is ambiguous: history knows it for the keys {}; give the hash",
            hashes.join(", ")
        ))),
    }
}

/// Looks a key name up on the account, when a credential is configured.
async fn resolve_live(config: &Config, key: &str) -> anyhow::Result<String> {
    let Ok(settings) = ClientSettings::from_config(config) else {
        return Err(UsageError::new(format!(
            "no key named `{key}` in the history; give the key's hash (64 hex digits, see `keywarden keys list`), \
             or set OPENROUTER_MANAGEMENT_KEY to look the name up on the account"
        )));
    };
    let keys = Client::new(settings)?.list_keys().await.map_err(|e| {
        anyhow::Error::new(Failure(format!(
            "no key named `{key}` in the history, and the account could not be asked: {}",
            e.explain()
        )))
    })?;
    let hashes: Vec<String> = keys
        .into_iter()
        .filter(|k| k.name == key)
        .map(|k| k.hash)
        .collect();
    match hashes.as_slice() {
        [hash] => Ok(hash.clone()),
        [] => Err(UsageError::new(format!(
            "no key named `{key}` in the history or on the account (see `keywarden keys list`)"
        ))),
        _ => Err(UsageError::new(format!(
            "the key name `{key}` is ambiguous: the account has it for the keys {}; give the hash",
            hashes.join(", ")
        ))),
    }
}

/// Whether `s` has the form of an OpenRouter key hash (64 hex digits).
fn looks_like_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
