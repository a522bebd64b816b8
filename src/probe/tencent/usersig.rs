//! Tencent Cloud IM UserSig v2: minted in-process, never sent anywhere but the API.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::read::ZlibDecoder;
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

/// Wraps a buffer in a zlib stream (RFC 1950) of stored deflate blocks
/// (RFC 1951, 3.2.4; at most 65,535 bytes each, so one for a UserSig
/// document): a valid stream for any inflater, Tencent's included.
/// Compressing the ~200-byte document would save a few dozen bytes of URL,
/// but setting up a deflate compressor (clearing its hash tables) was the
/// largest single CPU cost of a login.
fn zlib(data: &[u8]) -> Vec<u8> {
    const MAX_STORED_BLOCK: usize = u16::MAX as usize;
    let blocks = data.len().div_ceil(MAX_STORED_BLOCK).max(1);
    let mut out = Vec::with_capacity(data.len() + 6 + 5 * blocks);
    // CMF 0x78: deflate with a 32 KiB window; FLG 0x01: no dictionary, and
    // 0x7801 is a multiple of 31 as the header check requires.
    out.extend_from_slice(&[0x78, 0x01]);
    let mut chunks = data.chunks(MAX_STORED_BLOCK).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        // BFINAL on the last block, BTYPE = 00 (stored), then LEN and NLEN.
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// The zlib trailer's checksum (RFC 1950, 9).
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % MOD;
        b = (b + a) % MOD;
    }
    (b << 16) | a
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

/// Standard base64 back from Tencent's URL-safe alphabet.
fn from_url_safe(token: &str) -> String {
    token
        .chars()
        .map(|c| match c {
            '*' => '+',
            '-' => '/',
            '_' => '=',
            c => c,
        })
        .collect()
}

/// Unpacks a UserSig into its document without checking the signature.
pub fn decode(token: &str) -> Option<SigDocument> {
    let compressed = STANDARD.decode(from_url_safe(token)).ok()?;
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

    #[test]
    fn an_identifier_over_64_kib_mints_without_panicking() {
        let admin = "a".repeat(70_000);
        let token = mint(KEY, &admin, 1_400_000_000, 1_600_000_000, 86_400);
        let mut json = Vec::new();
        ZlibDecoder::new(&STANDARD.decode(from_url_safe(&token)).unwrap()[..])
            .read_to_end(&mut json)
            .unwrap();
        let document: SigDocument = serde_json::from_slice(&json).unwrap();
        assert_eq!(document.identifier, admin);
    }

    #[test]
    fn the_stored_zlib_stream_inflates_and_checks() {
        for data in [
            &b""[..],
            b"a",
            &[0xffu8; 5_000][..],
            br#"{"TLS.ver":"2.0"}"#,
            // Past one stored block's 65,535 bytes: once a panic.
            &[b'x'; 65_535][..],
            &[b'y'; 200_001][..],
        ] {
            let mut inflated = Vec::new();
            ZlibDecoder::new(&zlib(data)[..])
                .read_to_end(&mut inflated)
                .unwrap();
            assert_eq!(inflated, data);
        }
        // RFC 1950's example checksum: "Wikipedia" is 0x11E60398.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }
}
