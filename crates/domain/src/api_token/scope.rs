//! What a token may access: project names, environment names, and the
//! project part of the token string.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Most projects one token may list.
pub const MAX_PROJECTS: usize = 100;

/// Every project, or every environment.
pub(super) const ALL: &str = "*";
/// The project part of a token that lists several projects.
pub(super) const SEVERAL: &str = "[]";

/// A project name: 1 to 100 characters of `[A-Za-z0-9_.~-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProjectName(String);

/// An environment name: 1 to 100 characters of `[A-Za-z0-9_.~-]`, or `*`
/// (every environment) for ADMIN tokens only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Environment(String);

macro_rules! name_type {
    ($type:ident) => {
        impl $type {
            /// Reads a name from request field `field`.
            pub fn parse(text: &str, field: &str) -> Result<Self> {
                if is_name(text) {
                    Ok($type(text.to_owned()))
                } else if text.is_empty() {
                    Err(Error::invalid(field, "is required"))
                } else {
                    Err(Error::invalid(
                        field,
                        "must be 1 to 100 characters of [A-Za-z0-9_.~-]",
                    ))
                }
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(ProjectName);
name_type!(Environment);

impl Environment {
    /// Every environment: what ADMIN tokens are for.
    pub fn all() -> Self {
        Environment(ALL.to_owned())
    }
}

/// The projects a token may access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projects {
    /// Every project, `*` in the token string.
    All,
    /// These projects (at least one, no duplicates, in the order given).
    Listed(Vec<ProjectName>),
}

impl Projects {
    /// Reads a project list: `["*"]` for every project, else names.
    pub fn parse(names: &[String], field: &str) -> Result<Self> {
        if names.is_empty() {
            return Err(Error::invalid(field, "is required: `*` or project names"));
        }
        if names.len() > MAX_PROJECTS {
            return Err(Error::invalid(field, "at most 100 projects"));
        }
        if names.iter().any(|name| name == ALL) {
            return match names.len() {
                1 => Ok(Projects::All),
                _ => Err(Error::invalid(field, "`*` stands alone")),
            };
        }
        let mut listed: Vec<ProjectName> = Vec::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            let name = ProjectName::parse(name, &format!("{field}[{index}]"))?;
            if !listed.contains(&name) {
                listed.push(name);
            }
        }
        Ok(Projects::Listed(listed))
    }

    /// The project part of the token string: `*`, the one project, or `[]`.
    pub fn token_prefix(&self) -> &str {
        match self {
            Projects::All => ALL,
            Projects::Listed(names) if names.len() == 1 => names[0].as_str(),
            Projects::Listed(_) => SEVERAL,
        }
    }

    /// The names as answered on the wire: `["*"]` for every project.
    pub fn names(&self) -> Vec<String> {
        match self {
            Projects::All => vec![ALL.to_owned()],
            Projects::Listed(names) => names.iter().map(|name| name.0.clone()).collect(),
        }
    }

    /// Whether a token with these projects may access `project`.
    pub fn covers(&self, project: &ProjectName) -> bool {
        match self {
            Projects::All => true,
            Projects::Listed(names) => names.contains(project),
        }
    }
}

/// Whether `text` is a project or environment name.
pub(super) fn is_name(text: &str) -> bool {
    (1..=100).contains(&text.len())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_.~-".contains(&byte))
}
