//! Signing keys: generated here, kept sealed under the master key, published
//! as JWKs while tokens they signed may still be alive.

use std::time::Duration;

use aws_lc_rs::{
    encoding::AsDer,
    rand::SystemRandom,
    rsa::{KeyPair as RsaKeyPair, KeySize},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    DecodingKey, EncodingKey,
    jwk::{Jwk, KeyAlgorithm, PublicKeyUse},
};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use sigil_domain::Timestamp;

use crate::{MasterKey, SigningAlgorithm};

/// A private key ready to sign.
#[derive(Clone)]
pub struct SigningKey {
    /// Its key id, the `kid` of every token it signs.
    pub kid: String,
    /// What it signs with.
    pub algorithm: SigningAlgorithm,
    encoding: EncodingKey,
}

/// A signing key as the store keeps it: the private key sealed, the public
/// key in the clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSigningKey {
    /// Key id.
    pub kid: String,
    /// What it signs with; never HS256 (those secrets live in templates).
    pub algorithm: SigningAlgorithm,
    /// The private key (DER), sealed under the master key with the kid as
    /// context.
    pub sealed_private_key: String,
    /// The public key as a JWK (JSON), with `kid`, `alg` and `use`.
    pub public_jwk: serde_json::Value,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stopped signing; `None` while it is the active key.
    pub retired_at: Option<Timestamp>,
    /// When it leaves the JWKS: after every token it signed has expired.
    pub remove_after: Option<Timestamp>,
}

impl SigningKey {
    /// A new asymmetric key, and its sealed form for the store. `None` for
    /// HS256, whose secrets belong to templates.
    pub fn generate(
        algorithm: SigningAlgorithm,
        now: Timestamp,
        master_key: &MasterKey,
        rng: &mut impl CryptoRng,
    ) -> Option<(SigningKey, StoredSigningKey)> {
        let random = SystemRandom::new();
        let (der, encoding) = match algorithm {
            SigningAlgorithm::EdDSA => {
                let der = Ed25519KeyPair::generate_pkcs8v1(&random)
                    .ok()?
                    .as_ref()
                    .to_vec();
                let encoding = EncodingKey::from_ed_der(&der);
                (der, encoding)
            }
            SigningAlgorithm::ES256 => {
                let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random)
                    .ok()?
                    .as_ref()
                    .to_vec();
                let encoding = EncodingKey::from_ec_der(&der);
                (der, encoding)
            }
            SigningAlgorithm::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).ok()?;
                let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).ok()?;
                // jsonwebtoken signs RSA with the bare PKCS#1 key that PKCS#8
                // wraps.
                let info = pkcs8::PrivateKeyInfoRef::try_from(pkcs8.as_ref()).ok()?;
                let der = info.private_key.as_bytes().to_vec();
                let encoding = EncodingKey::from_rsa_der(&der);
                (der, encoding)
            }
            SigningAlgorithm::HS256 => return None,
        };
        let mut kid_bytes = [0u8; 12];
        rng.fill_bytes(&mut kid_bytes);
        let kid = format!(
            "{}-{}",
            algorithm.as_str().to_ascii_lowercase(),
            URL_SAFE_NO_PAD.encode(kid_bytes)
        );
        let mut jwk = Jwk::from_encoding_key(&encoding, algorithm.jwt()).ok()?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let stored = StoredSigningKey {
            sealed_private_key: master_key.seal(&der, &kid, rng),
            public_jwk: serde_json::to_value(&jwk).ok()?,
            kid: kid.clone(),
            algorithm,
            created_at: now,
            retired_at: None,
            remove_after: None,
        };
        Some((
            SigningKey {
                kid,
                algorithm,
                encoding,
            },
            stored,
        ))
    }

    /// An HS256 key from a template's shared secret.
    pub fn hs256(kid: String, secret: &[u8]) -> SigningKey {
        SigningKey {
            kid,
            algorithm: SigningAlgorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
        }
    }

    /// Opens a stored key; `None` if the master key does not open it.
    pub fn from_stored(stored: &StoredSigningKey, master_key: &MasterKey) -> Option<SigningKey> {
        let der = master_key.open(&stored.sealed_private_key, &stored.kid)?;
        let encoding = match stored.algorithm {
            SigningAlgorithm::EdDSA => EncodingKey::from_ed_der(&der),
            SigningAlgorithm::ES256 => EncodingKey::from_ec_der(&der),
            SigningAlgorithm::RS256 => EncodingKey::from_rsa_der(&der),
            SigningAlgorithm::HS256 => return None,
        };
        Some(SigningKey {
            kid: stored.kid.clone(),
            algorithm: stored.algorithm,
            encoding,
        })
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

impl StoredSigningKey {
    /// The public key as a JWK.
    pub fn jwk(&self) -> Option<Jwk> {
        serde_json::from_value(self.public_jwk.clone()).ok()
    }

    /// Stops signing with the key at `now`; it stays published for
    /// `keep_published`, the longest a token it signed can live.
    pub fn retire(&mut self, now: Timestamp, keep_published: Duration) {
        if self.retired_at.is_none() {
            self.retired_at = Some(now);
            self.remove_after = Some(now.plus(keep_published));
        }
    }

    /// Whether the key still belongs in the JWKS at `now`.
    pub fn is_published(&self, now: Timestamp) -> bool {
        self.remove_after.is_none_or(|at| at > now)
    }
}

/// A key that checks signatures, with the one algorithm it allows.
#[derive(Clone)]
pub struct VerifyingKey {
    /// Key id.
    pub kid: String,
    /// The only algorithm tokens under this key may use.
    pub algorithm: SigningAlgorithm,
    pub(crate) decoding: DecodingKey,
}

impl VerifyingKey {
    /// From a published JWK; `None` unless it names one of Sigil's
    /// asymmetric algorithms and has a key id.
    pub fn from_jwk(jwk: &Jwk) -> Option<VerifyingKey> {
        let algorithm = match jwk.common.key_algorithm? {
            KeyAlgorithm::EdDSA => SigningAlgorithm::EdDSA,
            KeyAlgorithm::ES256 => SigningAlgorithm::ES256,
            KeyAlgorithm::RS256 => SigningAlgorithm::RS256,
            _ => return None,
        };
        Some(VerifyingKey {
            kid: jwk.common.key_id.clone()?,
            algorithm,
            decoding: DecodingKey::from_jwk(jwk).ok()?,
        })
    }

    /// An HS256 key from a template's shared secret.
    pub fn hs256(kid: String, secret: &[u8]) -> VerifyingKey {
        VerifyingKey {
            kid,
            algorithm: SigningAlgorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
        }
    }
}
