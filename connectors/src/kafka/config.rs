//! Kafka options: one profile struct (brokers, authentication, registry) and one table struct
//! (topic, source and sink settings), serving SQL `WITH` options and REST alike. Both become
//! one librdkafka client configuration in [`client_config`].

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{ConnectorError, Result};

/// Connection settings of `kafka` (a connection profile, or options on the table).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaProfile {
    /// `host:port` of one or more brokers, comma-separated.
    pub bootstrap_servers: Option<String>,
    /// How to authenticate (SQL: `auth.type`, `auth.protocol`, ...).
    pub auth: Option<Authentication>,
    /// The same as `auth`, as the REST API spells it (`authentication`).
    pub authentication: Option<Authentication>,
    /// TLS files for `SSL` / `SASL_SSL` (`tls.ca`, `tls.cert`, `tls.key`).
    pub tls: Option<TlsFiles>,
    /// Confluent schema registry (SQL: `schema_registry.endpoint`, ...).
    pub schema_registry: Option<SchemaRegistry>,
    /// The same as `schema_registry`, as the REST API spells it (`schemaRegistryEnum`).
    pub schema_registry_enum: Option<SchemaRegistry>,
    /// Extra librdkafka properties for every client of this profile.
    pub connection_properties: Option<BTreeMap<String, String>>,
}

/// `auth.*`: SASL or none.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authentication {
    /// `none`, `sasl` or `aws_msk_iam` (implied by the other settings when omitted).
    #[serde(rename = "type")]
    pub kind: Option<AuthKind>,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub protocol: Option<SecurityProtocol>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: Option<SaslMechanism>,
    /// SASL user name.
    pub username: Option<String>,
    /// SASL password.
    pub password: Option<String>,
    /// AWS region, for `aws_msk_iam`.
    pub region: Option<String>,
}

/// `auth.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// No authentication.
    None,
    /// SASL with `mechanism`, `username` and `password`.
    Sasl,
    /// Amazon MSK IAM (OAUTHBEARER tokens signed with AWS credentials).
    AwsMskIam,
}

/// `auth.protocol`: librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    /// TLS.
    #[serde(rename = "SSL")]
    Ssl,
    /// SASL without TLS.
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL over TLS.
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

/// `auth.mechanism`: librdkafka's `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SaslMechanism {
    /// User name and password in the clear (use with `SASL_SSL`).
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// `tls.*`: PEM files.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificate(s) that sign the brokers' certificates.
    pub ca: Option<String>,
    /// Client certificate, for brokers that require one.
    pub cert: Option<String>,
    /// The client certificate's private key.
    pub key: Option<String>,
}

/// `schema_registry.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistry {
    /// `http(s)://host:port` of the registry.
    pub endpoint: Option<String>,
    /// Basic-auth user (Confluent Cloud API key).
    pub api_key: Option<String>,
    /// Basic-auth password (Confluent Cloud API secret).
    pub api_secret: Option<String>,
}

/// Table settings of `kafka`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaTable {
    /// The topic read or written.
    pub topic: String,
    /// Source settings (`source.offset`, ...).
    pub source: Option<SourceOptions>,
    /// Sink settings (`sink.commit_mode`, ...).
    pub sink: Option<SinkOptions>,
    /// librdkafka properties for this table's clients: `'k=v,k2=v2'` in SQL, an object in
    /// REST. They override the profile's.
    pub client_configs: Option<ClientConfigs>,
    /// Source columns filled from the record's envelope, column → `timestamp`, `key`,
    /// `partition`, `offset` or `headers` (SQL: `col TYPE METADATA FROM 'key'`).
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `source.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// Where reading starts: `latest` (default), `earliest`, or `group` (the consumer
    /// group's committed offsets, else `earliest`).
    pub offset: Option<StartOffset>,
    /// `read_uncommitted` (default) or `read_committed` (skip open and aborted transactions).
    pub read_mode: Option<ReadMode>,
    /// Consumer group id (offsets are committed to it for monitoring tools).
    pub group_id: Option<String>,
    /// Prefix of a generated group id, when `group_id` is not set.
    pub group_id_prefix: Option<String>,
}

/// `source.offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartOffset {
    /// Only records produced after the source starts.
    Latest,
    /// Every record the topic still holds.
    Earliest,
    /// Where the consumer group left off (`earliest` for partitions it never committed).
    Group,
}

