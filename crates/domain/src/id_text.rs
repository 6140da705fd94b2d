//! How ids are written: a prefix and 32 lowercase hex digits.

use std::fmt;

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
}
