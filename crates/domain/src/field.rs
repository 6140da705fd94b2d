//! Paths of request fields, as named in error details.

use std::fmt;

/// The path of a request field in proto names, such as `rules[2].resource`:
/// what `google.rpc.BadRequest.FieldViolation.field` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    /// The path of the `index`th element of this repeated field.
    pub fn at(&self, index: usize) -> FieldPath {
        FieldPath(format!("{}[{index}]", self.0))
    }

    /// The path of `child` inside this message field.
    pub fn child(&self, child: &str) -> FieldPath {
        FieldPath(format!("{}.{child}", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for FieldPath {
    fn from(path: &str) -> Self {
        FieldPath(path.to_owned())
    }
}

impl From<&FieldPath> for FieldPath {
    fn from(path: &FieldPath) -> Self {
        path.clone()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
