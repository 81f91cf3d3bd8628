use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{ConnectorError, Result};

/// Table options of `filesystem`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSystemTable {
    /// Source: a file, a directory (read recursively) or a glob pattern (`/data/*.json`).
    /// Sink: the directory files are written to. Local paths or `file://` URLs.
    pub path: String,
    /// Source settings.
    pub source: Option<SourceOptions>,
    /// When the sink closes a file and starts the next.
    pub rolling_policy: Option<RollingPolicy>,
    /// How the sink names files.
    pub filename: Option<FileNaming>,
    /// How the sink spreads rows over subdirectories.
    pub partitioning: Option<Partitioning>,
    /// Object-store settings (`storage.aws_region`, ...), for remote paths.
    pub storage: Option<std::collections::BTreeMap<String, String>>,
}

/// `source.*` options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// Only read files whose path (relative to `path`) matches this regular expression.
    pub regex_pattern: Option<String>,
    /// Compression of JSON and CSV files; by default taken from the extension (`.gz`, `.zst`).
    pub compression: Option<Compression>,
    /// Keep watching `path` for new files instead of ending after the existing ones.
    pub watch: Option<bool>,
    /// How often a watching source looks for new files, in milliseconds (default 1000).
    #[schemars(range(min = 1))]
    pub watch_interval_ms: Option<u64>,
}

/// Compression of source files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Plain files.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

impl Compression {
    /// `raw` decompressed as `chosen` says, or else as the file extension (`gz`, `zst`) says.
    pub(super) fn reader(
        chosen: Option<Compression>,
        extension: Option<&str>,
        raw: Box<dyn std::io::Read + Send>,
    ) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        let by_extension = match extension {
            Some("gz") => Compression::Gzip,
            Some("zst") => Compression::Zstd,
            _ => Compression::None,
        };
        Ok(match chosen.unwrap_or(by_extension) {
            Compression::None => raw,
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
        })
    }
}

/// `rolling_policy.*` options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollingPolicy {
    /// Roll when a file reaches this size (`128MB`, `512KB`, bytes without a unit).
    pub file_size: Option<String>,
    /// Roll a file this long after it was opened (`10s`, `5m`, `1h`).
    pub interval: Option<String>,
    /// Roll a file that received no rows for this long (`30s`).
    pub inactivity_interval: Option<String>,
}

/// `filename.*` options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileNaming {
    /// Text every file name starts with (default `part`).
    pub prefix: Option<String>,
    /// File extension (default: the format's, `json` or `parquet`).
    pub suffix: Option<String>,
}

/// `partitioning.*` options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Partitioning {
    /// Comma-separated columns; rows go to `col=value/` subdirectories.
    pub fields: Option<String>,
    /// A strftime pattern of the time the file is opened (`%Y/%m/%d/%H`).
    pub time_pattern: Option<String>,
}

/// Parse `128MB`, `512 KB`, `1GB`, `1000`.
pub(super) fn parse_size(key: &str, value: &str) -> Result<u64> {
    let text = value.trim().to_ascii_uppercase();
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = text[digits.len()..].trim();
    let factor: u64 = match unit {
        "" | "B" => 1,
        "KB" | "K" | "KIB" => 1 << 10,
        "MB" | "M" | "MIB" => 1 << 20,
        "GB" | "G" | "GIB" => 1 << 30,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if factor > 0 && n > 0 => Ok(n * factor),
        _ => Err(ConnectorError::InvalidValue {
            connector: "filesystem".into(),
            key: key.into(),
            value: value.into(),
            expected: "a size such as 128MB, 512KB or 1GB".into(),
        }),
    }
}

/// Parse a positive duration option.
pub(super) fn parse_duration(key: &str, value: &str) -> Result<std::time::Duration> {
    match crate::options::parse_duration(value) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(ConnectorError::InvalidValue {
            connector: "filesystem".into(),
            key: key.into(),
            value: value.into(),
            expected: crate::options::DURATION_EXPECTED.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("k", "128MB").unwrap(), 128 << 20);
        assert_eq!(parse_size("k", "4096").unwrap(), 4096);
        assert!(parse_size("k", "lots").is_err());
        assert_eq!(parse_duration("k", "10s").unwrap().as_millis(), 10_000);
        assert_eq!(parse_duration("k", "500ms").unwrap().as_millis(), 500);
        let err = parse_duration("rolling_policy.interval", "soon").unwrap_err();
        assert!(err.to_string().contains("rolling_policy.interval"), "{err}");
    }
}
