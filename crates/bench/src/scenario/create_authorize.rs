//! A session's birth: CreateSession, then AuthorizeSession with its nonce,
//! counted as one operation.

use crate::{
    scenario::{AdminBearer, CallFailure, Clients},
    sessions,
};

/// CreateSession + AuthorizeSession.
pub struct CreateAuthorize {
    admin: AdminBearer,
}

impl CreateAuthorize {
    /// Authorizes with `admin`.
    pub fn new(admin: AdminBearer) -> CreateAuthorize {
        CreateAuthorize { admin }
    }

    /// Creates and authorizes one session.
    pub async fn call(&self, clients: &mut Clients) -> Result<(), CallFailure> {
        sessions::create_active(clients, &self.admin, "bench-create-authorize").await?;
        Ok(())
    }
}
