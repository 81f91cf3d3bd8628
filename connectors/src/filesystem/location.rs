//! Where a table's files live: a local directory or an object store (S3 and compatible).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use super::paths::local_path;
use crate::options::hint_for;

/// The `storage.*` keys most S3 users need (object_store accepts more, e.g. `aws_virtual_hosted_style_request`).
const S3_KEYS: &[&str] = &[
    "aws_region",
    "aws_endpoint",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_allow_http",
    "aws_virtual_hosted_style_request",
];
use crate::error::{ConnectorError, Result};

/// A table's `path`, resolved.
#[derive(Clone)]
pub(super) enum Location {
    /// A local file, directory or glob.
    Local(String),
    /// A prefix in an object store.
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        url: String,
    },
}

/// One file to read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum FileRef {
    Local(PathBuf),
    Object(ObjectPath),
}

impl std::fmt::Display for FileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileRef::Local(p) => write!(f, "{}", p.display()),
            FileRef::Object(p) => write!(f, "{p}"),
        }
    }
}

fn invalid(path: &str, expected: String) -> ConnectorError {
    ConnectorError::InvalidValue {
        connector: "filesystem".into(),
        key: "path".into(),
        value: path.into(),
        expected,
    }
}

impl Location {
    /// Resolve `path` with the table's `storage.*` options (object-store settings such as
    /// `aws_region`, `aws_endpoint`, `aws_access_key_id`, `aws_secret_access_key`,
    /// `aws_allow_http`).
    pub(super) fn resolve(
        path: &str,
        storage: Option<&BTreeMap<String, String>>,
    ) -> Result<Location> {
        let scheme = path.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            None | Some("file") => {
                if storage.is_some_and(|s| !s.is_empty()) {
                    return Err(ConnectorError::Config(
                        "storage.* options only apply to object-store paths (s3://...)".into(),
                    ));
                }
                local_path(path)?;
                Ok(Location::Local(path.to_string()))
            }
            Some("s3" | "s3a") => {
                let url =
                    Url::parse(path).map_err(|e| invalid(path, format!("a valid URL ({e})")))?;
                let options = storage.cloned().unwrap_or_default();
                // object_store ignores keys it does not know; a misspelled one is an error here.
                for key in options.keys() {
                    if key.parse::<object_store::aws::AmazonS3ConfigKey>().is_err() {
                        return Err(ConnectorError::UnknownOption {
                            connector: "filesystem".into(),
                            key: format!("storage.{key}"),
                            hint: hint_for(key, S3_KEYS.iter().copied()),
                        });
                    }
                }
                let (store, prefix) = object_store::parse_url_opts(&url, options).map_err(|e| {
                    invalid(
                        path,
                        format!("an object-store URL usable with the storage.* options ({e})"),
                    )
                })?;
                Ok(Location::Store {
                    store: Arc::from(store),
                    prefix,
                    url: path.to_string(),
                })
            }
            Some(other) => Err(invalid(
                path,
                format!("a local path, file:// or s3:// URL ('{other}://' is not supported yet)"),
            )),
        }
    }
}

fn store_error(url: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Io {
        connector: "filesystem".into(),
        message: format!("{url}: {e}"),
    }
}

/// Objects under `prefix`, sorted, hidden names skipped, filtered by `pattern` (matched
/// against the key relative to the prefix).
pub(super) async fn list_objects(
    store: &dyn ObjectStore,
    prefix: &ObjectPath,
    url: &str,
    pattern: Option<&regex::Regex>,
) -> Result<Vec<ObjectPath>> {
    use futures::TryStreamExt;
    let objects: Vec<_> = store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| store_error(url, e))?;
    let base = prefix.as_ref().trim_end_matches('/');
    let mut keys: Vec<ObjectPath> = objects
        .into_iter()
        .map(|o| o.location)
        .filter(|key| {
            key.filename()
                .is_some_and(|n| !n.starts_with('.') && !n.starts_with('_'))
        })
        .filter(|key| {
            let relative = key
                .as_ref()
                .strip_prefix(base)
                .unwrap_or(key.as_ref())
                .trim_start_matches('/');
            pattern.is_none_or(|p| p.is_match(relative))
        })
        .collect();
    keys.sort();
    Ok(keys)
}

/// The whole object.
pub(super) async fn get_object(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    url: &str,
) -> Result<Bytes> {
    let result = store.get(key).await.map_err(|e| store_error(url, e))?;
    result.bytes().await.map_err(|e| store_error(url, e))
}

/// Write a whole object (atomically visible).
pub(super) async fn put_object(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    bytes: Vec<u8>,
    url: &str,
) -> Result<()> {
    store
        .put(key, bytes.into())
        .await
        .map_err(|e| store_error(url, e))?;
    Ok(())
}