/// `source.read_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// Every record, including those of open or aborted transactions.
    ReadUncommitted,
    /// Only records of committed transactions.
    ReadCommitted,
}

/// `sink.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkOptions {
    /// `at_least_once` (default) or `exactly_once`.
    pub commit_mode: Option<CommitMode>,
    /// The column whose value is each record's key.
    pub key_field: Option<String>,
    /// The TIMESTAMP column whose value is each record's timestamp (default: the time of
    /// writing).
    pub timestamp_field: Option<String>,
}

/// `sink.commit_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommitMode {
    /// Records are flushed and acknowledged; a restart may write some twice.
    AtLeastOnce,
    /// Records are written in Kafka transactions committed with the checkpoint.
    ExactlyOnce,
}

/// `client_configs`: `'k=v,k2=v2'` or `{"k": "v"}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ClientConfigs {
    /// SQL's spelling.
    Text(String),
    /// REST's spelling.
    Map(BTreeMap<String, String>),
}

impl SourceOptions {
    /// The consumer group of `table`'s sources: `group_id`, else `<prefix>-<table>`.
    pub fn group_id(&self, table: &str) -> String {
        self.group_id.clone().unwrap_or_else(|| {
            let prefix = self.group_id_prefix.as_deref().unwrap_or("laminar");
            format!("{prefix}-{table}")
        })
    }
}

impl ClientConfigs {
    /// The properties as pairs, or which part of the text is not `key=value`.
    pub fn pairs(&self) -> Result<Vec<(String, String)>> {
        match self {
            ClientConfigs::Map(map) => Ok(map.clone().into_iter().collect()),
            ClientConfigs::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(|part| match part.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        Ok((k.trim().to_string(), v.trim().to_string()))
                    }
                    _ => Err(ConnectorError::InvalidValue {
                        connector: "kafka".into(),
                        key: "client_configs".into(),
                        value: part.to_string(),
                        expected: "comma-separated key=value pairs (librdkafka properties)".into(),
                    }),
                })
                .collect(),
        }
    }
}

impl KafkaProfile {
    /// `bootstrap_servers`, required to connect.
    pub fn brokers(&self) -> Result<&str> {
        self.bootstrap_servers
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ConnectorError::MissingOption {
                connector: "kafka".into(),
                key: "bootstrap_servers".into(),
            })
    }

    fn auth(&self) -> Option<&Authentication> {
        self.auth.as_ref().or(self.authentication.as_ref())
    }

    /// The token maker of an `aws_msk_iam` profile.
    pub(super) fn msk_iam(&self) -> Option<super::msk_iam::MskIam> {
        let auth = self.auth()?;
        (auth.kind == Some(AuthKind::AwsMskIam)).then(|| super::msk_iam::MskIam {
            region: auth.region.clone().unwrap_or_default(),
        })
    }

    /// The registry settings, from either spelling; `None` without an endpoint.
    pub fn registry(&self) -> Option<&SchemaRegistry> {
        self.schema_registry
            .as_ref()
            .or(self.schema_registry_enum.as_ref())
            .filter(|r| r.endpoint.is_some())
    }

    /// A client of the profile's schema registry, if it has one.
    pub fn registry_client(&self) -> Option<crate::format::avro::SchemaRegistry> {
        let registry = self.registry()?;
        Some(crate::format::avro::SchemaRegistry::new(
            registry.endpoint.as_deref()?,
            registry.api_key.as_deref(),
            registry.api_secret.as_deref(),
        ))
    }
}

