//! Tencent Cloud IM UserSig v2: minted in-process, never sent anywhere but the API.

use std::cell::RefCell;
use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::read::ZlibDecoder;
use flate2::{Compress, Compression, FlushCompress, Status};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The signed document inside a UserSig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigDocument {
    #[serde(rename = "TLS.ver")]
    pub version: String,
    #[serde(rename = "TLS.identifier")]
    pub identifier: String,
    #[serde(rename = "TLS.sdkappid")]
    pub sdk_app_id: u64,
    #[serde(rename = "TLS.expire")]
    pub expire: i64,
    #[serde(rename = "TLS.time")]
    pub time: i64,
    #[serde(rename = "TLS.sig")]
    pub sig: String,
}

/// `TLS.sig`: base64 of HMAC-SHA256, keyed by the secret's UTF-8 bytes.
pub fn signature(key: &str, identifier: &str, sdk_app_id: u64, time: i64, expire: i64) -> String {
    let content = format!(
        "TLS.identifier:{identifier}\nTLS.sdkappid:{sdk_app_id}\nTLS.time:{time}\nTLS.expire:{expire}\n"
    );
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(content.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Mints a UserSig valid for `expire` seconds from `time` (Unix seconds).
pub fn mint(key: &str, identifier: &str, sdk_app_id: u64, time: i64, expire: i64) -> String {
    let document = SigDocument {
        version: "2.0".into(),
        identifier: identifier.into(),
        sdk_app_id,
        expire,
        time,
        sig: signature(key, identifier, sdk_app_id, time, expire),
    };
    let json = serde_json::to_vec(&document).expect("document serialises");
    url_safe(&STANDARD.encode(zlib(&json)))
}

/// zlib-compresses a small buffer. One is minted per login, and a deflate
/// compressor allocates and zeroes a few hundred kilobytes of tables when it
/// is created: each thread keeps one and resets it instead.
fn zlib(data: &[u8]) -> Vec<u8> {
    thread_local! {
        static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), true));
    }
    COMPRESSOR.with_borrow_mut(|compressor| {
        compressor.reset();
        // Deflate never grows data by more than a few bytes per 16 KiB block.
        let mut out = Vec::with_capacity(data.len() + 64);
        let status = compressor
            .compress_vec(data, &mut out, FlushCompress::Finish)
            .expect("compressing into a large enough buffer");
        assert_eq!(status, Status::StreamEnd, "the whole document fits the buffer");
        out
    })
}

/// Tencent's URL-safe alphabet: `+` → `*`, `/` → `-`, `=` → `_`.
fn url_safe(b64: &str) -> String {
    b64.chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            c => c,
        })
        .collect()
}

/// Unpacks a UserSig into its document without checking the signature.
pub fn decode(token: &str) -> Option<SigDocument> {
    let b64: String = token
        .chars()
        .map(|c| match c {
            '*' => '+',
            '-' => '/',
            '_' => '=',
            c => c,
        })
        .collect();
    let compressed = STANDARD.decode(b64).ok()?;
    let mut json = Vec::new();
    ZlibDecoder::new(compressed.as_slice())
        .take(64 * 1024)
        .read_to_end(&mut json)
        .ok()?;
    serde_json::from_slice(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";

    #[test]
    fn tencent_test_vectors() {
        // From Tencent's own Python and Node libraries with the clock fixed.
        assert_eq!(
            signature(KEY, "xiaojun", 1_400_000_000, 1_600_000_000, 15_552_000),
            "1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3M="
        );
        assert_eq!(
            signature(KEY, "administrator", 1_400_000_000, 1_600_000_000, 86_400),
            "los0WU+OsAqKAMeEseEb6GMMPAPQp6knnzQ5XIlQj0U="
        );
    }

    #[test]
    fn a_minted_token_carries_the_vector_signature() {
        let token = mint(KEY, "xiaojun", 1_400_000_000, 1_600_000_000, 15_552_000);
        assert!(!token.contains(['+', '/', '=']), "{token}");
        let document = decode(&token).unwrap();
        assert_eq!(document.version, "2.0");
        assert_eq!(document.identifier, "xiaojun");
        assert_eq!(
            (document.sdk_app_id, document.time, document.expire),
            (1_400_000_000, 1_600_000_000, 15_552_000)
        );
        assert_eq!(document.sig, "1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3M=");
        assert!(decode("not a token").is_none());
    }
}
