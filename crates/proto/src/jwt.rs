//! Conversions for JWT templates, keys and claims.

use jsonwebtoken::jwk::Jwk;
use prost_types::{ListValue, Struct, Value as PbValue, value::Kind};
use serde_json::{Map, Number, Value};
use sigil_domain::{Error, Result};
use sigil_jwt::{SigningAlgorithm, StoredSigningKey, StoredTemplate, TemplateLimits, TemplateSpec};

use crate::{
    convert::{duration_from_pb, timestamp_to_pb},
    v1 as pb,
};

/// A wire Struct as a JSON object. Whole numbers become integers, since
/// Struct carries every number as a double.
pub fn struct_to_json(value: Struct) -> Map<String, Value> {
    value
        .fields
        .into_iter()
        .map(|(name, value)| (name, value_to_json(value)))
        .collect()
}

fn value_to_json(value: PbValue) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(flag)) => Value::Bool(flag),
        Some(Kind::NumberValue(number)) => {
            let whole = number.fract() == 0.0 && number.abs() < 9.0e15;
            if whole {
                Value::from(number as i64)
            } else {
                Number::from_f64(number).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StringValue(text)) => Value::String(text),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(object)) => Value::Object(struct_to_json(object)),
    }
}

/// A JSON object as a wire Struct.
pub fn json_to_struct(object: &Map<String, Value>) -> Struct {
    Struct {
        fields: object
            .iter()
            .map(|(name, value)| (name.clone(), json_to_value(value)))
            .collect(),
    }
}

fn json_to_value(value: &Value) -> PbValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(flag) => Kind::BoolValue(*flag),
        Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or_default()),
        Value::String(text) => Kind::StringValue(text.clone()),
        Value::Array(values) => Kind::ListValue(ListValue {
            values: values.iter().map(json_to_value).collect(),
        }),
        Value::Object(object) => Kind::StructValue(json_to_struct(object)),
    };
    PbValue { kind: Some(kind) }
}

/// The algorithm a template asks for; UNSPECIFIED means EdDSA.
pub fn template_algorithm(algorithm: i32) -> Result<SigningAlgorithm> {
    match pb::SigningAlgorithm::try_from(algorithm) {
        Ok(pb::SigningAlgorithm::Unspecified | pb::SigningAlgorithm::Eddsa) => {
            Ok(SigningAlgorithm::EdDSA)
        }
        Ok(pb::SigningAlgorithm::Es256) => Ok(SigningAlgorithm::ES256),
        Ok(pb::SigningAlgorithm::Rs256) => Ok(SigningAlgorithm::RS256),
        Ok(pb::SigningAlgorithm::Hs256) => Ok(SigningAlgorithm::HS256),
        Err(_) => Err(Error::invalid("algorithm", "is not a known algorithm")),
    }
}

/// The algorithm of a key rotation: asymmetric and explicit.
pub fn rotation_algorithm(algorithm: i32) -> Result<SigningAlgorithm> {
    match pb::SigningAlgorithm::try_from(algorithm) {
        Ok(pb::SigningAlgorithm::Eddsa) => Ok(SigningAlgorithm::EdDSA),
        Ok(pb::SigningAlgorithm::Es256) => Ok(SigningAlgorithm::ES256),
        Ok(pb::SigningAlgorithm::Rs256) => Ok(SigningAlgorithm::RS256),
        Ok(pb::SigningAlgorithm::Hs256) => Err(Error::invalid(
            "algorithm",
            "HS256 secrets belong to templates; put the template again to get a new one",
        )),
        _ => Err(Error::invalid("algorithm", "must be EDDSA, ES256 or RS256")),
    }
}

impl From<SigningAlgorithm> for pb::SigningAlgorithm {
    fn from(algorithm: SigningAlgorithm) -> Self {
        match algorithm {
            SigningAlgorithm::EdDSA => pb::SigningAlgorithm::Eddsa,
            SigningAlgorithm::ES256 => pb::SigningAlgorithm::Es256,
            SigningAlgorithm::RS256 => pb::SigningAlgorithm::Rs256,
            SigningAlgorithm::HS256 => pb::SigningAlgorithm::Hs256,
        }
    }
}

/// A wire template as a checked spec.
pub fn template_spec(template: pb::TokenTemplate, limits: &TemplateLimits) -> Result<TemplateSpec> {
    let pb::TokenTemplate {
        name,
        claims,
        lifetime,
        audience,
        issuer,
        allowed_clock_skew,
        algorithm,
        created_at: _,
        updated_at: _,
    } = template;
    let within = |error: Error| error.within("template");
    let claims_json = claims
        .map(|claims| Value::Object(struct_to_json(claims)).to_string())
        .unwrap_or_default();
    TemplateSpec::new(
        &name,
        &claims_json,
        lifetime
            .map(|lifetime| duration_from_pb(lifetime, "lifetime"))
            .transpose()?,
        &audience,
        &issuer,
        allowed_clock_skew
            .map(|skew| duration_from_pb(skew, "allowed_clock_skew"))
            .transpose()
            .map_err(within)?,
        template_algorithm(algorithm).map_err(within)?,
        limits,
    )
    .map_err(within)
}

impl From<&StoredTemplate> for pb::TokenTemplate {
    fn from(template: &StoredTemplate) -> Self {
        pb::TokenTemplate {
            name: template.name.clone(),
            claims: Some(json_to_struct(&template.claims)),
            lifetime: prost_types::Duration::try_from(template.lifetime).ok(),
            audience: template.audience.clone().unwrap_or_default(),
            issuer: template.issuer.clone().unwrap_or_default(),
            allowed_clock_skew: prost_types::Duration::try_from(template.allowed_clock_skew).ok(),
            algorithm: pb::SigningAlgorithm::from(template.algorithm).into(),
            created_at: Some(timestamp_to_pb(template.created_at)),
            updated_at: Some(timestamp_to_pb(template.updated_at)),
        }
    }
}

impl From<&Jwk> for pb::Jwk {
    fn from(jwk: &Jwk) -> Self {
        // Read the standard JSON form, so every key type maps the same way.
        let json = serde_json::to_value(jwk).unwrap_or_default();
        let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
        pb::Jwk {
            kty: field("kty"),
            kid: field("kid"),
            alg: field("alg"),
            r#use: "sig".into(),
            crv: field("crv"),
            x: field("x"),
            y: field("y"),
            n: field("n"),
            e: field("e"),
        }
    }
}

/// The published form of a stored key; `None` if its JWK is unreadable.
pub fn jwk_of(key: &StoredSigningKey) -> Option<pb::Jwk> {
    key.jwk().as_ref().map(pb::Jwk::from)
}

/// A wire JWK as RFC 7517 JSON, leaving out the members its key type lacks.
pub fn jwk_to_json(jwk: &pb::Jwk) -> Value {
    let mut object = Map::new();
    for (name, value) in [
        ("kty", &jwk.kty),
        ("kid", &jwk.kid),
        ("alg", &jwk.alg),
        ("use", &jwk.r#use),
        ("crv", &jwk.crv),
        ("x", &jwk.x),
        ("y", &jwk.y),
        ("n", &jwk.n),
        ("e", &jwk.e),
    ] {
        if !value.is_empty() {
            object.insert(name.into(), Value::String(value.clone()));
        }
    }
    Value::Object(object)
}

/// A published wire JWK back as a jsonwebtoken JWK, for verification.
pub fn jwk_from_pb(jwk: &pb::Jwk) -> Option<Jwk> {
    serde_json::from_value(jwk_to_json(jwk)).ok()
}
