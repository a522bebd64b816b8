//! `kind = "webhook"`: the event's JSON as it is (docs/notifications.md, the webhook),
//! with an `Idempotency-Key` and, when a secret is set, an HMAC-SHA256
//! signature of the body.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SendFailure;
use crate::notify::events::Event;

pub const SIGNATURE_HEADER: &str = "X-Improbe-Signature";

pub(super) struct Webhook {
    pub http: reqwest::Client,
    pub url: String,
    pub secret: Option<String>,
}

/// `sha256=<hex>` of `body` under `secret`, as `X-Improbe-Signature` carries it.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

impl Webhook {
    pub async fn send(&self, event: &Event) -> Result<(), SendFailure> {
        let body = serde_json::to_vec(event).expect("an event serialises");
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", &event.id);
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        let response = request.body(body).send().await.map_err(SendFailure::http)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(SendFailure::status(response).await)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
