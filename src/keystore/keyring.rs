//! The Linux kernel keyring through keyring-core and linux-keyutils-keyring-store. Descriptions
//! are `chamber:<key>|<service>`: the store's default divider `@` would be ambiguous with JIDs
//! in the key (STACK.md), so `|`, which the service name may not contain, divides them.

use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::api::CredentialStoreApi;
use linux_keyutils_keyring_store::Store;

use super::KeystoreError;

const STORE: &str = "Linux kernel keyring";

pub(super) struct KeyringStore {
    store: Arc<Store>,
    service: String,
}

fn fail(e: keyring_core::Error) -> KeystoreError {
    KeystoreError::Keyring {
        store: STORE,
        reason: e.to_string(),
    }
}

impl KeyringStore {
    /// Opens the store and proves it works with a write, read and delete, so that `auto` can
    /// fall back before any real secret is involved.
    pub(super) fn open(service: &str) -> Result<KeyringStore, KeystoreError> {
        if service.is_empty() || service.contains('|') {
            return Err(KeystoreError::Keyring {
                store: STORE,
                reason: format!("service name `{service}` must be non-empty and without `|`"),
            });
        }
        let config = HashMap::from([
            ("prefix", "chamber:"),
            ("divider", "|"),
            ("service_no_divider", "true"),
        ]);
        let store = Store::new_with_configuration(&config).map_err(fail)?;
        let k = KeyringStore {
            store,
            service: service.into(),
        };
        let probe = format!("probe-{}", std::process::id());
        k.set(&probe, b"probe")?;
        let back = k.get(&probe)?;
        k.delete(&probe)?;
        if back.as_deref() != Some(b"probe".as_slice()) {
            return Err(KeystoreError::Keyring {
                store: STORE,
                reason: "a test secret did not read back".into(),
            });
        }
        Ok(k)
    }

    fn entry(&self, key: &str) -> Result<keyring_core::Entry, KeystoreError> {
        self.store.build(&self.service, key, None).map_err(fail)
    }

    pub(super) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KeystoreError> {
        match self.entry(key)?.get_secret() {
            Ok(v) => Ok(Some(v)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(fail(e)),
        }
    }

    pub(super) fn set(&self, key: &str, value: &[u8]) -> Result<(), KeystoreError> {
        self.entry(key)?.set_secret(value).map_err(fail)
    }

    pub(super) fn delete(&self, key: &str) -> Result<bool, KeystoreError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(fail(e)),
        }
    }
}
