//! Amazon MSK IAM authentication (`auth.type = 'aws_msk_iam'`): SASL/OAUTHBEARER where the
//! token is a SigV4-presigned `kafka-cluster:Connect` request for the cluster's region, as
//! Amazon's MSK IAM signer libraries build it. Credentials come from the AWS default chain
//! (environment, shared config and credentials files, web identity, container and instance
//! roles), looked up again at each token refresh; librdkafka refreshes at 80 % of a token's
//! 15 minutes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rdkafka::client::OAuthToken;

/// How long a token is valid (the MSK signers' default).
const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

type BoxError = Box<dyn std::error::Error>;

/// Builds tokens for the brokers of one region.
#[derive(Debug, Clone)]
pub(crate) struct MskIam {
    pub(crate) region: String,
}

impl MskIam {
    /// A fresh token, for librdkafka's refresh callback (called on a librdkafka thread).
    pub(crate) fn token(&self) -> Result<OAuthToken, BoxError> {
        let credentials = default_chain_credentials(&self.region)?;
        let now = SystemTime::now();
        let token = presigned_token(&self.region, &credentials, now)?;
        let expires = now + TOKEN_LIFETIME;
        Ok(OAuthToken {
            token,
            principal_name: credentials.access_key_id().to_string(),
            lifetime_ms: i64::try_from(expires.duration_since(UNIX_EPOCH)?.as_millis())?,
        })
    }
}

/// Credentials from the AWS default chain. The providers are async (some make HTTP calls),
/// and the callback may run on any thread: they run on a thread of their own.
fn default_chain_credentials(region: &str) -> Result<Credentials, BoxError> {
    let region = aws_config::Region::new(region.to_string());
    let lookup = std::thread::spawn(move || -> Result<Credentials, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(region)
                .load()
                .await;
            let provider = config
                .credentials_provider()
                .ok_or("no AWS credentials provider is configured")?;
            provider
                .provide_credentials()
                .await
                .map_err(|e| format!("no AWS credentials for MSK IAM: {e}"))
        })
    });
    let credentials = lookup
        .join()
        .map_err(|_| "the AWS credentials lookup panicked")??;
    Ok(credentials)
}

/// The token: the presigned URL, base64url without padding.
fn presigned_token(
    region: &str,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<String, BoxError> {
    let mut url = url::Url::parse(&format!("https://kafka.{region}.amazonaws.com/"))?;
    url.query_pairs_mut()
        .append_pair("Action", "kafka-cluster:Connect");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params: SigningParams<'_, SigningSettings> = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(now)
        .settings(settings)
        .build()?;
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::empty(),
        // The MSK signers hash the empty payload (no UNSIGNED-PAYLOAD).
        SignableBody::Bytes(&[]),
    )?;
    let (instructions, _signature) = sign(request, &params.into())?.into_parts();
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in instructions.params() {
            query.append_pair(name, value);
        }
        query.append_pair("User-Agent", concat!("laminar/", env!("CARGO_PKG_VERSION")));
    }
    Ok(URL_SAFE_NO_PAD.encode(url.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_the_request_botocore_presigns() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session/token+value=".into()),
            None,
            "test",
        );
        // 2026-11-28T12:00:00Z.
        let now = UNIX_EPOCH + Duration::from_secs(1_795_867_200);
        let token = presigned_token("eu-west-1", &credentials, now).unwrap();
        let url = String::from_utf8(URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap();
        let (signed, user_agent) = url.rsplit_once("&User-Agent=").unwrap();
        assert!(user_agent.starts_with("laminar%2F"), "{user_agent}");
        // What botocore's SigV4QueryAuth (which Amazon's Python MSK IAM signer uses) makes of
        // the same request, credentials and time.
        let expected = "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261128%2Feu-west-1%2Fkafka-cluster%2Faws4_request&X-Amz-Date=20261128T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=session%2Ftoken%2Bvalue%3D&X-Amz-Signature=63379a7a36f5659dd5c4dc6b3dfd7a0425be9a0d67ec2f72a6c74a691bb87db7";
        let sorted = |u: &str| {
            let (base, query) = u.split_once('?').unwrap();
            let mut pairs: Vec<&str> = query.split('&').collect();
            pairs.sort_unstable();
            (base.to_string(), pairs.join("&"))
        };
        assert_eq!(sorted(signed), sorted(expected));
    }
}
