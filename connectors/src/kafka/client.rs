//! Kafka clients that remember why they could not connect.
//!
//! A failed librdkafka call often returns only "timed out"; the reason (refused, DNS, TLS,
//! SASL) arrives through the client's error callback. [`Diagnosed`] keeps the last one so
//! errors can say what went wrong.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

use super::config::KafkaProfile;
use super::msk_iam::MskIam;

/// A client context keeping librdkafka's last error report; it also makes the tokens of
/// profiles with `auth.type = 'aws_msk_iam'`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Diagnosed {
    last: Arc<Mutex<Option<String>>>,
    msk_iam: Option<MskIam>,
}

impl Diagnosed {
    /// The context for a client of `profile`.
    pub(crate) fn for_profile(profile: &KafkaProfile) -> Diagnosed {
        Diagnosed {
            last: Arc::default(),
            msk_iam: profile.msk_iam(),
        }
    }
}

impl ClientContext for Diagnosed {
    // librdkafka asks for tokens only when `sasl.mechanism` is OAUTHBEARER.
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        match &self.msk_iam {
            Some(msk_iam) => msk_iam.token(),
            None => Err("OAUTHBEARER tokens are made only for auth.type = 'aws_msk_iam'".into()),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka client error");
        if let Ok(mut last) = self.last.lock() {
            *last = Some(reason.to_string());
        }
    }
}

impl ConsumerContext for Diagnosed {}

/// For producers whose deliveries nobody awaits (the exactly-once sink's fencing).
impl rdkafka::producer::ProducerContext for Diagnosed {
    type DeliveryOpaque = ();

    fn delivery(&self, _result: &rdkafka::message::DeliveryResult<'_>, _opaque: ()) {}
}

/// The last error `consumer` reported, if any. Reports wait in its queue until it is
/// polled, so it is polled first (call this before assigning partitions: a poll would take a
/// record).
pub(crate) fn reported(consumer: &BaseConsumer<Diagnosed>) -> Option<String> {
    let take = || {
        consumer
            .context()
            .last
            .lock()
            .ok()
            .and_then(|mut last| last.take())
    };
    // Each poll serves at most a few queued events: poll until one is an error (or briefly).
    for _ in 0..20 {
        if let Some(reason) = take() {
            return Some(reason);
        }
        let _ = consumer.poll(Duration::from_millis(5));
    }
    take()
}

/// Serve `consumer`'s queued events without waiting (it must have no assigned partitions:
/// a poll would take a record).
pub(crate) fn serve_events(consumer: &BaseConsumer<Diagnosed>) {
    let _ = consumer.poll(Duration::ZERO);
    if let Ok(mut last) = consumer.context().last.lock() {
        *last = None;
    }
}

/// What a failed connection most likely means, in words a user can act on: from the
/// client's last error report when there is one, else from the call's own error.
pub(crate) fn explain_connection_error(
    brokers: &str,
    e: &KafkaError,
    reported: Option<String>,
) -> String {
    let detail = reported.unwrap_or_else(|| e.to_string());
    let lower = detail.to_ascii_lowercase();
    let cause = if lower.contains("resolve") {
        "the broker host name does not resolve (DNS)"
    } else if lower.contains("oauthbearer") || lower.contains("msk iam") {
        "AWS MSK IAM authentication failed (check the AWS credentials, their IAM policy and auth.region)"
    } else if lower.contains("authenticat") || lower.contains("sasl") {
        "authentication failed (check auth.mechanism, auth.username and auth.password)"
    } else if lower.contains("ssl") || lower.contains("certificate") || lower.contains("handshake")
    {
        "the TLS handshake failed (check auth.protocol and tls.ca)"
    } else if lower.contains("refused") {
        "the connection was refused (is a broker listening there?)"
    } else if lower.contains("all brokers down") || lower.contains("transport") {
        "the connection failed or was dropped"
    } else if lower.contains("timed out") {
        "no broker answered in time"
    } else {
        "the brokers could not be reached"
    };
    format!("cannot connect to Kafka at {brokers}: {cause} ({detail})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn the_reported_reason_wins() {
        let timed_out = KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut);
        let message = explain_connection_error(
            "b:1",
            &timed_out,
            Some("Connect to ipv4#127.0.0.1:1 failed: Connection refused".into()),
        );
        assert_eq!(
            message,
            "cannot connect to Kafka at b:1: the connection was refused (is a broker listening there?) (Connect to ipv4#127.0.0.1:1 failed: Connection refused)"
        );
        let message = explain_connection_error("b:1", &timed_out, None);
        assert!(message.contains("no broker answered in time"), "{message}");
    }
}
