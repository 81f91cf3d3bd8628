//! The SQLite store: one table of JSON documents, names unique per kind.

use std::path::Path;
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::error::{CatalogError, Result};
use crate::model::{JobRecord, PipelineDef, Profile, TableDef, ViewDef};

const PROFILE: &str = "connection profile";
const TABLE: &str = "table";
const PIPELINE: &str = "pipeline";
const JOB: &str = "job";
const VIEW: &str = "view";

/// The persisted catalog. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: SqlitePool,
    path: String,
    /// Where the catalog lives, next to which checkpoints go (`None` in memory).
    data_dir: Option<std::path::PathBuf>,
}

impl Catalog {
    /// Open (creating if needed) `<data_dir>/catalog.db`.
    pub async fn open(data_dir: &Path) -> Result<Catalog> {
        let path = data_dir.join("catalog.db");
        let display = path.display().to_string();
        let storage = |source| CatalogError::Storage {
            path: display.clone(),
            source,
        };
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{display}"))
            .map_err(storage)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(storage)?;
        Self::init(pool, display, Some(data_dir.to_path_buf())).await
    }

    /// An in-memory catalog, for tests.
    pub async fn in_memory() -> Result<Catalog> {
        let display = ":memory:".to_string();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .map_err(|source| CatalogError::Storage {
                path: display.clone(),
                source,
            })?;
        Self::init(pool, display, None).await
    }

