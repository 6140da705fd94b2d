//! How ids and hashes are written and read: fixed-size hex, on hot paths,
//! without allocating.

use std::{fmt, marker::PhantomData};

use serde::{Deserializer, de};

/// Writes `prefix` then `bytes` in lowercase hex, from a stack buffer: ids
/// are written on hot paths (every WhoAmI answer, every store key of a
/// 1,000-token batch), where `hex::encode` and `write!` allocated and
/// formatted per id.
pub(crate) fn write_id(f: &mut fmt::Formatter<'_>, prefix: &str, bytes: &[u8; 16]) -> fmt::Result {
    let mut digits = [0u8; 32];
    hex::encode_to_slice(bytes, &mut digits).map_err(|_| fmt::Error)?;
    f.write_str(prefix)?;
    f.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
}

/// Reads a string field with `parse`, borrowing the text where the
/// deserializer can lend it: serde's `Cow<str>` always copies it into a
/// `String`, once per id and hash of every record read.
pub(crate) fn deserialize_text<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_str(TextVisitor {
        expecting,
        parse,
        parsed: PhantomData,
    })
}

struct TextVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Option<T>,
    parsed: PhantomData<T>,
}

impl<T> de::Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        (self.parse)(text).ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
    }
}

#[cfg(test)]
mod tests {
    use crate::{ApiTokenId, SessionId};

    #[test]
    fn ids_are_written_as_prefix_and_lowercase_hex_and_read_back() {
        let bytes = [
            0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba,
            0xdc, 0xfe,
        ];
        let session = SessionId::from_bytes(bytes);
        assert_eq!(session.to_string(), "sess_00017f80abcdefff1032547698badcfe");
        let token = ApiTokenId::parse_field("tok_00017f80abcdefff1032547698badcfe", "id")
            .expect("a well-formed id");
        assert_eq!(token.to_string(), "tok_00017f80abcdefff1032547698badcfe");
        assert_eq!(format!("{session:?}"), session.to_string());
    }

    #[test]
    fn ids_read_back_borrowed_or_unescaped_and_junk_is_refused() {
        let plain: SessionId =
            serde_json::from_str(r#""sess_00017f80abcdefff1032547698badcfe""#).expect("an id");
        // An escape makes serde_json unescape into a buffer: the same id.
        let escaped: SessionId =
            serde_json::from_str(r#""\u0073ess_00017f80abcdefff1032547698badcfe""#).expect("an id");
        assert_eq!(plain, escaped);
        let from_reader: ApiTokenId =
            serde_json::from_reader(&br#""tok_00017f80abcdefff1032547698badcfe""#[..])
                .expect("an id");
        assert_eq!(
            from_reader.to_string(),
            "tok_00017f80abcdefff1032547698badcfe"
        );
        let hash: crate::SecretHash =
            serde_json::from_str(&format!("\"{}\"", "ab".repeat(32))).expect("64 hex digits");
        assert_eq!(
            serde_json::to_string(&hash).expect("serializes"),
            format!("\"{}\"", "ab".repeat(32))
        );
        for junk in [
            r#""sess_xyz""#,
            "17",
            r#""tok_00017F80ABCDEFFF1032547698BADCFE""#,
        ] {
            assert!(serde_json::from_str::<SessionId>(junk).is_err(), "{junk}");
            assert!(serde_json::from_str::<ApiTokenId>(junk).is_err(), "{junk}");
        }
        assert!(serde_json::from_str::<crate::SecretHash>(r#""abc""#).is_err());
    }
}
