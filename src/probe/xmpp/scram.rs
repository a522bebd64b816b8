//! The client side of SCRAM (RFC 5802; SCRAM-SHA-256 from RFC 7677), ours
//! so that a login costs what the server's check costs. The salted password
//! (PBKDF2 over the server's salt and iteration count, 4,096 rounds or more)
//! is kept per salt and count, as RFC 5802 §5.1 lets a client do: every
//! login still sends a fresh proof that the server checks in full, and
//! still checks the server's signature, so a password the server no longer
//! accepts fails the login exactly as before. A server that changes the
//! salt or the count (it does when the password changes) gets a fresh
//! derivation.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2};

use crate::sync::Locked;

/// No honest server asks for more rounds than this (Prosody uses 4,096,
/// ejabberd 4,096); a hostile one could otherwise make each login burn CPU
/// for seconds.
const MAX_ITERATIONS: u32 = 1_000_000;

/// The hash a SCRAM mechanism uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha1,
}

impl ScramHash {
    /// The SASL mechanism's name.
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha1 => "SCRAM-SHA-1",
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramHash::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha256 => hmac::HMAC_SHA256,
            ScramHash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramHash::Sha256 => &digest::SHA256,
            ScramHash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        }
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }
}

/// An account's password, with its salted form kept for the next login.
pub struct LoginPassword {
    pub text: String,
    pub salted: SaltedPasswords,
}

impl LoginPassword {
    pub fn new(text: String) -> Self {
        LoginPassword {
            text,
            salted: SaltedPasswords::default(),
        }
    }
}

/// One account's salted password, kept for the salt and count it was
/// derived with (the password itself never changes while improbe runs).
#[derive(Default)]
pub struct SaltedPasswords {
    last: Mutex<Option<Salted>>,
    derivations: AtomicU64,
}

struct Salted {
    hash: ScramHash,
    salt: Vec<u8>,
    iterations: u32,
    value: Vec<u8>,
}

impl SaltedPasswords {
    /// `Hi(password, salt, iterations)`, derived once per salt and count.
    fn salted(&self, hash: ScramHash, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut last = self.last.locked();
        if let Some(kept) = last.as_ref()
            && kept.hash == hash
            && kept.salt == salt
            && kept.iterations == iterations
        {
            return kept.value.clone();
        }
        let mut value = vec![0; hash.digest().output_len()];
        let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(hash.pbkdf2(), rounds, salt, password.as_bytes(), &mut value);
        self.derivations.fetch_add(1, Ordering::Relaxed);
        *last = Some(Salted {
            hash,
            salt: salt.to_vec(),
            iterations,
            value: value.clone(),
        });
        value
    }

    /// How many PBKDF2 derivations were run: once per salt and count.
    pub fn derivations(&self) -> u64 {
        self.derivations.load(Ordering::Relaxed)
    }
}

/// One SCRAM exchange, without channel binding (`n,,`): the first message,
/// the proof for the server's challenge, and the check of its signature.
pub struct ScramClient {
    hash: ScramHash,
    nonce: String,
    first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    pub fn new(hash: ScramHash, username: &str) -> Self {
        let mut random = [0u8; 18];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .expect("the operating system's random source");
        Self::with_nonce(hash, username, BASE64.encode(random))
    }