    /// The data directory (`None` for an in-memory catalog).
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    async fn init(
        pool: SqlitePool,
        path: String,
        data_dir: Option<std::path::PathBuf>,
    ) -> Result<Catalog> {
        let catalog = Catalog {
            pool,
            path,
            data_dir,
        };
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS objects (
                kind TEXT NOT NULL,
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                body TEXT NOT NULL,
                UNIQUE (kind, name)
            )",
        )
        .execute(&catalog.pool)
        .await
        .map_err(|e| catalog.storage(e))?;
        Ok(catalog)
    }

    fn storage(&self, source: sqlx::Error) -> CatalogError {
        CatalogError::Storage {
            path: self.path.clone(),
            source,
        }
    }

    async fn insert<T: Serialize>(
        &self,
        kind: &'static str,
        id: &str,
        name: &str,
        doc: &T,
    ) -> Result<()> {
        let body = serde_json::to_string(doc).map_err(|source| CatalogError::Corrupt {
            id: id.to_string(),
            source,
        })?;
        let result = sqlx::query("INSERT INTO objects (kind, id, name, body) VALUES (?, ?, ?, ?)")
            .bind(kind)
            .bind(id)
            .bind(name)
            .bind(body)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(CatalogError::Duplicate {
                    kind,
                    name: name.to_string(),
                })
            }
            Err(e) => Err(self.storage(e)),
        }
    }

    async fn update<T: Serialize>(&self, id: &str, doc: &T) -> Result<()> {
        let body = serde_json::to_string(doc).map_err(|source| CatalogError::Corrupt {
            id: id.to_string(),
            source,
        })?;
        sqlx::query("UPDATE objects SET body = ? WHERE id = ?")
            .bind(body)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.storage(e))?;
        Ok(())
    }

    async fn list<T: DeserializeOwned>(&self, kind: &'static str) -> Result<Vec<T>> {
        let rows = sqlx::query("SELECT id, body FROM objects WHERE kind = ? ORDER BY rowid")
            .bind(kind)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.storage(e))?;
        rows.iter().map(decode).collect()
    }

    /// Find by id, or else by name.
    async fn find<T: DeserializeOwned>(&self, kind: &'static str, id_or_name: &str) -> Result<T> {
        let row = sqlx::query(
            "SELECT id, body FROM objects WHERE kind = ? AND (id = ? OR name = ?) \
             ORDER BY id = ? DESC LIMIT 1",
        )
        .bind(kind)
        .bind(id_or_name)
        .bind(id_or_name)
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.storage(e))?;
        match row {
            Some(row) => decode(&row),
            None => Err(CatalogError::NotFound {
                kind,
                name: id_or_name.to_string(),
            }),
        }
    }

    async fn delete(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM objects WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.storage(e))?;
        Ok(())
    }

    // --- profiles

    /// Store a new profile; its name must be unused.
    pub async fn create_profile(&self, profile: &Profile) -> Result<()> {
        self.insert(PROFILE, &profile.id, &profile.name, profile)
            .await
    }

    /// All profiles, oldest first.
    pub async fn profiles(&self) -> Result<Vec<Profile>> {
        self.list(PROFILE).await
    }

    /// A profile by id or name.
    pub async fn profile(&self, id_or_name: &str) -> Result<Profile> {
        self.find(PROFILE, id_or_name).await
    }

    /// Drop a profile; refused while tables use it.
    pub async fn drop_profile(&self, id_or_name: &str) -> Result<Profile> {
        let profile = self.profile(id_or_name).await?;
        let users: Vec<String> = self
            .tables()
            .await?
            .into_iter()
            .filter(|t| t.connection_profile_id.as_deref() == Some(profile.id.as_str()))
            .map(|t| format!("table '{}'", t.name))
            .collect();
        if !users.is_empty() {
            return Err(CatalogError::InUse {
                kind: PROFILE,
                name: profile.name,
                users: users.join(", "),
            });
        }
        self.delete(&profile.id).await?;
        Ok(profile)
    }

    // --- tables

    /// Store a new table; its name must be unused.
    pub async fn create_table(&self, table: &TableDef) -> Result<()> {
        self.insert(TABLE, &table.id, &table.name, table).await
    }

    /// All tables, oldest first.
    pub async fn tables(&self) -> Result<Vec<TableDef>> {
        self.list(TABLE).await
    }

    /// A table by id or name.
    pub async fn table(&self, id_or_name: &str) -> Result<TableDef> {
        self.find(TABLE, id_or_name).await
    }

    /// Drop a table; refused while pipelines use it.
    pub async fn drop_table(&self, id_or_name: &str) -> Result<TableDef> {
        let table = self.table(id_or_name).await?;
        self.check_unused(TABLE, &table.name).await?;
        self.delete(&table.id).await?;
        Ok(table)
    }

    /// Refuse to drop `name` while pipelines or views read it.
    async fn check_unused(&self, kind: &'static str, name: &str) -> Result<()> {
        let mut users: Vec<String> = self
            .pipelines()
            .await?
            .into_iter()
            .filter(|p| p.tables.iter().any(|t| t == name))
            .map(|p| format!("pipeline '{}'", p.name))
            .collect();
        users.extend(
            self.views()
                .await?
                .into_iter()
                .filter(|v| v.tables.iter().any(|t| t == name))
                .map(|v| format!("view '{}'", v.name)),
        );
        if users.is_empty() {
            Ok(())
        } else {
            Err(CatalogError::InUse {
                kind,
                name: name.to_string(),
                users: users.join(", "),
            })
        }
    }

    // --- views

    /// Store a new view; its name must be unused.
    pub async fn create_view(&self, view: &ViewDef) -> Result<()> {
        self.insert(VIEW, &view.id, &view.name, view).await
    }

    /// All views, oldest first.
    pub async fn views(&self) -> Result<Vec<ViewDef>> {
        self.list(VIEW).await
    }

    /// A view by id or name.
    pub async fn view(&self, id_or_name: &str) -> Result<ViewDef> {
        self.find(VIEW, id_or_name).await
    }

    /// Drop a view; refused while pipelines or other views use it.
    pub async fn drop_view(&self, id_or_name: &str) -> Result<ViewDef> {
        let view = self.view(id_or_name).await?;
        self.check_unused(VIEW, &view.name).await?;
        self.delete(&view.id).await?;
        Ok(view)
    }

    // --- pipelines

    /// Store a new pipeline; its name must be unused.
    pub async fn create_pipeline(&self, pipeline: &PipelineDef) -> Result<()> {
        self.insert(PIPELINE, &pipeline.id, &pipeline.name, pipeline)
            .await
    }

    /// Replace a pipeline's document (state changes).
    pub async fn update_pipeline(&self, pipeline: &PipelineDef) -> Result<()> {
        self.update(&pipeline.id, pipeline).await
    }

    /// All pipelines, oldest first.
    pub async fn pipelines(&self) -> Result<Vec<PipelineDef>> {
        self.list(PIPELINE).await
    }

    /// A pipeline by id or name.
    pub async fn pipeline(&self, id_or_name: &str) -> Result<PipelineDef> {
        self.find(PIPELINE, id_or_name).await
    }

    /// Drop a pipeline and its jobs.
    pub async fn drop_pipeline(&self, id: &str) -> Result<()> {
        for job in self.jobs().await? {
            if job.pipeline_id == id {
                self.delete(&job.id).await?;
            }
        }
        self.delete(id).await
    }

    // --- jobs

    /// Store a new job.
    pub async fn create_job(&self, job: &JobRecord) -> Result<()> {
        self.insert(JOB, &job.id, &job.id, job).await
    }

    /// Replace a job's document.
    pub async fn update_job(&self, job: &JobRecord) -> Result<()> {
        self.update(&job.id, job).await
    }

    /// All jobs, oldest first.
    pub async fn jobs(&self) -> Result<Vec<JobRecord>> {
        self.list(JOB).await
    }

    /// A job by id.
    pub async fn job(&self, id: &str) -> Result<JobRecord> {
        self.find(JOB, id).await
    }
}

