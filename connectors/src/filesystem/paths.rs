//! Finding the files a source reads.

use std::path::{Path, PathBuf};

use crate::error::{ConnectorError, Result};

/// A local path from `path` (plain, or a `file://` URL).
pub(super) fn local_path(path: &str) -> Result<PathBuf> {
    if let Some(rest) = path.strip_prefix("file://") {
        return Ok(PathBuf::from(rest));
    }
    if let Some((scheme, _)) = path.split_once("://") {
        return Err(ConnectorError::InvalidValue {
            connector: "filesystem".into(),
            key: "path".into(),
            value: path.into(),
            expected: format!(
                "a local path or file:// URL ('{scheme}://' storage is not supported yet)"
            ),
        });
    }
    Ok(PathBuf::from(path))
}

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Hidden files and the sink's in-progress files are never read.
fn visible(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.starts_with('.') && !n.starts_with('_'))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !visible(&path) {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The files `path` names now, sorted, filtered by `pattern` (matched against the path
/// relative to the directory, or the file name for globs and single files).
pub(super) fn list_files(path: &str, pattern: Option<&regex::Regex>) -> Result<Vec<PathBuf>> {
    let io = |e: std::io::Error| ConnectorError::Io {
        connector: "filesystem".into(),
        message: format!("cannot list {path}: {e}"),
    };
    let local = local_path(path)?;
    let (base, mut files) = if is_glob(path) {
        let matches =
            glob::glob(&local.to_string_lossy()).map_err(|e| ConnectorError::InvalidValue {
                connector: "filesystem".into(),
                key: "path".into(),
                value: path.into(),
                expected: format!("a valid glob pattern ({e})"),
            })?;
        let files: Vec<PathBuf> = matches
            .filter_map(std::result::Result::ok)
            .filter(|p| p.is_file() && visible(p))
            .collect();
        (PathBuf::new(), files)
    } else if local.is_dir() {
        let mut files = Vec::new();
        walk(&local, &mut files).map_err(io)?;
        (local.clone(), files)
    } else if local.is_file() {
        (PathBuf::new(), vec![local.clone()])
    } else {
        return Err(ConnectorError::Io {
            connector: "filesystem".into(),
            message: format!("path '{path}' does not exist"),
        });
    };
    if let Some(pattern) = pattern {
        files.retain(|f| {
            let relative = f.strip_prefix(&base).unwrap_or(f);
            pattern.is_match(&relative.to_string_lossy())
        });
    }
    files.sort();
    Ok(files)
}
