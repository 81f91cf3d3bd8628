//! Checkpoints on disk: `<data_dir>/checkpoints/<pipeline id>/<epoch>.json`, one JSON
//! document each, written whole (temporary file, fsync, rename) so a crash leaves either the
//! previous complete checkpoint or the new one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{EngineError, Result};

/// Complete checkpoints kept per pipeline; older ones are removed.
const KEEP: usize = 5;

/// One complete checkpoint of a pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub pipeline_id: String,
    /// The job (run) that took it.
    pub job_id: String,
    /// 1, 2, ... across the pipeline's jobs: a resumed job goes on from its checkpoint's.
    pub epoch: u64,
    /// Epoch milliseconds: the barrier, and when the checkpoint was durable.
    pub start_time: i64,
    pub finish_time: i64,
    /// Source positions by source key (`table/partition`).
    pub sources: BTreeMap<String, Value>,
    /// Operator state by operator key, as the operator serialized it.
    pub operators: BTreeMap<String, Value>,
    /// What the sink's `prepare` returned, for `commit` (repeated on recovery).
    pub sink: Value,
}

/// The checkpoints of one pipeline.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

fn io(path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::Checkpoint(format!("checkpoint storage {}: {e}", path.display()))
}

impl CheckpointStore {
    pub fn new(data_dir: &Path, pipeline_id: &str) -> Self {
        CheckpointStore {
            dir: data_dir.join("checkpoints").join(pipeline_id),
        }
    }

    fn path(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("{epoch:012}.json"))
    }

    /// Make a checkpoint durable, then prune old ones.
    pub fn write(&self, record: &CheckpointRecord) -> Result<u64> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let body = serde_json::to_vec(record).map_err(|e| io(&self.dir, e))?;
        let path = self.path(record.epoch);
        let temporary = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&temporary).map_err(|e| io(&temporary, e))?;
        file.write_all(&body).map_err(|e| io(&temporary, e))?;
        file.sync_all().map_err(|e| io(&temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| io(&path, e))?;
        // The rename is durable once the directory is synced.
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.prune()?;
        Ok(body.len() as u64)
    }

    /// Epochs of complete checkpoints, oldest first.
    fn epochs(&self) -> Result<Vec<u64>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir, e)),
        };
        let mut epochs: Vec<u64> = entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.strip_suffix(".json")?.parse().ok()
            })
            .collect();
        epochs.sort_unstable();
        Ok(epochs)
    }

    fn prune(&self) -> Result<()> {
        let epochs = self.epochs()?;
        for epoch in epochs.iter().take(epochs.len().saturating_sub(KEEP)) {
            let path = self.path(*epoch);
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
        Ok(())
    }

    fn read(&self, epoch: u64) -> Result<(CheckpointRecord, u64)> {
        let path = self.path(epoch);
        let body = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let record = serde_json::from_slice(&body).map_err(|e| io(&path, e))?;
        Ok((record, body.len() as u64))
    }

    /// The newest complete checkpoint, which a resumed job starts from.
    pub fn latest(&self) -> Result<Option<CheckpointRecord>> {
        match self.epochs()?.last() {
            Some(epoch) => Ok(Some(self.read(*epoch)?.0)),
            None => Ok(None),
        }
    }

    /// Remove the checkpoints newer than `epoch` (their output was never committed) and
    /// return the newest one left.
    pub fn discard_after(&self, epoch: u64) -> Result<Option<CheckpointRecord>> {
        for newer in self.epochs()?.into_iter().filter(|e| *e > epoch) {
            let path = self.path(newer);
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
        self.latest()
    }

    /// Every kept checkpoint with its size in bytes, oldest first.
    pub fn list(&self) -> Result<Vec<(CheckpointRecord, u64)>> {
        self.epochs()?.into_iter().map(|e| self.read(e)).collect()
    }

    /// Forget every checkpoint (the pipeline was dropped).
    pub fn remove_all(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&self.dir, e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: u64) -> CheckpointRecord {
        CheckpointRecord {
            pipeline_id: "p".into(),
            job_id: "j".into(),
            epoch,
            start_time: 1,
            finish_time: 2,
            sources: BTreeMap::from([("t/0".to_string(), serde_json::json!({"emitted": epoch}))]),
            operators: BTreeMap::new(),
            sink: Value::Null,
        }
    }

    #[test]
    fn keeps_the_newest_checkpoints() {
        let dir = std::env::temp_dir().join(format!("laminar-ckpt-test-{}", std::process::id()));
        let store = CheckpointStore::new(&dir, "p");
        assert!(store.latest().unwrap().is_none());
        for epoch in 1..=8 {
            store.write(&record(epoch)).unwrap();
        }
        let kept: Vec<u64> = store.list().unwrap().iter().map(|(r, _)| r.epoch).collect();
        assert_eq!(kept, vec![4, 5, 6, 7, 8]);
        let latest = store.latest().unwrap().unwrap();
        assert_eq!(latest.sources["t/0"]["emitted"], 8);
        // A temporary file from a crash mid-write is not a checkpoint.
        std::fs::write(store.path(9).with_extension("json.tmp"), b"{").unwrap();
        assert_eq!(store.latest().unwrap().unwrap().epoch, 8);
        // A sink committed up to 7 only: 8 goes, 7 is resumed from.
        assert_eq!(store.discard_after(7).unwrap().unwrap().epoch, 7);
        assert_eq!(store.latest().unwrap().unwrap().epoch, 7);
        store.remove_all().unwrap();
        assert!(store.list().unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