fn decode<T: DeserializeOwned>(row: &sqlx::sqlite::SqliteRow) -> Result<T> {
    let id: String = row.get("id");
    let body: String = row.get("body");
    serde_json::from_str(&body).map_err(|source| CatalogError::Corrupt { id, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DesiredState, new_id, now_rfc3339};

    fn table(name: &str, profile: Option<&str>) -> TableDef {
        TableDef {
            id: new_id("tbl"),
            name: name.into(),
            connector: "impulse".into(),
            table_type: "source".into(),
            connection_profile_id: profile.map(str::to_string),
            inline_profile: serde_json::json!({}),
            config: serde_json::json!({"event_rate": 1.0}),
            format: serde_json::Value::Null,
            fields: vec![],
            schema_inferred: true,
            event_time_field: None,
            watermark_delay: None,
            idle_time: None,
            primary_key: Vec::new(),
            created_at: now_rfc3339(),
            updated_at: now_rfc3339(),
        }
    }

    #[tokio::test]
    async fn names_are_unique_and_in_use_objects_are_kept() {
        let catalog = Catalog::in_memory().await.unwrap();
        let profile = Profile {
            id: new_id("prof"),
            name: "p".into(),
            connector: "impulse".into(),
            description: None,
            config: serde_json::json!({}),
            created_at: now_rfc3339(),
            updated_at: now_rfc3339(),
        };
        catalog.create_profile(&profile).await.unwrap();
        let err = catalog
            .create_profile(&Profile {
                id: new_id("prof"),
                ..profile.clone()
            })
            .await;
        assert!(
            matches!(err, Err(CatalogError::Duplicate { .. })),
            "{err:?}"
        );

        catalog
            .create_table(&table("t", Some(&profile.id)))
            .await
            .unwrap();
        let err = catalog.drop_profile("p").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection profile 'p' is in use by table 't'"
        );

        let pipeline = PipelineDef {
            id: new_id("pipe"),
            name: "pl".into(),
            query: "INSERT INTO x SELECT * FROM t".into(),
            parallelism: 1,
            checkpoint_interval_micros: 10_000_000,
            desired: DesiredState::Running,
            tables: vec!["t".into(), "x".into()],
            created_at: 0,
            updating_ttl_micros: None,
        };
        catalog.create_pipeline(&pipeline).await.unwrap();
        assert!(matches!(
            catalog.drop_table("t").await,
            Err(CatalogError::InUse { .. })
        ));
        catalog.drop_pipeline(&pipeline.id).await.unwrap();
        catalog.drop_table("t").await.unwrap();
        catalog.drop_profile(&profile.id).await.unwrap();
        assert!(matches!(
            catalog.profile("p").await,
            Err(CatalogError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn survives_reopen() {
        let dir = std::env::temp_dir().join(new_id("catalog-test"));
        std::fs::create_dir_all(&dir).unwrap();
        {
            let catalog = Catalog::open(&dir).await.unwrap();
            catalog.create_table(&table("kept", None)).await.unwrap();
        }
        let catalog = Catalog::open(&dir).await.unwrap();
        assert_eq!(catalog.table("kept").await.unwrap().name, "kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
