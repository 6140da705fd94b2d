//! Permissions, access rules, and the decision whether a session may use a
//! permission on a resource.

use std::{fmt, sync::OnceLock};

use glob::{MatchOptions, Pattern};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, FieldPath, Result};

/// Most permissions in one list.
pub const MAX_PERMISSIONS: usize = 100;
/// Most access rules on one session.
pub const MAX_RULES: usize = 100;

/// A permission name such as `token:read`: 1 to 128 characters of
/// `[A-Za-z0-9_.:/-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Permission(String);

impl Permission {
    /// Checks `text` as the permission at `field`.
    pub fn parse(text: &str, field: &FieldPath) -> Result<Self> {
        if text.is_empty() || text.len() > 128 {
            return Err(Error::invalid(field, "must be 1 to 128 characters"));
        }
        let allowed = |byte: u8| byte.is_ascii_alphanumeric() || b"_.:/-".contains(&byte);
        if !text.bytes().all(allowed) {
            return Err(Error::invalid(field, "may hold only A-Z a-z 0-9 _ . : / -"));
        }
        Ok(Permission(text.to_owned()))
    }

    /// Checks a list of permissions, at most [`MAX_PERMISSIONS`], dropping
    /// repeats.
    pub fn parse_list(texts: &[String], field: &FieldPath) -> Result<Vec<Self>> {
        if texts.len() > MAX_PERMISSIONS {
            return Err(Error::invalid(field, "at most 100 permissions"));
        }
        let mut permissions = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            let permission = Permission::parse(text, &field.at(index))?;
            if !permissions.contains(&permission) {
                permissions.push(permission);
            }
        }
        Ok(permissions)
    }

    /// The permission's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A glob over resource names, such as `tokens/pci/*`: `*` stays within a
/// path segment, `**` crosses segments.
///
/// Compiled on first match, not when read from the store: most reads
/// (WhoAmI) never match a rule, and compiling every rule of every record
/// read was ~3 % of a WhoAmI's server CPU under sigil-bench.
#[derive(Clone)]
pub struct ResourceGlob {
    text: String,
    compiled: OnceLock<Option<Pattern>>,
}

impl ResourceGlob {
    const MATCH: MatchOptions = MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };

    /// Checks `text` as the glob at `field`: 1 to 256 visible ASCII
    /// characters that form a valid pattern.
    pub fn parse(text: &str, field: &FieldPath) -> Result<Self> {
        if text.is_empty() || text.len() > 256 {
            return Err(Error::invalid(field, "must be 1 to 256 characters"));
        }
        if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(Error::invalid(
                field,
                "must be visible ASCII with no spaces",
            ));
        }
        let pattern = Pattern::new(text).map_err(|error| {
            Error::invalid(field, format!("is not a valid glob: {}", error.msg))
        })?;
        Ok(ResourceGlob {
            text: text.to_owned(),
            compiled: OnceLock::from(Some(pattern)),
        })
    }

    /// Whether `resource` matches. A stored glob that does not compile
    /// (every glob is checked before it is stored, so only a corrupt
    /// record has one) matches nothing: its rule grants nothing.
    pub fn matches(&self, resource: &str) -> bool {
        self.compiled
            .get_or_init(|| Pattern::new(&self.text).ok())
            .as_ref()
            .is_some_and(|pattern| pattern.matches_with(resource, Self::MATCH))
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ResourceGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceGlob({:?})", self.as_str())
    }
}

impl PartialEq for ResourceGlob {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for ResourceGlob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResourceGlob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(ResourceGlob {
            text: String::deserialize(deserializer)?,
            compiled: OnceLock::new(),
        })
    }
}

/// Grants `permissions` on resources matching `resource`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRule {
    /// Evaluation order, lowest first; unique within a session.
    pub priority: i32,
    /// What the rule is for, for humans.
    pub description: String,
    /// The resources the rule covers.
    pub resource: ResourceGlob,
    /// What it grants on them; never empty.
    pub permissions: Vec<Permission>,
}

impl AccessRule {
    /// Sorts rules into evaluation order and checks that priorities are
    /// unique, so the deciding rule is never ambiguous.
    pub fn into_evaluation_order(
        mut rules: Vec<AccessRule>,
        field: &FieldPath,
    ) -> Result<Vec<Self>> {
        if rules.len() > MAX_RULES {
            return Err(Error::invalid(field, "at most 100 rules"));
        }
        for (index, rule) in rules.iter().enumerate() {
            if rules[..index]
                .iter()
                .any(|earlier| earlier.priority == rule.priority)
            {
                return Err(Error::invalid(
                    field.at(index).child("priority"),
                    "repeats the priority of an earlier rule",
                ));
            }
        }
        rules.sort_by_key(|rule| rule.priority);
        Ok(rules)
    }

    /// Checks the parts of a rule at `field`.
    pub fn new(
        priority: i32,
        description: String,
        resource: &str,
        permissions: &[String],
        field: &FieldPath,
    ) -> Result<Self> {
        if description.chars().count() > 256 {
            return Err(Error::invalid(
                field.child("description"),
                "at most 256 characters",
            ));
        }
        let resource = ResourceGlob::parse(resource, &field.child("resource"))?;
        let permissions = Permission::parse_list(permissions, &field.child("permissions"))?;
        if permissions.is_empty() {
            return Err(Error::invalid(
                field.child("permissions"),
                "needs at least one permission",
            ));
        }
        Ok(AccessRule {
            priority,
            description,
            resource,
            permissions,
        })
    }
}

/// The answer to "may this session use this permission on this resource?".
#[derive(Debug, Clone, PartialEq)]
pub enum AccessDecision<'a> {
    /// The session's own permissions hold it: valid on every resource.
    GrantedByPermission,
    /// The lowest-priority rule matching the resource lists it.
    GrantedByRule(&'a AccessRule),
    /// The lowest-priority rule matching the resource does not list it.
    DeniedByRule(&'a AccessRule),
    /// Nothing grants it.
    Denied,
}

impl AccessDecision<'_> {
    /// Decides for a session holding `permissions` and `rules` (in
    /// evaluation order).
    pub fn decide<'a>(
        permissions: &[Permission],
        rules: &'a [AccessRule],
        permission: &Permission,
        resource: Option<&str>,
    ) -> AccessDecision<'a> {
        if permissions.contains(permission) {
            return AccessDecision::GrantedByPermission;
        }
        let Some(resource) = resource else {
            return AccessDecision::Denied;
        };
        match rules.iter().find(|rule| rule.resource.matches(resource)) {
            Some(rule) if rule.permissions.contains(permission) => {
                AccessDecision::GrantedByRule(rule)
            }
            Some(rule) => AccessDecision::DeniedByRule(rule),
            None => AccessDecision::Denied,
        }
    }

    /// Whether the permission is granted.
    pub fn is_allowed(&self) -> bool {
        matches!(
            self,
            AccessDecision::GrantedByPermission | AccessDecision::GrantedByRule(_)
        )
    }
}

#[cfg(test)]
mod tests;