/// The librdkafka configuration of a client for `profile` and `table` (brokers,
/// authentication, TLS files, then the profile's and the table's extra properties).
pub(super) fn client_config(
    profile: &KafkaProfile,
    table: Option<&KafkaTable>,
) -> Result<ClientConfig> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", profile.brokers()?);
    if let Some(auth) = profile.auth() {
        apply_auth(&mut config, auth)?;
    }
    if let Some(tls) = &profile.tls {
        let files = [
            ("ssl.ca.location", &tls.ca),
            ("ssl.certificate.location", &tls.cert),
            ("ssl.key.location", &tls.key),
        ];
        for (property, path) in files {
            if let Some(path) = path {
                config.set(property, path);
            }
        }
    }
    for (k, v) in profile.connection_properties.iter().flatten() {
        config.set(k, v);
    }
    if let Some(extra) = table.and_then(|t| t.client_configs.as_ref()) {
        for (k, v) in extra.pairs()? {
            config.set(k, v);
        }
    }
    Ok(config)
}

fn apply_auth(config: &mut ClientConfig, auth: &Authentication) -> Result<()> {
    let sasl = auth.mechanism.is_some() || auth.username.is_some();
    let kind = auth
        .kind
        .unwrap_or(if sasl { AuthKind::Sasl } else { AuthKind::None });
    match kind {
        AuthKind::None => {
            if let Some(protocol) = auth.protocol {
                config.set("security.protocol", protocol.as_str());
            }
        }
        AuthKind::Sasl => {
            let protocol = auth.protocol.unwrap_or(SecurityProtocol::SaslSsl);
            if matches!(
                protocol,
                SecurityProtocol::Plaintext | SecurityProtocol::Ssl
            ) {
                return Err(ConnectorError::InvalidValue {
                    connector: "kafka".into(),
                    key: "auth.protocol".into(),
                    value: protocol.as_str().into(),
                    expected: "SASL_PLAINTEXT or SASL_SSL with auth.type = 'sasl'".into(),
                });
            }
            let mechanism = auth.mechanism.unwrap_or(SaslMechanism::Plain);
            let required = |value: &Option<String>, key: &str| {
                value.clone().ok_or_else(|| ConnectorError::MissingOption {
                    connector: "kafka".into(),
                    key: key.into(),
                })
            };
            config
                .set("security.protocol", protocol.as_str())
                .set("sasl.mechanism", mechanism.as_str())
                .set("sasl.username", required(&auth.username, "auth.username")?)
                .set("sasl.password", required(&auth.password, "auth.password")?);
        }
        AuthKind::AwsMskIam => {
            if auth.region.is_none() {
                return Err(ConnectorError::MissingOption {
                    connector: "kafka".into(),
                    key: "auth.region".into(),
                });
            }
            let protocol = auth.protocol.unwrap_or(SecurityProtocol::SaslSsl);
            config
                .set("security.protocol", protocol.as_str())
                .set("sasl.mechanism", "OAUTHBEARER");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_configs_text_and_errors() {
        let text = ClientConfigs::Text("linger.ms=5, batch.size = 1000".into());
        assert_eq!(
            text.pairs().unwrap(),
            vec![
                ("linger.ms".to_string(), "5".to_string()),
                ("batch.size".to_string(), "1000".to_string())
            ]
        );
        let error = ClientConfigs::Text("linger.ms".into()).pairs().unwrap_err();
        assert!(error.to_string().contains("client_configs"), "{error}");
    }

    #[test]
    fn sasl_needs_a_user_and_a_sasl_protocol() {
        let profile = KafkaProfile {
            bootstrap_servers: Some("b:9092".into()),
            auth: Some(Authentication {
                mechanism: Some(SaslMechanism::ScramSha256),
                username: Some("u".into()),
                ..Authentication::default()
            }),
            ..KafkaProfile::default()
        };
        let error = client_config(&profile, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "missing required option 'auth.password' for connector 'kafka'"
        );
        let mut profile = profile;
        if let Some(auth) = profile.auth.as_mut() {
            auth.password = Some("p".into());
        }
        let config = client_config(&profile, None).unwrap();
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
    }
}