    fn with_nonce(hash: ScramHash, username: &str, nonce: String) -> Self {
        // RFC 5802 §5.1: `=` and `,` in the name are escaped.
        let name = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            hash,
            first_bare: format!("n={name},r={nonce}"),
            nonce,
            server_signature: None,
        }
    }

    /// Whether the proof was sent (what follows is the server's signature).
    pub fn answered(&self) -> bool {
        self.server_signature.is_some()
    }

    /// `client-first-message`.
    pub fn first_message(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// `client-final-message` for the server's first message, with the
    /// proof computed from the (kept) salted password.
    pub fn final_message(
        &mut self,
        server_first: &[u8],
        password: &str,
        salted: &SaltedPasswords,
    ) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "the server's SCRAM challenge is not UTF-8".to_owned())?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for field in server_first.split(',') {
            match field.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = BASE64.decode(v).ok(),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                Some(("m", _)) => return Err("the server requires a SCRAM extension".to_owned()),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("the server's SCRAM challenge has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's SCRAM nonce does not extend ours".to_owned());
        }
        let salt = salt.ok_or("the server's SCRAM challenge has no readable salt")?;
        let iterations = iterations
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| {
                format!("the server's SCRAM iteration count is not 1 to {MAX_ITERATIONS}")
            })?;

        let hash = self.hash;
        let salted_password = salted.salted(hash, password, &salt, iterations);
        let client_key = hash.mac(&salted_password, b"Client Key");
        let stored_key = digest::digest(hash.digest(), &client_key);
        // `biws` is base64 of the `n,,` header.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hash.mac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hash.mac(&salted_password, b"Server Key");
        self.server_signature = Some(hash.mac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks `server-final-message`: the server proves it knows the
    /// password too, or the login is not trusted.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).unwrap_or_default();
        if let Some(error) = text.strip_prefix("e=") {
            return Err(format!("the server refused the proof: {error}"));
        }
        let expected = self
            .server_signature
            .as_ref()
            .ok_or("the server ended SCRAM before its challenge")?;
        match text.strip_prefix("v=").map(|v| BASE64.decode(v)) {
            Some(Ok(signature)) if &signature == expected => Ok(()),
            _ => Err(
                "the server's SCRAM signature does not match: it does not know the password"
                    .to_owned(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5802 §5 and RFC 7677 §3: the published exchanges, byte for byte.
    #[test]
    fn the_rfc_examples_are_reproduced() {
        let cases = [
            (
                ScramHash::Sha1,
                "fyko+d2lbbFgONRv9qkxdawL",
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            ),
            (
                ScramHash::Sha256,
                "rOprNGfwEbeRWgbNEkqO",
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            ),
        ];
        for (hash, nonce, server_first, client_final, server_final) in cases {
            let salted = SaltedPasswords::default();
            for _ in 0..2 {
                let mut client = ScramClient::with_nonce(hash, "user", nonce.to_owned());
                assert_eq!(
                    client.first_message(),
                    format!("n,,n=user,r={nonce}").into_bytes()
                );
                let answer = client
                    .final_message(server_first.as_bytes(), "pencil", &salted)
                    .unwrap();
                assert_eq!(String::from_utf8(answer).unwrap(), client_final, "{hash:?}");
                client.verify_server_final(server_final.as_bytes()).unwrap();
                assert!(client.verify_server_final(b"v=AAAA").is_err());
            }
            assert_eq!(salted.derivations(), 1, "{hash:?}: derived once, then kept");
        }
    }

    #[test]
    fn a_new_salt_or_a_hostile_challenge_is_not_trusted() {
        let salted = SaltedPasswords::default();
        let mut client = ScramClient::with_nonce(ScramHash::Sha256, "u", "abc".to_owned());
        client
            .final_message(b"r=abcdef,s=c2FsdA==,i=4096", "pw", &salted)
            .unwrap();
        client
            .final_message(b"r=abcdef,s=bmV3IHNhbHQ=,i=4096", "pw", &salted)
            .unwrap();
        assert_eq!(salted.derivations(), 2, "a new salt is derived again");
        for hostile in [
            &b"r=xyz123,s=c2FsdA==,i=4096"[..],  // not our nonce
            b"r=abc,s=c2FsdA==,i=4096",          // not extended
            b"r=abcdef,s=c2FsdA==,i=4000000000", // too many rounds
            b"r=abcdef,s=c2FsdA==,i=0",
            b"r=abcdef,i=4096",
            b"\xff",
        ] {
            assert!(
                client.final_message(hostile, "pw", &salted).is_err(),
                "{hostile:?}"
            );
        }
        assert!(client.verify_server_final(b"e=invalid-proof").is_err());
    }
}
